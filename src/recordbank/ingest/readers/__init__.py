"""One module per format; each exposes ``read(path, options) -> Iterator[Batch]``."""

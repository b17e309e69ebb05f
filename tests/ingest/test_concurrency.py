"""Two ingests running at once never store the same record hash twice."""

from __future__ import annotations

import threading
from pathlib import Path

from recordbank.ingest.pipeline import IngestOptions, Ingestor, IngestResult
from recordbank.sample import HEADER, generate_people, write_csv


def test_two_concurrent_ingests_of_overlapping_files(runtime, tmp_path: Path) -> None:
    # b restates rows 10k..40k of a (another export of the same people) plus 20k new ones
    a = write_csv(tmp_path / "a.csv", generate_people(40_000, seed=3), HEADER)
    b = write_csv(tmp_path / "b.csv", generate_people(50_000, seed=3, start=10_000, restyle=1),
                  HEADER)
    results: dict[str, IngestResult] = {}
    barrier = threading.Barrier(2)

    def run(path: Path) -> None:
        barrier.wait()
        results[path.name] = Ingestor(runtime).ingest(path, IngestOptions(source="same"))

    threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results.values():
        assert r.status == "succeeded", r.error
        assert r.rows_read == r.inserted + r.duplicates + r.quarantined
    store = runtime.store
    total, unique = store.rows("SELECT count(), uniqExact(record_hash) FROM records")[0]
    assert total == unique == sum(r.inserted for r in results.values())
    # every identity of either file is stored once, whichever file won the race
    assert results["a.csv"].duplicates + results["b.csv"].duplicates > 30_000 * 0.9

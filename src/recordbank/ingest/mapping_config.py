"""The explicit mapping file of a source (YAML or JSON) and the per-source settings it carries.

Validated strictly, because a silently ignored typo in a mapping file means wrong data in the
master table: unknown keys, unknown fields, wrong types and duplicate keys are all errors.

    fields:                 # master field -> source column; `name` may join several columns
      email: E-mail Address
      name: [First, Last]
      status: null          # do not fill this field, not even by guessing
    ignore: [internal_notes]  # never mapped (still kept in metadata)
    guess: true             # map the other fields by guessing (default true)
    date_order: MDY         # DMY | MDY | YMD
    region: US              # default phone region, ISO 3166 alpha-2
    identity: [email]       # fields hashed for dedup
    table: customer         # SQL dump table;  sheet: Excel sheet;  record_element: XML element
"""

from __future__ import annotations

import codecs
import collections.abc as cabc
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from recordbank.ingest.errors import IngestError
from recordbank.schema import DEFAULT_IDENTITY, MAPPABLE_FIELDS

MAX_MAPPING_BYTES = 1 << 20
DateOrder = Literal["DMY", "MDY", "YMD"]


class MappingError(IngestError):
    """A mapping file (or a stored mapping) is invalid or does not fit the file."""

    code = "mapping:invalid"


class SourceConfig(BaseModel):
    """Per-source settings: explicit column mapping plus how to read and normalize the source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str | list[str] | None] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    guess: StrictBool = True
    date_order: DateOrder | None = None  # None: the pipeline decides
    region: str | None = None
    identity: tuple[str, ...] = DEFAULT_IDENTITY
    table: str | None = None
    sheet: str | None = None
    record_element: str | None = None
    encoding: str | None = None
    delimiter: str | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _check_fields(cls, value: Any) -> dict[str, str | list[str] | None]:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of master field -> column(s)")
        out: dict[str, str | list[str] | None] = {}
        seen: dict[str, str] = {}
        for name, cols in value.items():
            if name not in MAPPABLE_FIELDS:
                hint = " (map first and last name as name: [First, Last])" \
                    if str(name).replace("-", "_").lower() in ("first_name", "last_name") else ""
                raise ValueError(f"unknown master field {name!r}{hint}; "
                                 f"known: {', '.join(MAPPABLE_FIELDS)}")
            if cols is None:
                out[name] = None
                continue
            listed = [cols] if isinstance(cols, str) else cols
            if not isinstance(listed, list) or not listed or not all(
                    isinstance(c, str) and c for c in listed):
                raise ValueError(f"{name}: expected a column name or a list of column names, "
                                 f"got {cols!r}")
            if len(listed) > 1 and name != "name":
                raise ValueError(f"{name}: takes one column (only name can join several)")
            for col in listed:
                if col in seen:
                    raise ValueError(f"column {col!r} is given for both {seen[col]} and {name}")
                seen[col] = name
            out[name] = listed if name == "name" and isinstance(cols, list) else listed[0]
        return out

    @field_validator("ignore", mode="before")
    @classmethod
    def _check_ignore(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(c, str) and c for c in value):
            raise ValueError(f"expected a list of column names, got {value!r}")
        return tuple(dict.fromkeys(value))

    @field_validator("date_order", mode="before")
    @classmethod
    def _upper_order(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("region", mode="before")
    @classmethod
    def _check_region(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"expected an ISO 3166 alpha-2 code such as US, got {value!r}")
        code = value.strip().upper()
        import pycountry

        if len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None:
            return code
        hint = " (did you mean GB?)" if code == "UK" else ""
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code{hint}")

    @field_validator("identity", mode="before")
    @classmethod
    def _check_identity(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f"expected a non-empty list of master fields, got {value!r}")
        for name in value:
            if name not in MAPPABLE_FIELDS:
                raise ValueError(f"unknown master field {name!r}; "
                                 f"known: {', '.join(MAPPABLE_FIELDS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"fields repeated in {list(value)}")
        return tuple(value)

    @field_validator("table", "sheet", "record_element")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None

    @field_validator("delimiter", mode="before")
    @classmethod
    def _check_delimiter(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
            if len(value) != 1 or value in "\r\n\"":
                raise ValueError(f"expected one character (or 'tab'), got {value!r}")
        return value

    @model_validator(mode="after")
    def _ignore_not_mapped(self) -> SourceConfig:
        mapped = {c for v in self.fields.values() if v for c in ([v] if isinstance(v, str) else v)}
        both = sorted(mapped & set(self.ignore))
        if both:
            raise ValueError(f"columns both mapped and ignored: {both}")
        return self

    @classmethod
    def parse(cls, data: Any, origin: str = "mapping") -> SourceConfig:
        """Validate loaded settings, turning pydantic's errors into one readable MappingError."""
        if not isinstance(data, cabc.Mapping):
            raise MappingError(f"{origin}: expected a mapping of settings at the top level, "
                               f"got {type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise MappingError(f"{origin}: {_explain(exc)}") from None

    def override(self, **changes: Any) -> SourceConfig:
        """A copy with the given settings replaced (None leaves a setting as it is): CLI flags."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return SourceConfig.parse(data, "options")


def _explain(exc: ValidationError) -> str:
    known = ", ".join(SourceConfig.model_fields)
    lines: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {loc!r} (known: {known})")
            continue
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(dict.fromkeys(lines))


class _StrictYamlLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and reads yes/no/on/off as text (region: NO)."""


def _mapping_no_dupes(loader: _StrictYamlLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
    return loader.construct_mapping(node, deep=True)


_StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                  _mapping_no_dupes)
_StrictYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def _json_no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_mapping_text(text: str, fmt: Literal["json", "yaml"] | None = None,
                      origin: str = "mapping") -> SourceConfig:
    """Parse a mapping given as text; fmt None: JSON if it starts with '{', else YAML."""
    if not text.strip():
        raise MappingError(f"{origin}: the mapping is empty")
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    try:
        if fmt == "json":
            data = json.loads(text, object_pairs_hook=_json_no_dupes)
        else:
            data = yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - safe loader subclass
    except (ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise MappingError(f"{origin}: not valid {fmt.upper()}: {detail}") from None
    return SourceConfig.parse(data, origin)


def load_mapping_file(path: str | Path) -> SourceConfig:
    """Read a source's mapping file (.json, .yaml/.yml; other names are sniffed)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_MAPPING_BYTES:
            raise MappingError(f"{p}: a mapping file over {MAX_MAPPING_BYTES} bytes is refused")
        raw = p.read_bytes()
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"{p}: the mapping file is not UTF-8 text") from None
    suffix = p.suffix.lower()
    fmt: Literal["json", "yaml"] | None = (
        "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None)
    return load_mapping_text(text, fmt, str(p))

"""Mapping source columns onto the master schema, with a report of how each was decided.

Order of authority: an explicit mapping file, then header synonyms and near-matches checked
against the content, then content alone. Every source column ends up exactly once: in a master
field or in metadata (never lost). What a header says is in `mapping_rules.py`, what the values
say in `mapping_content.py`, the mapping file and its per-source settings in `mapping_config.py`
(re-exported here); this module lets the columns compete for the fields.
"""

from __future__ import annotations

import collections.abc as cabc
import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from recordbank.ingest import mapping_content as content
from recordbank.ingest import mapping_rules as rules
from recordbank.ingest.mapping_config import MappingError, SourceConfig, load_mapping_file
from recordbank.schema import MAPPABLE_FIELDS

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "FIT_WEIGHTS", "Mapping", "MappingError", "ReportEntry", "SourceConfig", "format_report",
    "load_mapping_file", "map_columns", "report_rows", "score_fit",
]

Method = Literal["explicit", "synonym", "fuzzy", "content", "unmapped"]
METHODS: tuple[str, ...] = ("explicit", "synonym", "fuzzy", "content", "unmapped")
_METHOD_RANK = {m: i for i, m in enumerate(METHODS)}
_FIELD_RANK = {f: i for i, f in enumerate((*MAPPABLE_FIELDS, *rules.NAME_PARTS))}
# How much each field says that a table holds people: used by score_fit.
FIT_WEIGHTS: dict[str, float] = {"name": 3, "email": 3, "phone": 3, "user_id": 1, "address": 1,
                                 "city": 1, "country": 1, "created_date": 1, "status": 1}


@dataclass(frozen=True)
class ReportEntry:
    """How one source column was decided. field None means it went to metadata."""

    column: str
    field: str | None
    method: Method
    confidence: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "field": self.field, "method": self.method,
                "confidence": self.confidence, "note": self.note}

    @classmethod
    def from_dict(cls, data: cabc.Mapping[str, Any]) -> ReportEntry:
        try:
            column, fld, method = data["column"], data["field"], data["method"]
            confidence, note = float(data["confidence"]), str(data.get("note", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise MappingError(f"bad mapping report entry {data!r}: {exc}") from exc
        if not isinstance(column, str) or method not in METHODS or not 0 <= confidence <= 1:
            raise MappingError(f"bad mapping report entry {data!r}")
        if fld is not None and fld not in MAPPABLE_FIELDS:
            raise MappingError(f"bad mapping report entry {data!r}: unknown field {fld!r}")
        return cls(column, fld, method, confidence, note)


@dataclass
class Mapping:
    """Which source columns feed each master field; the rest are kept as metadata.

    `fields` has every mappable field as a key; its list is empty when no column feeds it,
    and has several columns only for `name` (joined with a space, in order).
    """

    columns: list[str]
    fields: dict[str, list[str]]
    metadata_columns: list[str]
    report: list[ReportEntry]
    config: SourceConfig = field(default_factory=SourceConfig)

    def sources(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    @property
    def mapped_fields(self) -> list[str]:
        return [f for f in MAPPABLE_FIELDS if self.fields.get(f)]

    def confidence(self, name: str) -> float:
        """The confidence of a field's feed (0.0 when nothing feeds it)."""
        values = [e.confidence for e in self.report if e.field == name]
        return min(values) if values else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "fields": {k: list(v) for k, v in self.fields.items()},
            "metadata_columns": list(self.metadata_columns),
            "report": [e.to_dict() for e in self.report],
            "config": self.config.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, data: cabc.Mapping[str, Any]) -> Mapping:
        try:
            columns = [str(c) for c in data["columns"]]
            fields = {str(k): [str(c) for c in v] for k, v in data["fields"].items()}
            metadata = [str(c) for c in data["metadata_columns"]]
            report = [ReportEntry.from_dict(e) for e in data["report"]]
            config = SourceConfig.parse(data.get("config") or {}, "stored mapping")
        except (KeyError, TypeError, AttributeError) as exc:
            raise MappingError(f"bad stored mapping: {exc!r}") from exc
        mapping = cls(columns, {f: fields.get(f, []) for f in MAPPABLE_FIELDS}, metadata,
                      report, config)
        _check_partition(mapping)
        return mapping


@dataclass(frozen=True)
class _Candidate:
    field: str
    columns: tuple[str, ...]
    confidence: float
    method: Method
    share: float  # support from the content, 0 when unknown
    order: int  # position of the first column in the file
    note: str

    def key(self) -> tuple[float, float, int, int, int]:
        return (-self.confidence, -self.share, _METHOD_RANK[self.method], self.order,
                _FIELD_RANK[self.field])


def map_columns(columns: cabc.Sequence[str],
                samples: cabc.Mapping[str, cabc.Sequence[str | None]] | None = None,
                config: SourceConfig | None = None) -> Mapping:
    """Map source columns onto the master fields; deterministic for the same input."""
    cfg = config or SourceConfig()
    cols = [str(c) for c in columns]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise MappingError(f"duplicate column names {dupes}: the reader must make them unique")
    samples = samples or {}
    profiles = {c: content.profile(samples[c]) for c in cols if c in samples}
    fields: dict[str, list[str]] = {f: [] for f in MAPPABLE_FIELDS}
    entries: dict[str, ReportEntry] = {}

    for name, value in cfg.fields.items():
        if value is None:
            continue
        wanted = [value] if isinstance(value, str) else list(value)
        for i, col in enumerate(_resolve(wanted, cols, f"fields.{name}")):
            if col in entries:
                raise MappingError(f"mapping file: column {col!r} is given for both "
                                   f"{entries[col].field} and {name}")
            fields[name].append(col)
            note = "from the mapping file"
            if len(wanted) > 1:
                note += f"; part {i + 1} of {len(wanted)}, joined with a space"
            doubt = content.contradiction(name, profiles[col]) if col in profiles else None
            if doubt:
                note += f"; warning: {doubt}"
            entries[col] = ReportEntry(col, name, "explicit", 1.0, note)
    for col in _resolve(list(cfg.ignore), cols, "ignore"):
        if col in entries and entries[col].field is not None:
            raise MappingError(f"mapping file: column {col!r} is both mapped and ignored")
        entries[col] = ReportEntry(col, None, "unmapped", 0.0, "ignored by the mapping file")

    if cfg.guess:
        closed = {f for f in MAPPABLE_FIELDS if fields[f] or f in cfg.fields}
        open_cols = [c for c in cols if c not in entries]
        _guess(open_cols, cols, profiles, closed, fields, entries)

    metadata = [c for c in cols if c not in {x for v in fields.values() for x in v}]
    for col in metadata:
        if col not in entries:
            entries[col] = ReportEntry(col, None, "unmapped", 0.0, "no master field matches")
    mapping = Mapping(cols, fields, metadata, [entries[c] for c in cols], cfg)
    _check_partition(mapping)
    return mapping


def _resolve(wanted: list[str], cols: list[str], where: str) -> list[str]:
    """Columns named by a mapping file: exact name, else the one column with that header."""
    out: list[str] = []
    for name in wanted:
        if name in cols:
            out.append(name)
            continue
        same = [c for c in cols if rules.compact(c) == rules.compact(name) and rules.compact(c)]
        if len(same) == 1:
            out.append(same[0])
            continue
        close = difflib.get_close_matches(name, cols, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise MappingError(f"mapping file {where}: column {name!r} is not in the file{hint} "
                           f"(columns: {', '.join(map(repr, cols))})")
    return out


def _guess(open_cols: list[str], all_cols: list[str],
           profiles: dict[str, content.Profile], closed: set[str],
           fields: dict[str, list[str]], entries: dict[str, ReportEntry]) -> None:
    """Let the open columns compete for the open fields; best candidate first, stable ties."""
    order = {c: i for i, c in enumerate(all_cols)}
    cands: list[_Candidate] = []
    why_not: dict[str, str] = {}
    for col in open_cols:
        prof = profiles.get(col)
        guess = rules.header_guess(col)
        if guess is not None and guess.field is None:
            why_not[col] = guess.note
            continue
        if guess is not None and guess.field is not None and prof is not None:
            doubt = content.contradiction(guess.field, prof)
            if doubt:
                why_not[col] = f"header suggests {_label(guess.field)}, but {doubt}"
                guess = None
        if guess is None and prof is not None:
            guess = content.content_guess(prof)
        if guess is None or guess.field is None:
            continue
        conf, share, note = guess.confidence, 0.0, _join(why_not.get(col, ""), guess.note)
        if prof is not None and prof.values == 0:
            conf, note = conf * 0.5, _join(note, "no values in the sample")
        elif prof is not None and guess.method != "content":
            support = content.field_share(guess.field, prof)
            if support is not None:
                share = support
                conf = conf * 0.9 + 0.1 * support
                if support >= 0.5 and guess.field != "user_id":
                    note = _join(note, f"content agrees ({support:.0%})")
        cands.append(_Candidate(guess.field, (col,), round(conf, 4), guess.method,
                                share, order[col], note))
    cands = _join_name_parts(cands, why_not)
    for cand in sorted(cands, key=_Candidate.key):
        if cand.field in closed or fields[cand.field] or any(c in entries for c in cand.columns):
            winner = fields[cand.field]
            for col in cand.columns:
                if col not in entries and col not in why_not:
                    if not winner:
                        by = "the mapping file leaves it empty"
                    else:
                        by = f"'{' + '.join(winner)}' feeds it" + (
                            " (mapping file)" if cand.field in closed else "")
                    why_not[col] = (f"candidate for {_label(cand.field)} ({cand.confidence:.2f})"
                                    f", but {by}")
            continue
        fields[cand.field] = list(cand.columns)
        for i, col in enumerate(cand.columns):
            note = cand.note
            if len(cand.columns) > 1:
                note = _join(f"part {i + 1} of {len(cand.columns)}, joined with a space", note)
            entries[col] = ReportEntry(col, cand.field, cand.method, cand.confidence, note)
    for col, note in why_not.items():
        if col not in entries:
            entries[col] = ReportEntry(col, None, "unmapped", 0.0, note)


def _join_name_parts(cands: list[_Candidate], why_not: dict[str, str]) -> list[_Candidate]:
    """First (+ middle) + last name columns become one candidate for `name`."""
    parts = [c for c in cands if c.field in rules.NAME_PARTS]
    out = [c for c in cands if c.field not in rules.NAME_PARTS]
    best: dict[str, _Candidate] = {}
    for cand in sorted(parts, key=_Candidate.key):
        if cand.field in best:
            why_not[cand.columns[0]] = (f"candidate for {_label(cand.field)}, but "
                                        f"'{best[cand.field].columns[0]}' is a better one")
        else:
            best[cand.field] = cand
    first, middle, last = (best.get(p) for p in rules.NAME_PARTS)
    chosen = [c for c in (first, middle, last) if c is not None]
    if first is None or last is None:
        if middle is not None:
            why_not[middle.columns[0]] = "a middle name without first and last name columns"
            chosen.remove(middle)
        if not chosen:
            return out
        factor, extra = 0.6, f"only a {_label(chosen[0].field)} column"
    else:
        factor, extra = 0.98, ""
    worst = min(chosen, key=lambda c: c.confidence)
    note = _join(extra, "; ".join(f"{c.columns[0]}: {c.note}" for c in chosen if c.note))
    methods = [c.method for c in chosen]
    method = max(methods, key=lambda m: _METHOD_RANK[m])
    out.append(_Candidate("name", tuple(c.columns[0] for c in chosen),
                          round(worst.confidence * factor, 4), method, 0.0,
                          min(c.order for c in chosen), note))
    return out


def _label(name: str) -> str:
    return {rules.FIRST: "first name", rules.MIDDLE: "middle name",
            rules.LAST: "last name"}.get(name, name)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _check_partition(mapping: Mapping) -> None:
    """Every source column exactly once: in one field or in metadata."""
    placed = [c for v in mapping.fields.values() for c in v] + list(mapping.metadata_columns)
    if sorted(placed) != sorted(mapping.columns) or len(mapping.report) != len(mapping.columns):
        raise MappingError("mapping does not place every column exactly once")
    if set(mapping.fields) - set(MAPPABLE_FIELDS):
        raise MappingError(f"unknown fields {sorted(set(mapping.fields) - set(MAPPABLE_FIELDS))}")


def score_fit(columns: cabc.Sequence[str],
              samples: cabc.Mapping[str, cabc.Sequence[str | None]] | None = None) -> float:
    """How well a table's columns fit the master schema, 0..1; picks the table of a dump.

    Identity fields (name, email, phone) weigh most; a small share rewards tables whose columns
    are mostly people fields. Given samples that hold no value at all (a view dumped without
    rows), the table scores 0: it has nobody to ingest.
    """
    if not columns:
        return 0.0
    if samples and all(content.profile(samples.get(c, ())).values == 0 for c in columns):
        return 0.0
    mapping = map_columns(columns, samples)
    cover = sum(FIT_WEIGHTS[f] * mapping.confidence(f) for f in mapping.mapped_fields)
    used = 1 - len(mapping.metadata_columns) / len(mapping.columns)
    return round(cover / sum(FIT_WEIGHTS.values()) * (0.8 + 0.2 * used), 6)


def report_rows(mapping: Mapping | cabc.Mapping[str, Any]
                ) -> list[tuple[str, str, str, str, str]]:
    """The report as text rows: column, field (or "metadata"), method, confidence, note.

    Takes a Mapping or its stored `to_dict()` form (as kept with the job).
    """
    if isinstance(mapping, Mapping):
        report = mapping.report
    else:
        try:
            report = [ReportEntry.from_dict(e) for e in mapping["report"]]
        except (KeyError, TypeError) as exc:
            raise MappingError(f"bad stored mapping report: {exc!r}") from exc
    return [(e.column, e.field or "metadata", e.method, f"{e.confidence:.2f}", e.note)
            for e in report]


def format_report(mapping: Mapping | cabc.Mapping[str, Any], title: str | None = None) -> Table:
    """The report as a rich table for the CLI (a Mapping or its stored dict)."""
    from rich.table import Table

    table = Table(title=title or "Column mapping")
    for header in ("Column", "Field", "Method", "Confidence", "Note"):
        table.add_column(header, overflow="fold", justify="right" if header == "Confidence"
                         else "left")
    for col, fld, method, conf, note in report_rows(mapping):
        style = "dim" if fld == "metadata" else None
        table.add_row(col, fld, method, conf, note, style=style)
    return table

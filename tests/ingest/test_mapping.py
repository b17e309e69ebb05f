"""Column mapping onto the master schema: synonyms, near-matches, content, explicit files, fit."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.table import Table

from recordbank.ingest.errors import IngestError
from recordbank.ingest.mapping import (
    Mapping,
    MappingError,
    ReportEntry,
    SourceConfig,
    format_report,
    map_columns,
    report_rows,
    score_fit,
)
from recordbank.ingest.mapping_content import profile
from recordbank.ingest.mapping_rules import SYNONYM_INDEX, compact, header_guess, header_tokens
from recordbank.schema import MAPPABLE_FIELDS

Samples = dict[str, list[str | None]]
EMAILS: list[str | None] = [f"person{i}@example.com" for i in range(20)]
PHONES: list[str | None] = [f"+1 (415) 555-{1000 + i}" for i in range(20)]
DATES: list[str | None] = [f"2023-0{1 + i % 9}-1{i % 10}" for i in range(20)]
WORDS: list[str | None] = ["apple", "river", "stone", "cloud", "maple"] * 4


def only(columns: list[str], samples: Samples | None = None) -> Mapping:
    mapping = map_columns(columns, samples)
    assert_partition(mapping, columns)
    return mapping


def assert_partition(mapping: Mapping, columns: list[str]) -> None:
    """Every input column exactly once, in a field or in metadata, reported in file order."""
    placed = [c for cols in mapping.fields.values() for c in cols] + mapping.metadata_columns
    assert sorted(placed) == sorted(columns)
    assert len(placed) == len(set(placed))
    assert [e.column for e in mapping.report] == list(columns)
    assert set(mapping.fields) == set(MAPPABLE_FIELDS)
    for name, cols in mapping.fields.items():
        assert len(cols) <= 1 or name == "name"
    for entry in mapping.report:
        assert (entry.field is None) == (entry.column in mapping.metadata_columns)
        assert 0.0 <= entry.confidence <= 1.0


def entry(mapping: Mapping, column: str) -> ReportEntry:
    return next(e for e in mapping.report if e.column == column)


# -- header normalization ---------------------------------------------------------------------

@pytest.mark.parametrize("header", ["E-mail Address", "email_address", "EmailAddress",
                                    "e.mail.address", "EMAIL ADDRESS", "E_Mail-Address",
                                    "EMailAddress", "  email   address  "])
def test_separators_and_camel_case_normalize_alike(header: str) -> None:
    assert compact(header) == "emailaddress"
    assert header_guess(header).field == "email"  # type: ignore[union-attr]


@pytest.mark.parametrize(("header", "tokens"), [
    ("createdAt", ("created", "at")), ("userID", ("user", "id")), ("Phone1", ("phone", "1")),
    ("HTTPServer", ("http", "server")), ("Prénom", ("prenom",)), ("Straße", ("strasse",)),
    ("Téléphone  Numéro", ("telephone", "numero")), ("", ()), ("__--..", ()),
    ("address.city", ("address", "city")),
])
def test_header_tokens(header: str, tokens: tuple[str, ...]) -> None:
    assert header_tokens(header) == tokens


def test_no_synonym_is_claimed_by_two_fields() -> None:
    fields = {f for f, _ in SYNONYM_INDEX.values()}
    assert set(MAPPABLE_FIELDS) <= fields


# -- synonym families -------------------------------------------------------------------------

SYNONYM_CASES = {
    "email": ["email", "e-mail", "mail", "email address", "e-mail address", "correo", "courriel",
              "emailaddress", "contact email", "primary email", "Email", "EMAIL_ADDRESS",
              "E-Mail-Adresse", "Correo electrónico", "work_email"],
    "phone": ["phone", "phone 1", "phone1", "phone number", "mobile", "mobile phone", "cell",
              "cellphone", "telephone", "tel", "msisdn", "contact number", "work phone",
              "home phone", "PhoneNumber", "Téléphone", "Mobile_No", "Contact Phone Number"],
    "name": ["name", "full name", "Full Name", "fullName", "customer name", "contact_name"],
    "address": ["address", "street", "street address", "address line 1", "addr", "address1",
                "mailing street", "AddressLine1", "Billing Address", "Straße"],
    "city": ["city", "town", "locality", "mailing city", "City", "Mailing_City", "Cities"],
    "country": ["country", "mailing country", "country code", "nation", "country name", "land",
                "pays", "Mailing Country", "countryCode", "País"],
    "created_date": ["subscription date", "create_date", "created", "created at", "signup_date",
                     "sign up date", "registered", "registration date", "join date",
                     "date joined", "member since", "createdon", "createdAt", "Subscription Date",
                     "signUpDate", "date_created"],
    "status": ["status", "active", "is active", "enabled", "account status", "IsActive",
               "is_active", "Account-Status", "statut"],
    "user_id": ["id", "user id", "customer id", "customer_id", "uid", "member id", "account id",
                "contact id", "record id", "UserID", "client_id", "staff_id", "ID"],
}


@pytest.mark.parametrize(("field", "header"),
                         [(f, h) for f, hs in SYNONYM_CASES.items() for h in hs])
def test_synonym_family(field: str, header: str) -> None:
    mapping = only([header, "unrelated"])
    assert mapping.fields[field] == [header]
    assert entry(mapping, header).method == "synonym"
    assert entry(mapping, header).confidence >= 0.85
    assert mapping.metadata_columns == ["unrelated"]


@pytest.mark.parametrize(("first", "last"), [
    ("First Name", "Last Name"), ("first_name", "last_name"), ("given name", "surname"),
    ("Given Name", "Family Name"), ("fname", "lname"), ("firstName", "lastName"),
    ("Prénom", "Nom de famille"), ("first", "last"), ("name.first", "name.last"),
    ("Vorname", "Nachname"), ("Forename", "Surname"),
])
def test_first_and_last_name_join_into_name(first: str, last: str) -> None:
    mapping = only(["id", last, first, "email"])  # order in the file does not matter
    assert mapping.fields["name"] == [first, last]
    assert entry(mapping, first).field == entry(mapping, last).field == "name"
    assert "part 1 of 2" in entry(mapping, first).note


def test_middle_name_is_joined_between() -> None:
    mapping = only(["Last Name", "Middle Name", "First Name"])
    assert mapping.fields["name"] == ["First Name", "Middle Name", "Last Name"]


def test_a_lone_first_name_feeds_name_with_low_confidence() -> None:
    mapping = only(["first_name", "email"])
    assert mapping.fields["name"] == ["first_name"]
    assert entry(mapping, "first_name").confidence < 0.7
    assert "only a first name" in entry(mapping, "first_name").note


def test_a_lone_middle_name_is_not_a_name() -> None:
    mapping = only(["middle_name", "email"])
    assert mapping.fields["name"] == []
    assert mapping.metadata_columns == ["middle_name"]


def test_full_name_beats_first_plus_last() -> None:
    mapping = only(["First Name", "Last Name", "Full Name"])
    assert mapping.fields["name"] == ["Full Name"]
    assert mapping.metadata_columns == ["First Name", "Last Name"]
    assert "Full Name" in entry(mapping, "First Name").note


@pytest.mark.parametrize(("header", "field"), [
    ("Mailing Country", "country"), ("billing_city", "city"), ("contact email", "email"),
    ("primary_phone", "phone"), ("home phone", "phone"), ("customerEmail", "email"),
    ("Customer Name", "name"), ("Personal Mobile", "phone"), ("shipping street", "address"),
    ("Member Status", "status"), ("user_uuid", "user_id"),
])
def test_tolerated_prefixes(header: str, field: str) -> None:
    assert only([header]).fields[field] == [header]


@pytest.mark.parametrize(("header", "field"), [
    ("address.city", "city"), ("address.street", "address"), ("contact.email", "email"),
    ("contact.phone", "phone"), ("address.country", "country"), ("meta.created_at", "created_date"),
])
def test_flattened_nested_keys(header: str, field: str) -> None:
    assert only([header]).fields[field] == [header]


@pytest.mark.parametrize("header", [
    "state", "State", "zip", "postal_code", "dob", "date_of_birth", "username", "user_name",
    "company name", "Company Email", "manager_phone", "emergency contact phone", "created_by",
    "updated_at", "last_update", "password", "notes", "index", "city_id", "address_id",
    "store_id", "country_id", "payment_id", "fax", "Location Coordinates", "Counties", "gender",
    "card number", "house number", "picture", "email_verified", "phone_type", "", "col3",
])
def test_headers_that_are_not_master_fields(header: str) -> None:
    mapping = only([header])
    assert mapping.metadata_columns == [header]
    assert entry(mapping, header).method == "unmapped"


def test_state_is_never_status_even_beside_status() -> None:
    mapping = only(["State", "Status"], {"State": ["CA", "NY", "TX"],
                                         "Status": ["active", "inactive", "active"]})
    assert mapping.fields["status"] == ["Status"]
    assert "State" in mapping.metadata_columns


def test_birth_dates_are_not_signup_dates_even_by_content() -> None:
    mapping = only(["dob", "email"], {"dob": DATES, "email": EMAILS})
    assert mapping.fields["created_date"] == []


# -- near-matches ------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "field"), [
    ("emial", "email"), ("Emial Adress", "email"), ("emailadress", "email"),
    ("phnoe number", "phone"), ("telphone", "phone"), ("adress", "address"),
    ("countyr", "country"), ("citty", "city"), ("sign_up_dat", "created_date"),
    ("stauts", "status"), ("fullnmae", "name"), ("custmer number", "user_id"),
])
def test_typos_are_near_matches_with_lower_confidence(header: str, field: str) -> None:
    mapping = only([header])
    assert mapping.fields[field] == [header]
    e = entry(mapping, header)
    assert e.method == "fuzzy"
    assert 0.5 <= e.confidence <= 0.75
    assert "near" in e.note


def test_typo_names_join() -> None:
    mapping = only(["fist name", "lastnme"])
    assert mapping.fields["name"] == ["fist name", "lastnme"]
    assert entry(mapping, "fist name").method == "fuzzy"


def test_exact_synonym_beats_a_near_match() -> None:
    mapping = only(["emial", "Email"])
    assert mapping.fields["email"] == ["Email"]
    assert "emial" in mapping.metadata_columns


# -- content sniffing --------------------------------------------------------------------------

def test_profile_shares() -> None:
    p = profile(["a@b.com", "x@y.org", "not an email", None, "", "NULL", "n/a"])
    assert p.values == 3 and p.email == pytest.approx(2 / 3)
    assert profile([]).values == 0
    assert profile(["+44 20 7946 0958", "(415) 555-0100", "555-0100 ext 12"]).phone == 1.0
    assert profile(["2024-01-31", "31/01/2024", "31.01.2024", "Jan 5, 2024", "5 Jan 2024",
                    "2024-01-31T10:00:00Z", "20240131"]).date == 1.0
    assert profile(["US", "USA", "United States", "Deutschland", "U.K.", "Côte d'Ivoire",
                    "fra"]).country == 1.0
    assert profile(["1", "0", "Active", "ENABLED", "yes"]).status == 1.0
    assert profile(["2024-01-31"]).phone == 0.0  # a date is not a phone number


@pytest.mark.parametrize("header", ["col3", "", "contact", "field_7", "value"])
def test_an_unnamed_column_of_emails_feeds_email(header: str) -> None:
    mapping = only(["id", header], {"id": [str(i) for i in range(20)], header: EMAILS})
    assert mapping.fields["email"] == [header]
    e = entry(mapping, header)
    assert e.method == "content" and e.confidence <= 0.7


@pytest.mark.parametrize(("values", "field"), [
    (PHONES, "phone"), (DATES, "created_date"),
    (["active", "inactive", "pending", "active"] * 5, "status"),
    (["Germany", "France", "United States", "Japan"] * 5, "country"),
])
def test_unnamed_columns_by_content(values: list[str | None], field: str) -> None:
    mapping = only(["c1"], {"c1": values})
    assert mapping.fields[field] == ["c1"]


def test_unnamed_column_of_words_stays_metadata() -> None:
    mapping = only(["c1"], {"c1": WORDS})
    assert mapping.metadata_columns == ["c1"]


def test_content_picks_between_two_phone_headers() -> None:
    samples: Samples = {"Phone": ["n/a", "call me", "later", "?", "unknown", "no"] * 3,
                        "Mobile": PHONES}
    mapping = only(["Phone", "Mobile"], samples)
    assert mapping.fields["phone"] == ["Mobile"]
    assert "header suggests phone, but only 0%" in entry(mapping, "Phone").note


def test_content_support_breaks_a_tie_between_equal_headers() -> None:
    half = PHONES[:10] + WORDS[:10]
    mapping = only(["phone", "telephone"], {"phone": half, "telephone": PHONES})
    assert mapping.fields["phone"] == ["telephone"]
    assert "telephone" in entry(mapping, "phone").note


def test_content_rejects_a_header_and_reassigns_the_column() -> None:
    mapping = only(["Phone", "Name"], {"Phone": EMAILS, "Name": WORDS})
    assert mapping.fields["phone"] == []
    assert mapping.fields["email"] == ["Phone"]
    assert entry(mapping, "Phone").method == "content"
    assert entry(mapping, "Phone").note.startswith("header suggests phone, but only 0%")


def test_contradicted_header_with_nowhere_to_go_is_metadata() -> None:
    mapping = only(["email", "Email Address"], {"email": EMAILS, "Email Address": WORDS})
    assert mapping.fields["email"] == ["email"]
    assert "content" not in entry(mapping, "Email Address").method
    assert "only 0%" in entry(mapping, "Email Address").note


@pytest.mark.parametrize(("header", "values"), [
    ("city", [str(i) for i in range(20)]), ("name", [str(i) for i in range(9)]),
    ("country", ["1", "2", "3"]), ("address", ["12", "13", "14"]),
    ("created_at", WORDS), ("status", [f"note {i}" for i in range(20)]),
])
def test_content_contradicting_the_header(header: str, values: list[str | None]) -> None:
    mapping = only([header], {header: values})
    assert mapping.metadata_columns == [header]
    assert "but" in entry(mapping, header).note


def test_a_contact_column_with_emails_beside_a_phone() -> None:
    mapping = only(["contact", "phone"], {"contact": EMAILS, "phone": PHONES})
    assert mapping.fields["email"] == ["contact"]
    assert mapping.fields["phone"] == ["phone"]


def test_empty_sampled_column_loses_to_a_filled_one() -> None:
    mapping = only(["Phone 1", "mobile"], {"Phone 1": [None, ""] * 5, "mobile": PHONES})
    assert mapping.fields["phone"] == ["mobile"]


def test_few_values_do_not_contradict() -> None:
    mapping = only(["email"], {"email": ["oops", None]})
    assert mapping.fields["email"] == ["email"]


# -- conflicts and determinism ------------------------------------------------------------------

def test_conflicting_candidates_first_in_file_wins_a_full_tie() -> None:
    samples: Samples = {"email": EMAILS, "E-mail": EMAILS}
    assert only(["email", "E-mail"], samples).fields["email"] == ["email"]
    assert only(["E-mail", "email"], samples).fields["email"] == ["E-mail"]


def test_numbered_copies_lose_to_the_first() -> None:
    mapping = only(["Phone 2", "Phone 1", "Email 2", "Email"])
    assert mapping.fields["phone"] == ["Phone 1"]
    assert mapping.fields["email"] == ["Email"]
    assert mapping.metadata_columns == ["Phone 2", "Email 2"]
    assert "feeds it" in entry(mapping, "Phone 2").note


def test_secondary_columns_only_when_nothing_better() -> None:
    assert only(["alt_email"]).fields["email"] == ["alt_email"]
    assert entry(only(["alt_email"]), "alt_email").confidence <= 0.5
    assert only(["alt_email", "email"]).fields["email"] == ["email"]


def test_duplicate_column_names_are_refused() -> None:
    with pytest.raises(MappingError, match="duplicate"):
        map_columns(["email", "email"])


# -- corpus -----------------------------------------------------------------------------------

def _spectrum(corpus: Path, name: str) -> tuple[list[str], Samples]:
    with (corpus / "csv-spectrum" / "csvs" / f"{name}.csv").open(
            encoding="utf-8", errors="replace", newline="") as fh:
        header = next(csv.reader(fh))
    rows = json.loads((corpus / "csv-spectrum" / "json" / f"{name}.json").read_text("utf-8"))
    rows = rows if isinstance(rows, list) else [rows]
    return header, {c: [r.get(c) for r in rows] for c in header}


def test_csv_spectrum_headers(corpus: Path) -> None:
    names = sorted(p.stem for p in (corpus / "csv-spectrum" / "csvs").glob("*.csv"))
    assert names
    for name in names:
        columns, samples = _spectrum(corpus, name)
        mapping = map_columns(columns, samples)
        assert_partition(mapping, columns)
        if name == "comma_in_quotes":
            assert mapping.fields["name"] == ["first", "last"]
            assert mapping.fields["address"] == ["address"]
            assert mapping.fields["city"] == ["city"]
            assert mapping.metadata_columns == ["zip"]
        elif name == "location_coordinates":
            assert mapping.fields["phone"] == ["Contact Phone Number"]
            assert mapping.fields["city"] == ["Cities"]
            assert mapping.metadata_columns == ["Location Coordinates", "Counties"]
        else:  # a,b,c / key,val: nothing to map, everything kept
            assert mapping.metadata_columns == columns, name


_VALUE = re.compile(r"'((?:[^'\\]|\\.|'')*)'|(NULL)|X'([0-9A-Fa-f]*)'|(-?[\d.]+)")


def sakila_tables(corpus: Path, limit: int = 1000) -> dict[str, tuple[list[str], Samples]]:
    """Column lists from the CREATE TABLEs and up to `limit` sampled rows from the INSERTs."""
    sql = (corpus / "sakila" / "sakila-data.sql").read_text(encoding="utf-8")
    out: dict[str, tuple[list[str], Samples]] = {}
    for m in re.finditer(r"CREATE TABLE `(\w+)` \((.*?)\n\)", sql, re.S):
        cols = re.findall(r"^\s+`([^`]+)`", m.group(2), re.M)
        out[m.group(1)] = (cols, {c: [] for c in cols})
    for m in re.finditer(r"INSERT INTO `(\w+)` \(([^)]*)\)\s*VALUES\s*(.*?);\n", sql, re.S):
        cols, samples = out[m.group(1)]
        for line in m.group(3).split("\n"):
            line = line.strip().rstrip(",")
            if not line.startswith("(") or len(samples[cols[0]]) >= limit:
                continue
            vals = [None if g[1] else next((x for x in (g[0], g[2], g[3]) if x), "")
                    for g in _VALUE.findall(line[1:-1])]
            if len(vals) == len(cols):
                for c, v in zip(cols, vals, strict=True):
                    samples[c].append(v)
    return out


@pytest.fixture(scope="module")
def sakila(corpus: Path) -> dict[str, tuple[list[str], Samples]]:
    return sakila_tables(corpus)


def test_sakila_customer_mapping(sakila: dict[str, tuple[list[str], Samples]]) -> None:
    columns, samples = sakila["customer"]
    assert len(samples["email"]) == 599
    for mapping in (map_columns(columns, samples), map_columns(columns)):
        assert_partition(mapping, columns)
        assert {f: v for f, v in mapping.fields.items() if v} == {
            "user_id": ["customer_id"], "name": ["first_name", "last_name"],
            "email": ["email"], "status": ["active"], "created_date": ["create_date"]}
        assert mapping.metadata_columns == ["store_id", "address_id", "last_update"]
    with_content = map_columns(columns, samples)
    assert "content agrees" in entry(with_content, "active").note


def test_score_fit_ranks_sakila_customer_first(sakila: dict[str, tuple[list[str], Samples]]
                                               ) -> None:
    scores = {t: score_fit(cols, samples) for t, (cols, samples) in sakila.items()}
    assert max(scores, key=lambda t: scores[t]) == "customer"
    assert scores["customer"] > scores["staff"] > scores["address"] > scores["actor"] \
        > scores["payment"] > 0
    assert scores["film"] == scores["inventory"] == 0.0
    # views are dumped without rows: nobody to ingest, however well the header fits
    assert scores["customer_list"] == scores["staff_list"] == 0.0
    header_only = {t: score_fit(cols) for t, (cols, _) in sakila.items()}
    for other in ("staff", "actor", "address", "payment"):
        assert header_only["customer"] > header_only[other]
    assert header_only["customer_list"] > 0  # the header alone does fit


def test_score_fit_edges() -> None:
    assert score_fit([]) == 0.0
    assert score_fit(["a", "b"]) == 0.0
    assert 0 < score_fit(["email"]) < score_fit(["email", "name", "phone"]) <= 1.0
    assert score_fit(["email", "name", "phone", "junk1", "junk2"]) < score_fit(
        ["email", "name", "phone"])
    assert score_fit(["email"], {"email": [None, ""]}) == 0.0


# -- explicit mapping ---------------------------------------------------------------------------

YAML_MAPPING = """\
fields:
  email: Contact
  name: [First, Last]
  phone: Tel
  status: null
ignore: [internal_notes]
date_order: mdy
region: us
identity: [email]
table: customer
"""


def test_explicit_yaml_file_overrides_guesses(tmp_path: Path) -> None:
    from recordbank.ingest.mapping import load_mapping_file

    path = tmp_path / "m.yaml"
    path.write_text(YAML_MAPPING, encoding="utf-8")
    config = load_mapping_file(path)
    columns = ["email", "Contact", "First", "Last", "Full Name", "Tel", "status",
               "internal_notes", "city"]
    samples: Samples = {"email": EMAILS, "Contact": EMAILS, "Tel": PHONES}
    mapping = map_columns(columns, samples, config)
    assert_partition(mapping, columns)
    assert mapping.fields["email"] == ["Contact"]
    assert mapping.fields["name"] == ["First", "Last"]
    assert mapping.fields["phone"] == ["Tel"]
    assert mapping.fields["status"] == []  # null: not filled, not even by guessing
    assert mapping.fields["city"] == ["city"]  # other fields are still guessed
    assert set(mapping.metadata_columns) == {"email", "Full Name", "status", "internal_notes"}
    assert entry(mapping, "Contact").method == "explicit"
    assert entry(mapping, "Contact").confidence == 1.0
    assert entry(mapping, "internal_notes").note == "ignored by the mapping file"
    assert entry(mapping, "email").note.endswith("but 'Contact' feeds it (mapping file)")
    assert "mapping file leaves it empty" in entry(mapping, "status").note
    assert mapping.config.date_order == "MDY" and mapping.config.region == "US"
    assert mapping.config.identity == ("email",) and mapping.config.table == "customer"


def test_explicit_json_file_and_guess_off(tmp_path: Path) -> None:
    from recordbank.ingest.mapping import load_mapping_file

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"fields": {"phone": "Mobile"}, "guess": False,
                                "date_order": "DMY", "sheet": "People",
                                "record_element": "person"}), encoding="utf-8")
    config = load_mapping_file(path)
    mapping = map_columns(["email", "Mobile", "name"], None, config)
    assert mapping.fields["phone"] == ["Mobile"]
    assert mapping.fields["email"] == mapping.fields["name"] == []
    assert mapping.metadata_columns == ["email", "name"]
    assert (config.sheet, config.record_element, config.date_order) == ("People", "person", "DMY")


def test_explicit_column_matched_by_normalized_header() -> None:
    config = SourceConfig(fields={"email": "e-mail address"})
    assert map_columns(["E-mail Address"], None, config).fields["email"] == ["E-mail Address"]


def test_explicit_mapping_warns_when_content_disagrees() -> None:
    config = SourceConfig(fields={"email": "Tel"})
    mapping = map_columns(["Tel"], {"Tel": PHONES}, config)
    assert mapping.fields["email"] == ["Tel"]
    assert "warning" in entry(mapping, "Tel").note


@pytest.mark.parametrize(("config", "message"), [
    (SourceConfig(fields={"email": "Emial"}), "column 'Emial' is not in the file"),
    (SourceConfig(fields={"name": ["First", "Surname"]}), "'Surname'"),
    (SourceConfig(ignore=("nope",)), "ignore"),
])
def test_explicit_columns_absent_from_the_file(config: SourceConfig, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        map_columns(["Email", "First", "Last"], None, config)


@pytest.mark.parametrize("config", [
    SourceConfig(fields={"email": "Email", "phone": "email"}),
    SourceConfig(fields={"email": "Email"}, ignore=("EMAIL",)),
    SourceConfig(fields={"name": ["First", "first"]}),
])
def test_explicit_names_that_resolve_to_one_column_twice(config: SourceConfig) -> None:
    with pytest.raises(MappingError, match="'(Email|First)' is"):
        map_columns(["Email", "First"], None, config)


# -- report -------------------------------------------------------------------------------------

def test_report_round_trips_through_json() -> None:
    columns = ["id", "First Name", "Last Name", "E-mail", "col3", "zip"]
    mapping = map_columns(columns, {"col3": PHONES}, SourceConfig(region="DE"))
    data = json.loads(json.dumps(mapping.to_dict()))
    back = Mapping.from_dict(data)
    assert back == mapping
    assert data["report"][0] == {"column": "id", "field": "user_id", "method": "synonym",
                                 "confidence": 1.0, "note": ""}
    assert ReportEntry.from_dict(data["report"][4]) == entry(mapping, "col3")


@pytest.mark.parametrize("bad", [
    {"column": "a", "field": "nope", "method": "synonym", "confidence": 1},
    {"column": "a", "field": None, "method": "magic", "confidence": 0},
    {"column": "a", "field": None, "method": "unmapped", "confidence": 2},
    {"column": "a", "field": None, "method": "unmapped", "confidence": "x"},
    {"field": None, "method": "unmapped", "confidence": 0},
])
def test_bad_report_entries_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(MappingError):
        ReportEntry.from_dict(bad)


def test_a_stored_mapping_that_loses_a_column_is_refused() -> None:
    data = map_columns(["email", "zip"]).to_dict()
    data["metadata_columns"] = []
    with pytest.raises(MappingError, match="exactly once"):
        Mapping.from_dict(data)
    with pytest.raises(MappingError):
        Mapping.from_dict({"columns": ["a"]})


def test_format_report() -> None:
    mapping = map_columns(["E-mail", "zip"])
    table = format_report(mapping)
    assert isinstance(table, Table) and table.row_count == 2
    assert report_rows(mapping) == [
        ("E-mail", "email", "synonym", "1.00", ""),
        ("zip", "metadata", "unmapped", "0.00", "'zip' is not a master field")]
    stored = {**json.loads(json.dumps(mapping.to_dict())), "file": "people.csv"}
    assert report_rows(stored) == report_rows(mapping)
    assert format_report(stored, title="people.csv").row_count == 2
    with pytest.raises(MappingError):
        report_rows({"fields": {}})


def test_mapping_error_is_an_ingest_error() -> None:
    assert issubclass(MappingError, IngestError) and MappingError.code == "mapping:invalid"


# -- invariants over arbitrary headers -----------------------------------------------------------

_POOL = [h for hs in SYNONYM_CASES.values() for h in hs] + [
    "First Name", "Last Name", "middle", "zip", "state", "col1", "", "emial", "x.y.z", "ID",
    "Phone 2", "alt_email", "contact", "注册日期", "Ünïcödé", "address.city", "a" * 300,
]
_VALUES = st.lists(st.one_of(st.none(), st.sampled_from(EMAILS + PHONES + DATES + WORDS),
                             st.text(max_size=12)), max_size=15)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_POOL), st.text(max_size=20)), unique=True,
                max_size=14), st.data())
def test_every_column_ends_up_exactly_once(columns: list[str], data: st.DataObject) -> None:
    samples = {c: data.draw(_VALUES) for c in columns if data.draw(st.booleans())}
    mapping = map_columns(columns, samples)
    assert_partition(mapping, columns)
    assert map_columns(columns, samples) == mapping  # deterministic
    assert Mapping.from_dict(json.loads(json.dumps(mapping.to_dict()))) == mapping
    assert 0.0 <= score_fit(columns, samples) <= 1.0

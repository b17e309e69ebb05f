"""GET/POST /v1/export through the API: formats, per-row charges, the balance cap, refusals."""

from __future__ import annotations

import csv
import io
import json
import math

import pyarrow.parquet as pq
from apikit import Api, fill_people


def us_count(api: Api) -> int:
    return int(api.runtime.store.scalar("SELECT count() FROM records WHERE country = 'US'"))


def test_csv_export_streams_every_row_and_charges_per_row(api: Api) -> None:
    fill_people(api.runtime, 3000)
    user, key = api.user(credits=10_000)
    r = api.get("/v1/export?country=US&_fields=id,email,created_date&_sort=email", key)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "email", "created_date"]
    body = rows[1:]
    assert len(body) == us_count(api) == 1000
    assert [row[1] for row in body] == sorted(row[1] for row in body)
    held = int(r.headers["X-Credits-Held"])
    charged = 10_000 - api.balance(user)
    assert charged == math.ceil(1 + len(body) / 100) and charged <= held
    api.app.state.ctx.usage.flush()
    from sqlalchemy import select

    from recordbank.db.session import session_scope
    from recordbank.usage.models import UsageRecord

    with session_scope(api.runtime.engine) as s:
        logged = s.scalars(select(UsageRecord).where(UsageRecord.path == "/v1/export")).one()
        assert logged.rows_returned == 1000 and logged.credits_charged == charged


def test_max_rows_cut_is_signalled_in_each_format(api: Api) -> None:
    fill_people(api.runtime, 300)
    user, key = api.user(credits=10_000)
    r = api.get("/v1/export?_max_rows=40&_format=csv", key)
    lines = r.text.splitlines()
    assert len(lines) == 1 + 40 + 1 and lines[-1].startswith("# export stopped at max_rows=40")
    nd = api.get("/v1/export?_max_rows=40&_format=ndjson", key).text.splitlines()
    assert len(nd) == 41 and json.loads(nd[-1])["_export"]["complete"] is False
    whole = api.get("/v1/export?_format=ndjson&country=GB", key).text.splitlines()
    assert json.loads(whole[-1])["_export"] == {"rows": 100, "complete": True, "reason": None}
    p = api.post("/v1/export", key, json={"filters": {"country": "DE"}, "format": "parquet",
                                          "fields": ["id", "country", "created_date"]})
    assert p.status_code == 200, p.text
    table = pq.read_table(io.BytesIO(p.content))
    assert table.num_rows == 100 and set(table.column("country").to_pylist()) == {"DE"}
    assert api.balance(user) == 10_000 - 2 - 2 - 2 - 2  # ceil(1 + rows/100) each


def test_without_max_rows_the_balance_caps_the_export(api: Api) -> None:
    fill_people(api.runtime, 3000)
    # 30 credits: the hold is 1 + rows/100 + 9 (time cap) -> at most 2,000 rows
    user, key = api.user(credits=30)
    r = api.get("/v1/export?_format=csv", key)
    assert r.status_code == 200
    assert r.headers["X-Export-Max-Rows"] == "2000"
    lines = r.text.splitlines()
    assert len(lines) == 2002 and lines[-1].startswith("# export stopped")
    assert api.balance(user) == 30 - 21
    broke_user, broke = api.user(credits=5)
    refused = api.get("/v1/export", broke)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert api.balance(broke_user) == 5


def test_export_neutralizes_formulas_but_not_phone_numbers(api: Api) -> None:
    api.runtime.store.command("""
        INSERT INTO records (id, source, source_file, source_row, record_hash, ingested_at,
            job_id, user_id, email, name, phone, address, city, country, created_date, status,
            metadata, data_quality_score, validation_errors)
        VALUES (generateUUIDv4(), 't', 't.csv', 0, 'aaaaaaaaaaaaaaaa', now64(3), 1, '1',
                'a@b.co', '=HYPERLINK("http://evil")', '+14155550123', '@SUM(A1)', '-2+3',
                'US', '2024-01-01', 'active', map(), 1, [])""")
    _, key = api.user(credits=100)
    r = api.get("/v1/export?_fields=name,phone,address,city", key)
    row = list(csv.reader(io.StringIO(r.text)))[1]
    assert row == ["'=HYPERLINK(\"http://evil\")", "+14155550123", "'@SUM(A1)", "'-2+3"]


def test_export_refusals(api: Api) -> None:
    _, key = api.user(credits=1000)
    assert api.get("/v1/export?_format=xlsx", key).json()["error"]["code"] == "INVALID_QUERY"
    assert api.get("/v1/export?_max_rows=0", key).status_code == 400
    bad_field = api.get("/v1/export?_fields=password", key)
    assert bad_field.status_code == 400 and bad_field.json()["error"]["code"] == "INVALID_FIELD"
    cursor = api.post("/v1/export", key, json={"cursor": "abc"})
    assert cursor.status_code == 400
    wrong = api.post("/v1/export", key, json={"format": "xml"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "VALIDATION_ERROR"

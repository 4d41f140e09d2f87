"""Binary COPY stores what CSV COPY stores: the same rows sent both ways into PostgreSQL, read
back as the server prints them (numeric display scale, time zone included)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from ingestion import copy_binary
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from tests.conftest import UCI_CSV, create_database, drop_database
from tests.ingestion_helpers import register, rows

# the PostgreSQL type of each test column
COLUMNS = {"label": "text", "amount": "numeric", "at": "timestamptz", "day": "date",
           "n": "integer", "big": "bigint", "flag": "boolean"}


def _stored_both_ways(engine: sa.Engine, table: pa.Table, timezone: str) -> tuple[list, list]:
    """The rows as the server prints them after a CSV COPY and after a binary COPY."""
    types = [COLUMNS[name] for name in table.column_names]
    ddl = ", ".join(f"{name} {kind}" for name, kind in zip(table.column_names, types,
                                                              strict=True))
    order = copy_binary.field_order(types)
    csv = io.BytesIO()
    pacsv.write_csv(table, csv, pacsv.WriteOptions(include_header=False,
                                                    quoting_style="needed"))
    binary = (copy_binary.SIGNATURE + bytes(copy_binary.encode_rows(table, types, timezone))
              + copy_binary.TRAILER)
    printed = []
    with engine.begin() as conn:
        conn.execute(sa.text("select set_config('TimeZone', :tz, true)"), {"tz": timezone})
        cursor = conn.connection.driver_connection.cursor()
        for fmt, data in (("csv", csv.getvalue()), ("binary", binary)):
            cursor.execute(f"create temp table sent_{fmt} (seq serial, {ddl}) on commit drop")
            names = (table.column_names if fmt == "csv"
                     else [table.column_names[i] for i in order])
            with cursor.copy(f"copy sent_{fmt} ({', '.join(names)}) from stdin "
                             f"with (format {fmt})") as copy:
                copy.write(data)
            cursor.execute(f"select {', '.join(f'{c}::text' for c in table.column_names)} "
                           f"from sent_{fmt} order by seq")
            printed.append(cursor.fetchall())
    return printed[0], printed[1]


def test_every_type_is_stored_as_csv_stores_it(engine: sa.Engine) -> None:
    amounts = ["2.50", "-0", "0.000", "1e-07", "1.5e3", "+5", "12345678901234.12345678",
               "0.123456789012", "5.", ".5", "-0.5", "9999.9999", "10000", None, "-17.25",
               "1E+2", "0.0001", "-99999999.99999999"]
    n = len(amounts)
    # London: 27 March 2011 01:30 does not exist (clocks go forward), 30 October 01:30
    # happens twice (clocks go back).
    times = ["2011-03-27 01:30:00", "2011-10-30 01:30:00", "2011-03-27 00:59:59",
             "2011-03-27 02:00:00", "2010-12-01 08:26:00", None, "2026-06-30 23:59:59",
             "1999-12-31 23:00:00"]
    table = pa.table({
        "label": pa.array((["plain", "", None, "tab\tand \"quote\"", "line\nbreak", "back\\slash",
                            "Ünïcödé €", "a,b"] * 3)[:n]),
        "amount": pa.array(amounts),
        "at": pa.array((times * 3)[:n]),
        "day": pa.array((["2011-03-27", None, "2000-01-01", "1999-12-31", "2026-02-28"] * 4)[:n]),
        "n": pa.array((["1", "-2147483648", "2147483647", None, "+5", "0"] * 3)[:n]),
        "big": pa.array(([1, None, 9_000_000_000_000_000_000, -3] * 5)[:n], pa.int64()),
        "flag": pa.array(([True, False, None] * 6)[:n]),
    })
    stored: dict[str, list] = {}
    for timezone in ("Europe/London", "America/New_York", "UTC", "Asia/Kolkata"):
        as_csv, as_binary = _stored_both_ways(engine, table, timezone)
        assert as_binary == as_csv, timezone
        stored[timezone] = as_binary
    # PostgreSQL's rules, which the encoder follows: a skipped time takes the offset before
    # the change, a repeated one the offset after it; numeric keeps the scale written.
    london = stored["Europe/London"]
    assert [row[2] for row in london[:2]] == ["2011-03-27 02:30:00+01", "2011-10-30 01:30:00+00"]
    assert [row[1] for row in london[:5]] == ["2.50", "0", "0.000", "0.0000001", "1500"]


def test_plain_numbers_near_the_fixed_layouts_limits(engine: sa.Engine) -> None:
    # plain decimals only, so the column takes the fixed layout, not value by value: scaled by
    # 1e6, the first two pass 2**63 and the last two stay just below it
    amounts = ["9300000000000", "-9300000000000", "999999999999.999999", "-999999999999.5"]
    as_csv, as_binary = _stored_both_ways(engine, pa.table({"amount": pa.array(amounts)}),
                                          "UTC")
    assert as_binary == as_csv == [(amount,) for amount in amounts]


def test_an_exponent_written_either_way_keeps_its_scale(engine: sa.Engine) -> None:
    # one column per case: an exponent anywhere in a column sends it value by value
    for amounts in (["2.5E2", "1.25"], ["2.5e2", "1.25"]):
        as_csv, as_binary = _stored_both_ways(engine, pa.table({"amount": pa.array(amounts)}),
                                              "UTC")
        assert as_binary == as_csv == [("250",), ("1.25",)]


def test_boolean_words_and_refusals(engine: sa.Engine) -> None:
    table = pa.table({"flag": pa.array(["true", "False", " yes ", "0", "ON", None])})
    as_csv, as_binary = _stored_both_ways(engine, table, "UTC")
    assert as_binary == as_csv
    with pytest.raises(copy_binary.NotEncodable, match="'maybe' is not a boolean"):
        copy_binary.encode_rows(pa.table({"flag": pa.array(["true", "maybe"])}), ["boolean"],
                                "UTC")


def test_a_sliced_chunk_encodes_only_its_rows(engine: sa.Engine) -> None:
    table = pa.table({"label": pa.array(["a", "bb", None, "dddd", "e"]),
                      "amount": pa.array(["1.5", "2", None, "-3.25", "4"])}).slice(1, 3)
    as_csv, as_binary = _stored_both_ways(engine, table, "UTC")
    assert as_binary == as_csv == [("bb", "2"), (None, None), ("dddd", "-3.25")]


def test_only_iana_zones_arrow_knows_take_the_binary_path() -> None:
    assert copy_binary.knows_timezone("Europe/London")
    assert not copy_binary.knows_timezone("Mars/Olympus_Mons")
    # PostgreSQL reads a TimeZone of '+02:00' as POSIX, two hours west; Arrow as ISO, east
    assert not copy_binary.knows_timezone("+02:00")


decimal_text = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"),
                           allow_nan=False, allow_infinity=False, places=None).map(str)
plain_text = st.from_regex(r"-?[0-9]{1,13}(\.[0-9]{0,8})?", fullmatch=True)


@settings(deadline=None, max_examples=30, database=None)
@given(amounts=st.lists(st.one_of(decimal_text, plain_text, st.none()), min_size=1,
                        max_size=40))
def test_numbers_of_any_shape_are_stored_as_numeric_in_reads_them(
        engine_for_hypothesis: sa.Engine, amounts: list[str | None]) -> None:
    as_csv, as_binary = _stored_both_ways(engine_for_hypothesis,
                                          pa.table({"amount": pa.array(amounts, pa.string())}),
                                          "UTC")
    assert as_binary == as_csv


@pytest.fixture(scope="module")
def engine_for_hypothesis(server_url: URL) -> Iterator[sa.Engine]:
    """One database for all examples (hypothesis reruns the body, not function fixtures)."""
    url = create_database(server_url, "sp_binary")
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


def test_the_loader_stores_the_same_rows_as_with_csv(engine: sa.Engine, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A real export through ``load_file`` twice: binary COPY, then the CSV fallback the
    loader keeps for a time zone this machine's Arrow does not know."""
    with gzip.open(UCI_CSV, "rt", encoding="utf-8") as fh:
        head = [next(fh) for _ in range(3001)]
    export = tmp_path / "uci.csv"
    export.write_text("".join(head))
    spec = shipped_specs()["uci_online_retail_csv"]
    register(engine, "binary")
    register(engine, "text")
    assert load_file(engine, export, "binary", spec).rows_loaded == 3000
    monkeypatch.setattr(copy_binary, "knows_timezone", lambda timezone: False)
    assert load_file(engine, export, "text", spec).rows_loaded == 3000
    columns = ("store_id, order_id, line_number, ordered_at::text, product_id, product_name, "
               "quantity::text, unit_price::text, currency, customer_id, country, channel, "
               "is_return, source_line")
    stored = {tenant: rows(engine, f"select {columns} from raw.sales_lines where tenant_id = "
                                   f":t order by source_line", t=tenant)
              for tenant in ("binary", "text")}
    assert len(stored["binary"]) == 3000
    assert stored["binary"] == stored["text"]

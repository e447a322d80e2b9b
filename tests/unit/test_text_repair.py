"""The text repairs of Eventsim's fields: the Python reference (beatlytica.text_repair) on real
looking values, and the dbt macros (dbt/macros/text_repair.sql) rendered by dbt and executed on
DuckDB, which must give exactly the Python results; the BigQuery rendering is valid BigQuery
SQL with nothing of DuckDB's in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from beatlytica.text_repair import repair_mojibake, unquote
from tests.unit.test_dbt_project import dbt_env, fake_service_account_key, run_dbt

#: double-encoded UTF-8 as Eventsim writes it, and what it was meant to be
MOJIBAKE = [
    ("elÃ¤mÃ¤ssÃ¤", "elämässä"),
    ("BeyoncÃ©", "Beyoncé"),
    ("MotÃ¶rhead", "Motörhead"),
    ("Ã\u0093lafur Arnalds", "Ólafur Arnalds"),  # Ó is C3 93: a C1 control as Latin-1
    ("Ã\u009eau hafa sloppiÃ°", "Þau hafa sloppið"),
    ("Sigur RÃ³s", "Sigur Rós"),
    ("JosÃ© GonzÃ¡lez", "José González"),
    ("DÃ©jÃ\u00a0 Vu", "Déjà Vu"),  # à is C3 A0: a no-break space as Latin-1
    ("Â£100", "£100"),
    ("Ã\u0080", "À"),
    ("ï»¿BOM", "\ufeffBOM"),  # a 3-byte sequence
    ("ð\u009f\u008e\u00b5 Lofi", "🎵 Lofi"),  # a 4-byte sequence
    ("Ã©\r\nÃ©", "é\r\né"),  # line breaks are characters like any other
]

#: text that is not (provably) mojibake: left exactly as it is
LEFT_ALONE = [
    None,
    "",
    "Coldplay",
    'Dr. "Dre" Young',
    "Björk",
    "Sigur Rós",
    "Beyoncé",
    "Motörhead",
    "Ólafur Arnalds",
    "naïve café",
    "坂本龍一",
    "🎵",
    "Ã",  # a lead byte alone
    "Ã©🎵",  # a code point past U+00FF
    "í\u00a0\u0080",  # ED A0 80: a UTF-16 surrogate, no valid UTF-8
    "À\u0080",  # C0 80: an overlong NUL
    "ô\u0090\u0080\u0080",  # F4 90 80 80: past U+10FFFF
    "BjÃ¶rk and Björk",  # repaired and legitimate text mixed: not one encoding
]

#: user agents as Eventsim writes them, and without the wrapping quotes
QUOTED = [
    (
        '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/36.0.1985.143 Safari/537.36"',
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/36.0.1985.143 Safari/537.36",
    ),
    ('"Mozilla/5.0 (compatible; MSIE 9.0)"', "Mozilla/5.0 (compatible; MSIE 9.0)"),
    ('""', ""),
    ('"""', '"'),  # one pair only
    ('"a\nb"', "a\nb"),
]

#: values unquote leaves alone
NOT_QUOTED = [
    None,
    "",
    '"',
    '"Mozilla/5.0',
    'Mozilla/5.0"',
    'Dr. "Dre" Young',
    "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/31.0",
]

#: every value the SQL is compared on (each list's inputs and repaired outputs)
VALUES: list[str | None] = [
    *(broken for broken, _ in MOJIBAKE),
    *(fixed for _, fixed in MOJIBAKE),
    *LEFT_ALONE,
    *(quoted for quoted, _ in QUOTED),
    *NOT_QUOTED,
    '"BeyoncÃ©"',
    "\u0000Ã©",
]

#: the four macros on the column `value` of `text_repair_input` (id, value)
INLINE = (
    "select id, "
    "{{ beatlytica.repair_mojibake('value') }} as repaired, "
    "{{ beatlytica.was_mojibake('value') }} as was_mojibake, "
    "{{ beatlytica.unquote('value') }} as unquoted, "
    "{{ beatlytica.was_quoted('value') }} as was_quoted "
    "from text_repair_input"
)


def python_results(values: list[str | None]) -> list[tuple[Any, ...]]:
    """(id, repaired, was_mojibake, unquoted, was_quoted) per value, by the reference."""
    rows = []
    for index, value in enumerate(values):
        repaired, unquoted = repair_mojibake(value), unquote(value)
        rows.append((index, repaired, repaired != value, unquoted, unquoted != value))
    return rows


def compile_inline(sql: str, work: Path, env: dict[str, str], *args: str) -> str:
    """The SQL dbt compiles from an inline Jinja query."""
    result = run_dbt(
        "compile", *args, "--quiet", "--output", "json", "--inline", sql, work=work, env=env
    )
    return str(json.loads(result.stdout)["compiled"])


@pytest.fixture(scope="module")
def duckdb_sql(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("text-repair-duckdb")
    env = dbt_env(BEATLYTICA_DUCKDB_PATH=str(work / "warehouse.duckdb"))
    return compile_inline(INLINE, work, env)


def compile_for_bigquery(sql: str, work: Path) -> str:
    """The SQL dbt compiles from an inline Jinja query for the bigquery target, offline."""
    key = fake_service_account_key(work / "service-account.json")
    env = dbt_env(
        BEATLYTICA_DBT_TARGET="bigquery",
        BEATLYTICA_GCP_PROJECT="test-project",
        GOOGLE_APPLICATION_CREDENTIALS=str(key),
    )
    return compile_inline(sql, work, env, "--no-populate-cache")


@pytest.fixture(scope="module")
def bigquery_sql(tmp_path_factory: pytest.TempPathFactory) -> str:
    return compile_for_bigquery(INLINE, tmp_path_factory.mktemp("text-repair-bigquery"))


@pytest.mark.parametrize(("broken", "fixed"), MOJIBAKE)
def test_double_encoded_utf8_is_read_back_once(broken: str, fixed: str) -> None:
    assert repair_mojibake(broken) == fixed
    assert repair_mojibake(fixed) == fixed  # a repaired value stays repaired


@pytest.mark.parametrize("value", LEFT_ALONE)
def test_legitimate_text_and_null_are_left_alone(value: str | None) -> None:
    assert repair_mojibake(value) == value


@pytest.mark.parametrize(("quoted", "bare"), QUOTED)
def test_one_pair_of_wrapping_quotes_is_stripped(quoted: str, bare: str) -> None:
    assert unquote(quoted) == bare


@pytest.mark.parametrize("value", NOT_QUOTED)
def test_values_not_wrapped_in_quotes_are_left_alone(value: str | None) -> None:
    assert unquote(value) == value


def test_the_sql_macros_give_the_python_results_on_duckdb(duckdb_sql: str) -> None:
    with duckdb.connect() as con:
        con.execute("create table text_repair_input (id integer, value varchar)")
        con.executemany("insert into text_repair_input values (?, ?)", list(enumerate(VALUES)))
        rows = con.execute(f"{duckdb_sql} order by id").fetchall()
    expected = python_results(VALUES)
    assert len(rows) == len(expected)
    different = [
        (VALUES[got[0]], got[1:], want[1:])
        for got, want in zip(rows, expected, strict=True)
        if got != want
    ]
    assert not different, "value, SQL, Python:\n" + "\n".join(map(repr, different))


def random_values(count: int, seed: int = 13) -> list[str]:
    """Seeded random strings of code points below 256, the only ones the repair rewrites: half
    of them mojibake of random text (repaired), half arbitrary (invalid UTF-8 as bytes mostly),
    both with the characters that a naive textual rewrite would confuse: lead bytes after
    lead bytes (ÂÃ), a lead before what looks like a continuation (Ã\x91), control
    characters, the backslash, escape-like text."""
    import random

    rng = random.Random(seed)
    tricky = ["Â", "Ã", "\x91", "\xa9", "\\", "\\xC3", "\x01", "\x00", "x", " ", "©", "\x83"]
    alphabet = [chr(c) for c in range(256)]
    text = [*"aé£ÀÑÿ€🎵ñøß", "\u0100", "\u07ff", "\u0800"]
    values = []
    for i in range(count):
        if i % 2:
            meant = "".join(rng.choice(text) for _ in range(rng.randint(1, 6)))
            values.append(meant.encode().decode("latin-1"))
        else:
            pool = tricky if rng.random() < 0.5 else alphabet
            values.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
    return values


def test_the_duckdb_macro_matches_the_reference_on_random_values(duckdb_sql: str) -> None:
    values = random_values(4000)
    with duckdb.connect() as con:
        con.execute("create table text_repair_input (id integer, value varchar)")
        con.executemany("insert into text_repair_input values (?, ?)", list(enumerate(values)))
        rows = con.execute(f"{duckdb_sql} order by id").fetchall()
    expected = python_results(values)
    different = [
        (values[got[0]], got[1:], want[1:])
        for got, want in zip(rows, expected, strict=True)
        if got != want
    ]
    assert not different, "value, SQL, Python:\n" + "\n".join(map(repr, different[:20]))
    assert sum(want[2] for want in expected) >= 1500  # the repairs were exercised


def test_the_bigquery_macros_are_valid_bigquery_sql(bigquery_sql: str) -> None:
    sqlglot.parse_one(bigquery_sql, read="bigquery")
    for function in ("to_code_points", "safe.code_points_to_bytes", "safe_convert_bytes_to_string"):
        assert function in bigquery_sql
    # DuckDB's spellings must not reach BigQuery
    for duckdb_only in (
        "list_transform",
        "lambda",
        "try(",
        "decode(",
        "from_hex",
        "regexp_full_match",
    ):
        assert duckdb_only not in bigquery_sql, duckdb_only

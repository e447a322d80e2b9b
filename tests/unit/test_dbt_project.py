"""The dbt project without a warehouse of data: it parses and compiles for BigQuery with no
credentials (every compiled model is valid BigQuery SQL), builds on an empty DuckDB warehouse
laid out by the loader's own DDL, and documents every model and column it builds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml

from beatlytica.events import TOPIC_NAMES
from tests.helpers import ROOT

DBT = Path(sys.executable).parent / "dbt"
PROJECT = ROOT / "dbt"
TOPICS = TOPIC_NAMES

#: DuckDB spellings that must never reach BigQuery SQL (sqlglot parses some of them anyway)
DUCKDB_ONLY = {
    "a :: cast": re.compile(r"::"),
    "a double-quoted identifier": re.compile(r'"[A-Za-z_][A-Za-z0-9_]*"\s*\.'),
    "timestamp with time zone": re.compile(r"timestamp with time zone|timestamptz", re.I),
    "isodow": re.compile(r"\bisodow\b", re.I),
    "generate_series": re.compile(r"\bgenerate_series\b", re.I),
    "md5() without to_hex": re.compile(r"(?<!to_hex\()\bmd5\(", re.I),
}


def dbt_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BEATLYTICA_", "DBT_")) and k != "GOOGLE_APPLICATION_CREDENTIALS"
    }
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(overrides)
    return env


def run_dbt(
    *args: str,
    work: Path,
    env: dict[str, str],
    timeout: float = 300,
    check: bool = True,
    project: Path = PROJECT,
) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` on the project, with target and logs in ``work`` (never in dbt/)."""
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )
    if check:
        assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}"
    return result


def fake_service_account_key(path: Path) -> Path:
    """A syntactically valid service-account key for a project that does not exist."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": "dbt@test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(key))
    return path


def models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "beatlytica"
    }


@pytest.fixture(scope="module")
def bigquery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`dbt parse` with no credentials at all, then `dbt compile` with a fake key, both for
    the bigquery target; yields the compiled project's manifest and target folder."""
    work = tmp_path_factory.mktemp("dbt-bigquery")
    env = dbt_env(BEATLYTICA_DBT_TARGET="bigquery", BEATLYTICA_GCP_PROJECT="test-project")
    run_dbt("parse", "--target", "bigquery", work=work, env=env)
    key = fake_service_account_key(work / "service-account.json")
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
    run_dbt("compile", "--no-populate-cache", work=work, env=env)
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    return {"manifest": manifest, "target": work / "target", "work": work, "env": env}


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The seed and every model built on DuckDB over empty raw tables created with the
    loader's own DDL; yields the manifest and each built relation's columns."""
    import duckdb

    from beatlytica.warehouse.duckdb_backend import create_table_sql

    work = tmp_path_factory.mktemp("dbt-empty")
    database = work / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema raw")
        for topic in TOPICS:
            con.execute(create_table_sql("raw", topic))
    env = dbt_env(BEATLYTICA_DUCKDB_PATH=str(database))
    run_dbt("build", "--resource-type", "seed", "--resource-type", "model", work=work, env=env)
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'main'"
        ).fetchall()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    return {"manifest": manifest, "columns": columns}


def test_profile_has_a_local_and_a_bigquery_target_and_no_credentials() -> None:
    profile = yaml.safe_load((PROJECT / "profiles.yml").read_text())["beatlytica"]
    assert "BEATLYTICA_DBT_TARGET" in profile["target"] and "'local'" in profile["target"]
    local, bigquery = profile["outputs"]["local"], profile["outputs"]["bigquery"]
    assert local["type"] == "duckdb" and "BEATLYTICA_DUCKDB_PATH" in local["path"]
    assert bigquery["type"] == "bigquery" and bigquery["method"] == "oauth"
    for key, variable in [
        ("project", "BEATLYTICA_GCP_PROJECT"),
        ("dataset", "BEATLYTICA_BIGQUERY_DATASET"),
        ("location", "BEATLYTICA_BIGQUERY_LOCATION"),
    ]:
        assert variable in bigquery[key]
    secrets = {"keyfile", "keyfile_json", "token", "refresh_token", "client_secret", "password"}
    assert not secrets & (set(local) | set(bigquery))


def test_incremental_facts_replace_day_partitions_on_bigquery(bigquery: dict[str, Any]) -> None:
    nodes = models(bigquery["manifest"])
    for name in ("fact_streams", "fact_page_views"):
        config = nodes[name]["config"]
        assert config["materialized"] == "incremental"
        assert config["incremental_strategy"] == "insert_overwrite"
        assert config["partition_by"] == {
            "field": "event_date",
            "data_type": "date",
            "granularity": "day",
        }
        assert config["cluster_by"], f"{name} is not clustered"


def test_every_model_compiles_to_valid_bigquery_sql(bigquery: dict[str, Any]) -> None:
    compiled_root = bigquery["target"] / "compiled" / "beatlytica"
    nodes = models(bigquery["manifest"])
    assert len(nodes) >= 25
    problems = []
    for name, node in sorted(nodes.items()):
        sql = (compiled_root / node["original_file_path"]).read_text()
        assert "`test-project`." in sql, f"{name} does not read from the BigQuery project"
        try:
            sqlglot.parse_one(sql, read="bigquery")
        except sqlglot.errors.ParseError as e:
            problems.append(f"{name}: {e}")
        problems += [
            f"{name}: {what}" for what, pattern in DUCKDB_ONLY.items() if pattern.search(sql)
        ]
    assert not problems, "\n".join(problems)


def test_an_interval_selects_the_whole_days_it_touches(bigquery: dict[str, Any]) -> None:
    """An Airflow interval across midnight: the facts select both UTC days and overwrite
    exactly those partitions; the reconciliation test compares the interval itself."""
    work = bigquery["work"] / "interval"
    interval = {
        "data_interval_start": "2026-11-01T23:30:00+00:00",
        "data_interval_end": "2026-11-02T00:30:00+00:00",
    }
    run_dbt(
        "compile",
        "--no-populate-cache",
        "--vars",
        json.dumps(interval),
        "--select",
        "fact_streams",
        "assert_fact_streams_match_raw_listens",
        work=work,
        env=bigquery["env"],
    )
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    config = models(manifest)["fact_streams"]["config"]
    assert config["partitions"] == ["date '2026-11-01'", "date '2026-11-02'"]
    compiled = work / "target" / "compiled" / "beatlytica"
    fact = (compiled / "models" / "marts" / "core" / "fact_streams.sql").read_text()
    assert re.search(
        r"event_date >= date '2026-11-01'\s+and event_date < date '2026-11-03'", fact
    ), fact
    test = (compiled / "tests" / "assert_fact_streams_match_raw_listens.sql").read_text()
    assert "ts >= timestamp '2026-11-01T23:30:00+00:00'" in test
    assert "ts < timestamp '2026-11-02T00:30:00+00:00'" in test


def test_an_interval_needs_both_ends_as_timestamps(tmp_path: Path) -> None:
    env = dbt_env(BEATLYTICA_DBT_TARGET="bigquery", BEATLYTICA_GCP_PROJECT="test-project")
    for interval, message in [
        ({"data_interval_start": "2026-11-01T10:00:00"}, "go together"),
        (
            {"data_interval_start": "2026-11-01T10:00:00", "data_interval_end": "yesterday"},
            "must be an ISO 8601 timestamp",
        ),
    ]:
        result = run_dbt(
            "parse", "--vars", json.dumps(interval), work=tmp_path, env=env, check=False
        )
        assert result.returncode != 0 and message in result.stdout, result.stdout[-3000:]


def test_sources_read_the_loaders_raw_dataset(bigquery: dict[str, Any]) -> None:
    sources = [
        s for s in bigquery["manifest"]["sources"].values() if s["package_name"] == "beatlytica"
    ]
    assert sorted(s["name"] for s in sources) == sorted(TOPICS)
    # the union and the data-quality mart read every topic's staging model
    for model in ("int_events_unioned", "mart_data_quality_daily"):
        node = bigquery["manifest"]["nodes"][f"model.beatlytica.{model}"]
        staging = {f"model.beatlytica.stg_{topic}" for topic in TOPICS}
        assert staging <= set(node["depends_on"]["nodes"]), node["depends_on"]
    for source in sources:
        assert (source["database"], source["schema"]) == ("test-project", "raw")
        assert source["loaded_at_field"] == "loaded_at"
        assert source["freshness"]["error_after"]["count"]


def test_every_model_is_documented_and_tested(empty_warehouse: dict[str, Any]) -> None:
    manifest = empty_warehouse["manifest"]
    tested = {
        dependency
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        for dependency in node["depends_on"]["nodes"]
    }
    # a view may be proven by unit tests alone: a data test of a view computes it all again
    unit_tested = {
        dependency
        for unit_test in manifest["unit_tests"].values()
        for dependency in unit_test["depends_on"]["nodes"]
        if dependency.endswith(f".{unit_test['model']}")
    }
    for name, node in models(manifest).items():
        assert node["patch_path"], f"{name} has no yml"
        assert node["description"].strip(), f"{name} has no description"
        is_view = node["config"]["materialized"] == "view"
        proven = tested | unit_tested if is_view else tested
        assert node["unique_id"] in proven, f"{name} has no data test"
        undescribed = [c for c, d in node["columns"].items() if not d["description"].strip()]
        assert not undescribed, f"{name}: columns without description: {undescribed}"


def test_documented_columns_are_the_built_columns(empty_warehouse: dict[str, Any]) -> None:
    built = empty_warehouse["columns"]
    problems = []
    for name, node in sorted(models(empty_warehouse["manifest"]).items()):
        documented = set(node["columns"])
        actual = built.get(name)
        assert actual is not None, f"{name} was not built"
        if documented - actual:
            problems.append(f"{name} documents missing columns {sorted(documented - actual)}")
        if actual - documented:
            problems.append(f"{name} leaves columns undocumented {sorted(actual - documented)}")
    assert not problems, "\n".join(problems)


def test_models_follow_the_cte_style(empty_warehouse: dict[str, Any]) -> None:
    """Import CTEs read ref()/source() only, and a model ends with `select * from <cte>`."""
    for name, node in models(empty_warehouse["manifest"]).items():
        sql = node["raw_code"].strip()
        assert re.search(r"select \* from [a-z_]+$", sql), f"{name} does not end in select *"
        assert not re.search(r"\bfrom\s+raw\.", sql), f"{name} names a raw table directly"
        upper = re.findall(r"\b(?:SELECT|FROM|WHERE|JOIN|GROUP BY|ORDER BY|WITH|CASE|WHEN)\b", sql)
        assert not upper, f"{name} is not lower-case SQL: {upper}"

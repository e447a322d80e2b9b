"""The settings object: environment parsing, validation, and its documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from beatlytica.events import TOPIC_NAMES
from beatlytica.settings import Settings, settings_table
from tests.helpers import ROOT, run_cli


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BEATLYTICA_"):
            monkeypatch.delenv(name)


#: the shape of a CA certificate (the settings check the PEM armour, the clients the rest)
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_defaults_describe_the_embedded_stack(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.topics == TOPIC_NAMES
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.lake == (tmp_path / ".beatlytica" / "lake").as_uri()
    assert s.duckdb_file == tmp_path / ".beatlytica" / "warehouse.duckdb"
    assert s.warehouse == "duckdb"
    assert s.kafka_client_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEATLYTICA_TOPICS", "listen_events, auth_events")
    monkeypatch.setenv("BEATLYTICA_LAKE_URI", "gs://bucket/lake/")
    monkeypatch.setenv("BEATLYTICA_STREAM_TRIGGER", "30 seconds")
    monkeypatch.setenv("BEATLYTICA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("BEATLYTICA_KAFKA_USERNAME", "producer")
    monkeypatch.setenv("BEATLYTICA_KAFKA_PASSWORD", "s3cret")
    s = Settings()
    assert s.topics == ("listen_events", "auth_events")
    assert s.lake == "gs://bucket/lake"
    config = s.kafka_client_config()
    assert config["sasl.username"] == "producer" and config["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BEATLYTICA_TOPICS", "listen_events,plays", "unknown: plays"),
        ("BEATLYTICA_STREAM_TRIGGER", "fast", "stream trigger must be 'availableNow'"),
        ("BEATLYTICA_WAREHOUSE", "bigquery", "needs BEATLYTICA_GCP_PROJECT"),
        ("BEATLYTICA_KAFKA_PARTITIONS", "0", "greater than or equal to 1"),
        ("BEATLYTICA_KAFKA_CA_CERT", "/etc/ca.crt", "must hold PEM certificates"),
        ("BEATLYTICA_KAFKA_CA_CERT", PEM, "BEATLYTICA_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_a_ca_certificate_reaches_both_kinds_of_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka takes the PEM as ssl.ca.pem; the Spark job's Java client as an inline PEM
    trust store (the options travel with the query to the executors: no file to ship)."""
    from spark_jobs.stream_events import kafka_options

    monkeypatch.setenv("BEATLYTICA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("BEATLYTICA_KAFKA_USERNAME", "stream")
    monkeypatch.setenv("BEATLYTICA_KAFKA_PASSWORD", "s3cret")
    monkeypatch.setenv("BEATLYTICA_KAFKA_CA_CERT", PEM)
    s = Settings()
    assert s.kafka_client_config()["ssl.ca.pem"] == PEM
    options = kafka_options(s, "listen_events")
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.certificates"] == PEM
    assert not [k for k in options if "ca.pem" in k or k.startswith("kafka.sasl.pass")]
    assert 'password="s3cret"' in options["kafka.sasl.jaas.config"]


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEATLYTICA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValueError, match="needs BEATLYTICA_KAFKA_USERNAME"):
        Settings().kafka_client_config()


def test_docs_show_every_setting() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = re.search(
        r"<!-- settings-table:begin -->\n(.*)<!-- settings-table:end -->", text, re.S
    )
    assert documented, "docs/configuration.md lost its settings table markers"
    assert documented.group(1) == settings_table(), (
        "docs/configuration.md is stale: regenerate it with `beatlytica settings --table`"
    )


def test_log_settings_are_settings_read_before_the_others(monkeypatch, capsys) -> None:
    """BEATLYTICA_LOG_LEVEL/LOG_FORMAT are documented settings, case-insensitive, and
    setup_logging reads them even when another setting is invalid."""
    import json
    import logging

    from beatlytica.logs import setup_logging

    monkeypatch.setenv("BEATLYTICA_LOG_LEVEL", "warning")
    monkeypatch.setenv("BEATLYTICA_LOG_FORMAT", "JSON")
    monkeypatch.setenv("BEATLYTICA_TOPICS", "songs")  # invalid, but not logging's concern
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    setup_logging()
    logging.getLogger("beatlytica.test").info("not shown")
    logging.getLogger("beatlytica.test").warning("shown", extra={"fields": {"n": 1}})
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown"]
    assert json.loads(lines[0])["n"] == 1
    assert logging.getLogger().level == logging.WARNING
    with pytest.raises(ValidationError, match="topics"):
        Settings()


def test_one_executable_finder(tmp_path, monkeypatch) -> None:
    import sys
    from pathlib import Path

    from beatlytica.errors import BeatlyticaError
    from beatlytica.executables import executable

    # beside the running interpreter first, whatever PATH says
    assert executable("python3", "-") == str(Path(sys.executable).parent / "python3")
    tool = tmp_path / "some-tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert executable("python3", "-") == str(Path(sys.executable).parent / "python3")
    assert executable("some-tool", "-") == str(tool)
    with pytest.raises(BeatlyticaError, match=r"`nothing-here` not found .*: install it"):
        executable("nothing-here", "install it")


#: values that would reach SQL, table names or paths if they were taken as they come
HOSTILE = [
    ("BEATLYTICA_TOPICS", "listen_events;drop table raw.listen_events", "unknown"),
    ("BEATLYTICA_TOPICS", "../../etc/passwd", "unknown"),
    ("BEATLYTICA_WAREHOUSE_RAW_SCHEMA", "raw; drop schema main cascade", "should match pattern"),
    ("BEATLYTICA_BIGQUERY_DATASET", "beatlytica`; delete from x where true; --", "pattern"),
    ("BEATLYTICA_BIGQUERY_DATASET", "../other", "should match pattern"),
    ("BEATLYTICA_GCP_PROJECT", "proj`.raw.x; --", "should match pattern"),
    ("BEATLYTICA_DAG_START_DATE", "2026-11-01'; drop table x; --", "ISO-8601"),
    ("BEATLYTICA_STREAM_EVENT_TIME_MIN", "0 or 1=1", "ISO-8601"),
]


@pytest.mark.parametrize(("name", "value", "message"), HOSTILE, ids=lambda v: str(v)[:24])
def test_hostile_settings_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message) as error:
        Settings().kafka_client_config()
    assert name.removeprefix("BEATLYTICA_").lower() in str(error.value)


@pytest.mark.parametrize(
    "args",
    [
        ["load", "--start", "2026-11-01'; drop table raw.listen_events; --", "--end", "2026-11-02"],
        ["load", "--start", "2026-11-01", "--end", "2026-11-02", "--topic", "../../etc/passwd"],
        ["load", "--start", "2026-11-01", "--end", "2026-11-02", "--topic", "listen_events;--"],
        ["reconcile", "--start", "1 or 1=1", "--end", "2026-11-02"],
        ["dbt", "--start", "{{ run_query('drop table x') }}", "--end", "2026-11-02", "build"],
    ],
    ids=["sql-in-time", "path-topic", "sql-topic", "sql-reconcile", "jinja-in-dbt-vars"],
)
def test_hostile_interval_and_topic_arguments_stop_before_any_work(
    tmp_path: Path, args: list[str]
) -> None:
    """Interval strings and topic names reach SQL, dbt vars and lake paths: each command
    refuses a value that is not an ISO-8601 time or a topic of the model, in one line, before
    it opens the lake or the warehouse."""
    result = run_cli(*args, BEATLYTICA_HOME=str(tmp_path))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "ISO-8601" in lines[0] or "unknown topics" in lines[0], lines[0]
    assert not (tmp_path / "warehouse.duckdb").exists()

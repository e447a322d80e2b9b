"""Shared fixtures: a generated dataset, and one real Kafka broker per test session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from beatlytica.events import TOPIC_NAMES
from beatlytica.generator.simulation import Simulation, SimulationConfig

ROOT = Path(__file__).resolve().parents[1]
JARS = ROOT / ".cache" / "jars"
SHARED = Path(os.environ.get("BEATLYTICA_SHARED_DIR", ROOT.parent / "shared"))

#: the reference dataset of the generator tests: two simulated days
SAMPLE = SimulationConfig(
    users=1500,
    start=datetime(2026, 11, 1, tzinfo=UTC),
    end=datetime(2026, 11, 3, tzinfo=UTC),
    seed=7,
)


def simulate(config: SimulationConfig) -> list[tuple[str, int, str]]:
    return list(Simulation(config))


@pytest.fixture(scope="session")
def sample_lines() -> list[tuple[str, int, str]]:
    return simulate(SAMPLE)


@pytest.fixture(scope="session")
def sample_events(sample_lines: list[tuple[str, int, str]]) -> dict[str, list[dict[str, Any]]]:
    """The sample, parsed, per topic, in emission order."""
    events: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPIC_NAMES}
    for topic, _, line in sample_lines:
        events[topic].append(json.loads(line))
    return events


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Kafka 4.x broker (KRaft) on a free port, with the four topics, 3 partitions each;
    one per test module, so modules never see each other's records."""
    from beatlytica.kafka_local import LocalKafka, free_port

    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), JARS / "kafka", free_port())
    broker.start({t: 3 for t in TOPIC_NAMES})
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local SparkSession configured as the streaming job configures its own."""
    from spark_jobs.stream_events import SESSION_CONFIG

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("beatlytica-tests")
    builder = builder.config("spark.ui.enabled", "false")
    for key, value in SESSION_CONFIG.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """fake-gcs-server (installed by `make tools`) on a free port; yields its endpoint."""
    from beatlytica.kafka_local import free_port
    from tests.helpers import serving

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    binary = ROOT / ".tools" / "bin" / "fake-gcs-server"
    command = [
        str(binary),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
        *("-public-host", f"127.0.0.1:{port}", "-log-level", "warn"),
    ]
    with serving(command, f"{endpoint}/storage/v1/b"):
        yield endpoint


def create_bucket(endpoint: str, name: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )
    client.create_bucket(name)


#: the window of the loaded_warehouse fixture
WAREHOUSE_WINDOW = ("2026-11-01T00:00:00", "2026-11-02T00:00:00")
#: what the loaded_warehouse fixture generates, for tests that recompute figures independently
WAREHOUSE_SAMPLE = SimulationConfig(
    users=400,
    start=datetime(2026, 11, 1, tzinfo=UTC),
    end=datetime(2026, 11, 2, tzinfo=UTC),
    seed=17,
)


@pytest.fixture(scope="session")
def loaded_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The real pipeline up to the warehouse for one simulated day of 400 users: generator ->
    Kafka -> Spark job -> lake -> loader -> DuckDB. Yields the environment that points every
    `beatlytica` command (and dbt) at it, plus the produced counts per topic."""
    from beatlytica.kafka_local import LocalKafka, free_port
    from tests.helpers import run_cli

    home = tmp_path_factory.mktemp("warehouse-home")
    broker = LocalKafka(home / "kafka", JARS / "kafka", free_port())
    broker.start({t: 3 for t in TOPIC_NAMES})
    try:
        env = {
            "BEATLYTICA_HOME": str(home),
            "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        }
        start, end = WAREHOUSE_WINDOW
        sample = WAREHOUSE_SAMPLE
        generated = run_cli(
            "generate",
            "--sink",
            "kafka",
            "--users",
            str(sample.users),
            "--start",
            start,
            "--end",
            end,
            "--seed",
            str(sample.seed),
            **env,
        )
        assert generated.returncode == 0, generated.stderr
        summary = json.loads(
            next(line for line in generated.stderr.splitlines() if '"generated"' in line)
        )
        produced = {t: summary.get(f"delivered.{t}", 0) for t in TOPIC_NAMES}
        streamed = run_cli("stream", timeout=600, **env)
        assert streamed.returncode == 0, streamed.stderr[-3000:]
    finally:
        broker.stop()
    loaded = run_cli("load", "--start", start, "--end", end, **env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    yield {
        "env": env,
        "duckdb_path": home / "warehouse.duckdb",
        "produced": produced,
        "window": WAREHOUSE_WINDOW,
    }


@pytest.fixture(scope="session")
def built_warehouse(
    loaded_warehouse: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A copy of the loaded warehouse after a full `beatlytica dbt build`."""
    import shutil

    from tests.helpers import run_cli

    home = tmp_path_factory.mktemp("built-home")
    shutil.copy(loaded_warehouse["duckdb_path"], home / "warehouse.duckdb")
    env = {"BEATLYTICA_HOME": str(home)}
    built = run_cli("dbt", "build", timeout=900, **env)
    assert built.returncode == 0, built.stdout[-5000:]
    return {**loaded_warehouse, "env": env, "duckdb_path": home / "warehouse.duckdb"}

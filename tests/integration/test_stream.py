"""The streaming job against the real local broker and real local Spark.

generator -> Kafka -> `beatlytica stream` -> lake, read back through the commit logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
from confluent_kafka import Producer

from beatlytica.events import TOPIC_NAMES, event_id, lake_fields
from beatlytica.kafka_local import LocalKafka
from beatlytica.lake import committed_files, quarantine_uri, raw_table_uri
from beatlytica.schemas import json_schema
from spark_jobs.transforms import UNREADABLE_OBJECT
from tests.helpers import BEATLYTICA, ROOT, cli_env, run_cli

pytestmark = pytest.mark.integration

WINDOW = ("--start", "2026-11-01T00:00:00", "--end", "2026-11-01T12:00:00")
LATE_TS = 1_793_491_200_000 - 5 * 3_600_000  # 2026-10-31T19:00Z, five hours before the window


def malformed(topic: str, good: dict[str, Any]) -> list[str]:
    """Records the job must quarantine, one per kind of problem."""
    return [
        "this is not json",
        json.dumps({**good, "ts": "yesterday"}),
        json.dumps({k: v for k, v in good.items() if k != "sessionId"}),
        json.dumps({**good, "level": "platinum"}),
        # once a poison record: "long overflow" in every batch, forever
        json.dumps({**good, "ts": 2**63 - 1}),
        json.dumps({**good, "ts": good["ts"] // 1000}),  # seconds: 1970, loaded by no interval
        # over the event size limit (64 KiB; Kafka's own is 1 MB), and nested deeper than the
        # JSON parser goes
        json.dumps({**good, "song": "x" * 70_000}),
        json.dumps(good)[:-1] + ', "x": ' + "[" * 1000 + "]" * 1000 + "}",
    ]


def produce_raw(bootstrap: str, records: list[tuple[str, str | bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for topic, value in records:
        producer.produce(topic, value.encode() if isinstance(value, str) else value, b"test")
    assert producer.flush(30) == 0


def read_lake(lake: str, kind: str, topic: str) -> list[dict[str, Any]]:
    uri = raw_table_uri(lake, topic) if kind == "raw" else quarantine_uri(lake, topic)
    files = [f.removeprefix("file://") for f in committed_files(uri)]
    if not files:
        return []
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    types = (
        "{'event_date': DATE, 'event_hour': INTEGER}"
        if kind == "raw"
        else "{'quarantine_date': DATE}"
    )
    relation = con.sql(
        f"select * from read_parquet(?, hive_partitioning = true, hive_types = {types})",
        params=[files],
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


#: printed by the JVM itself when Spark 4 loads the incubating vector module
JVM_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"


def stream_env(broker: LocalKafka, home: Path, **extra: str) -> dict[str, str]:
    return {
        "BEATLYTICA_HOME": str(home),
        "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        **extra,
    }


def continuous_listens_env(broker: LocalKafka, home: Path, **extra: str) -> dict[str, str]:
    """The job on listens only, a micro-batch every two seconds until SIGTERM."""
    return stream_env(
        broker,
        home,
        BEATLYTICA_STREAM_TRIGGER="2 seconds",
        BEATLYTICA_TOPICS="listen_events",
        **extra,
    )


def start_stream(env: dict[str, str], stderr: Any) -> subprocess.Popen[str]:
    """`beatlytica stream` in the background, its log to ``stderr``."""
    return subprocess.Popen(
        [str(BEATLYTICA), "stream"],
        env=cli_env(**env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )


def generated(tmp: Path, *args: str) -> dict[str, list[dict[str, Any]]]:
    out = tmp / "expected"
    assert run_cli("generate", "--sink", "files", "--out", str(out), *args).returncode == 0
    return {
        t: [json.loads(line) for line in (out / f"{t}.jsonl").read_text().splitlines()]
        for t in TOPIC_NAMES
    }


def two_rounds(tmp: Path, seed: str) -> tuple[list[tuple[str, ...]], list[list[str]]]:
    """Two rounds of listens for a continuous job (the second a day after the first's window):
    their generator arguments, and the event ids each round must put in the lake."""
    rounds = [
        ("--users", "50", *WINDOW, "--seed", seed),
        ("--users", "50", "--start", "2026-11-02T00:00:00", "--end", "2026-11-02T06:00:00"),
    ]
    expected = [
        [event_id("listen_events", e) for e in generated(tmp / str(n), *a)["listen_events"]]
        for n, a in enumerate(rounds)
    ]
    return rounds, expected


def wait_while_running(
    process: subprocess.Popen[str], log_file: Path, condition: Any, what: str, timeout_s: float
) -> None:
    """Poll ``condition`` until it holds; the job must stay up meanwhile (else its log tail)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, log_file.read_text()[-3000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_generator_to_kafka_to_lake(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    args = ("--users", "300", *WINDOW, "--seed", "21")
    env = stream_env(kafka_broker, tmp_path / "home")
    assert run_cli("generate", "--sink", "kafka", *args, **env).returncode == 0
    expected = generated(tmp_path, *args)
    late = dict(expected["listen_events"][0], ts=LATE_TS, itemInSession=10_000)
    expected["listen_events"].append(late)
    bad = {t: malformed(t, expected[t][0]) for t in TOPIC_NAMES}
    # and bytes that are not UTF-8 inside a string (Latin-1 written raw)
    latin1 = {
        t: json.dumps(expected[t][0]).encode().replace(b'"ts"', b'"\xe9ts"', 1) for t in TOPIC_NAMES
    }
    produce_raw(
        kafka_broker.bootstrap_servers,
        [("listen_events", json.dumps(late))]
        + [(t, v) for t in TOPIC_NAMES for v in [*bad[t], latin1[t]]],
    )

    result = run_cli("stream", timeout=600, **env)
    assert result.returncode == 0, result.stderr[-3000:]

    lake = (tmp_path / "home" / "lake").as_uri()
    for topic in TOPIC_NAMES:
        rows = read_lake(lake, "raw", topic)
        # exactly the produced events, each once, identified by the shared event_id
        assert sorted(r["event_id"] for r in rows) == sorted(
            event_id(topic, e) for e in expected[topic]
        ), topic
        columns = [f.column for f in lake_fields(topic)]
        assert list(rows[0])[: len(columns)] == columns
        required = [f.column for f in lake_fields(topic) if f.required]
        assert all(r[c] is not None for r in rows for c in required), topic
        # and every row is still a valid event of the model
        validator = jsonschema.Draft202012Validator(json_schema(topic))
        by_id = {event_id(topic, e): e for e in expected[topic]}
        for r in rows:
            payload = by_id[r["event_id"]]
            assert validator.is_valid(payload)
            assert r["session_id"] == payload["sessionId"]
            assert int(r["ts"].timestamp() * 1000) == payload["ts"]
            assert r["event_date"].isoformat() == r["ts"].date().isoformat()
            assert r["event_hour"] == r["ts"].hour

        quarantined = read_lake(lake, "quarantine", topic)
        # the bytes that came, as they came, readable by DuckDB
        assert sorted(q["raw_value"] for q in quarantined) == sorted(
            [v.encode() for v in bad[topic]] + [latin1[topic]]
        )
        errors = {q["raw_value"]: q["error"] for q in quarantined}
        assert errors.pop(latin1[topic]) == "value is not valid UTF-8"
        errors = {raw.decode(): error for raw, error in errors.items()}
        assert errors[bad[topic][0]] == "not a JSON object"
        assert errors[bad[topic][1]] == "wrong type: ts (expected epoch_millis)"
        assert errors[bad[topic][2]] == "missing required fields: sessionId"
        assert errors[bad[topic][3]] == "value not allowed: level=platinum"
        assert errors[bad[topic][4]].startswith("event time out of range")
        assert errors[bad[topic][5]].startswith("event time out of range")
        big = len(bad[topic][6].encode())
        assert errors[bad[topic][6]] == f"value too large: {big} bytes (the limit is 65536)"
        assert errors[bad[topic][7]] == UNREADABLE_OBJECT

    # the late event sits in its own event-time partition
    late_files = [
        f
        for f in committed_files(raw_table_uri(lake, "listen_events"))
        if "event_date=2026-10-31/event_hour=19/" in f
    ]
    assert late_files
    # one structured log line per micro-batch of a topic, with the counts
    batches = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and '"micro-batch"' in line
    ]
    raw_lines = {b["topic"]: b for b in batches}
    assert len(raw_lines) == len(batches) == len(TOPIC_NAMES)  # one read of each topic
    assert raw_lines["listen_events"]["written_rows"] == len(expected["listen_events"])
    assert raw_lines["listen_events"]["quarantined_rows"] == len(bad["listen_events"]) + 1
    assert (
        raw_lines["listen_events"]["input_rows"]
        == len(expected["listen_events"]) + len(bad["listen_events"]) + 1
    )
    assert "listen_events" in json.dumps(raw_lines["listen_events"]["end_offsets"])
    # nothing but the job's own JSON lines: no Spark start-up banner, log4j or py4j chatter
    # (the JVM's own notice of the vector module, printed before any logging exists, aside)
    chatter = [
        line
        for line in result.stderr.splitlines() + result.stdout.splitlines()
        if line.strip() and not line.startswith("{") and JVM_NOTICE not in line
    ]
    assert chatter == [], chatter


def _committed_batches(table: Path) -> int:
    log = table / "_spark_metadata"
    return len([p for p in log.iterdir() if p.name.split(".")[0].isdigit()]) if log.exists() else 0


def test_exactly_once_after_the_driver_is_killed(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    args = ("--users", "800", "--start", "2026-11-01", "--end", "2026-11-02", "--seed", "5")
    env = stream_env(
        kafka_broker, tmp_path / "home", BEATLYTICA_STREAM_MAX_OFFSETS_PER_TRIGGER="3000"
    )
    assert run_cli("generate", "--sink", "kafka", *args, **env).returncode == 0
    expected = generated(tmp_path, *args)
    bad = malformed("listen_events", expected["listen_events"][0])
    produce_raw(kafka_broker.bootstrap_servers, [("listen_events", v) for v in bad])
    lake_dir = tmp_path / "home" / "lake"
    listens = lake_dir / "raw" / "listen_events"

    # first run: SIGKILL the whole driver (python and its JVM) once two batches committed
    process = subprocess.Popen(
        [str(BEATLYTICA), "stream"],
        env=cli_env(**env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while _committed_batches(listens) < 2:
        assert process.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "no batches committed in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = read_lake(lake_dir.as_uri(), "raw", "listen_events")
    assert 0 < len(partial) < len(expected["listen_events"])

    # second run to completion: nothing lost, nothing twice
    result = run_cli("stream", timeout=900, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    for topic in TOPIC_NAMES:
        ids = [r["event_id"] for r in read_lake(lake_dir.as_uri(), "raw", topic)]
        assert Counter(ids).most_common(1)[0][1] == 1, f"duplicates in {topic}"
        assert sorted(ids) == sorted(event_id(topic, e) for e in expected[topic]), topic
    quarantined = read_lake(lake_dir.as_uri(), "quarantine", "listen_events")
    assert sorted(q["raw_value"] for q in quarantined) == sorted(v.encode() for v in bad)


def test_the_same_job_writes_a_gs_lake(
    kafka_broker: LocalKafka, gcs_emulator: str, tmp_path: Path
) -> None:
    """gs:// through the Hadoop GCS connector (against fake-gcs-server): no code difference."""
    import pyarrow.parquet as pq

    from beatlytica.lake import filesystem
    from tests.conftest import create_bucket

    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    create_bucket(gcs_emulator, "beatlytica-lake")
    args = ("--users", "100", *WINDOW, "--seed", "3")
    lake = "gs://beatlytica-lake/lake"
    env = stream_env(
        kafka_broker,
        tmp_path / "home",
        BEATLYTICA_LAKE_URI=lake,
        BEATLYTICA_GCS_ENDPOINT=gcs_emulator,
    )
    assert run_cli("generate", "--sink", "kafka", *args, **env).returncode == 0
    expected = generated(tmp_path, *args)

    result = run_cli("stream", timeout=600, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    gcs, _ = filesystem(lake, gcs_emulator)
    for topic in TOPIC_NAMES:
        files = committed_files(raw_table_uri(lake, topic), gcs_emulator)
        assert files and all(f.startswith(f"{lake}/raw/{topic}/event_date=") for f in files)
        table = pq.ParquetDataset([f.removeprefix("gs://") for f in files], filesystem=gcs)
        ids = table.read(columns=["event_id"]).column("event_id").to_pylist()
        assert sorted(ids) == sorted(event_id(topic, e) for e in expected[topic])
    assert not (tmp_path / "home" / "lake").exists()  # nothing went to the local folder

    # the loader reads the same gs:// lake into DuckDB
    loaded = run_cli("load", "--start", WINDOW[1], "--end", WINDOW[3], **env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    report = json.loads(loaded.stdout)
    assert {t: r["rows"] for t, r in report.items()} == {t: len(expected[t]) for t in TOPIC_NAMES}


def test_processing_time_trigger_keeps_up_and_stops_on_sigterm(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    env = continuous_listens_env(kafka_broker, tmp_path / "home")
    process = start_stream(env, subprocess.PIPE)
    lake = (tmp_path / "home" / "lake").as_uri()
    try:
        expected: list[str] = []
        # two rounds of production while the job runs: each is picked up by a later batch
        for seed in ("1", "2"):
            args = ("--users", "50", *WINDOW, "--seed", seed, "--instance", seed)
            assert run_cli("generate", "--sink", "kafka", *args, **env).returncode == 0
            expected += [
                event_id("listen_events", e)
                for e in generated(tmp_path / seed, *args)["listen_events"]
            ]
            deadline = time.monotonic() + 180
            while len(read_lake(lake, "raw", "listen_events")) < len(expected):
                assert process.poll() is None, process.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the running job did not pick the events up"
                time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert "SIGTERM: stopping the queries" in stderr
    ids = [r["event_id"] for r in read_lake(lake, "raw", "listen_events")]
    assert sorted(ids) == sorted(expected)


def test_a_failed_query_is_restarted_in_the_driver_and_loses_nothing(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    """A storage fault fails the listens query (a file where its next partition folder goes);
    the driver restarts it from its checkpoint with a growing wait, never exiting, and once
    the fault is gone the query is healthy again and the lake holds every event once."""
    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    env = continuous_listens_env(
        kafka_broker,
        tmp_path / "home",
        BEATLYTICA_STREAM_RESTART_BACKOFF_SECONDS="2",
        BEATLYTICA_STREAM_QUERY_RESTARTS="10",
    )
    log_file = tmp_path / "stream.log"
    lake = (tmp_path / "home" / "lake").as_uri()
    listens = tmp_path / "home" / "lake" / "raw" / "listen_events"
    rounds, expected = two_rounds(tmp_path, "1")

    def logged(message: str) -> list[dict[str, Any]]:
        lines = log_file.read_text().splitlines()
        return [json.loads(x) for x in lines if x.startswith("{") and message in x]

    def wait_for(condition: Any, what: str) -> None:
        wait_while_running(process, log_file, condition, what, 180)

    with log_file.open("w") as stderr:
        process = start_stream(env, stderr)
    try:
        assert run_cli("generate", "--sink", "kafka", *rounds[0], **env).returncode == 0
        wait_for(lambda: len(read_lake(lake, "raw", "listen_events")) == len(expected[0]), "1")
        blocker = listens / "event_date=2026-11-02"
        blocker.write_text("not a folder\n")
        assert run_cli("generate", "--sink", "kafka", *rounds[1], **env).returncode == 0
        wait_for(lambda: len(logged("restarting it from its checkpoint")) >= 2, "two restarts")
        blocker.unlink()
        wait_for(lambda: logged("listen_events: healthy again"), "the healthy batch")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, log_file.read_text()[-3000:]
    restarts = logged("restarting it from its checkpoint")
    waits = [r["restart_in_s"] for r in restarts]
    assert waits[:2] == [2, 4], waits  # doubling
    assert [r["failures_in_a_row"] for r in restarts] == list(range(1, len(restarts) + 1))
    assert not logged("streaming failed")
    ids = [r["event_id"] for r in read_lake(lake, "raw", "listen_events")]
    assert Counter(ids).most_common(1)[0][1] == 1
    assert sorted(ids) == sorted(expected[0] + expected[1])


def test_the_continuous_stream_rides_out_a_broker_outage(tmp_path: Path) -> None:
    """The broker stopped for 30 s under the running job, then started again on its port and
    data: the queries wait, nothing fails or restarts, and the events produced after the
    outage reach the lake with the earlier ones, each once."""
    from beatlytica.kafka_local import free_port
    from tests.conftest import JARS

    topics = {"listen_events": 3}
    broker = LocalKafka(tmp_path / "kafka", JARS / "kafka", free_port())
    broker.start(topics)
    env = continuous_listens_env(broker, tmp_path / "home")
    log_file = tmp_path / "stream.log"
    lake = (tmp_path / "home" / "lake").as_uri()
    rounds, expected = two_rounds(tmp_path, "4")

    def wait_for_lake(count: int) -> None:
        def holds() -> bool:
            return len(read_lake(lake, "raw", "listen_events")) == count

        wait_while_running(process, log_file, holds, f"the lake to hold {count} listens", 240)

    with log_file.open("w") as stderr:
        process = start_stream(env, stderr)
    try:
        assert run_cli("generate", "--sink", "kafka", *rounds[0], **env).returncode == 0
        wait_for_lake(len(expected[0]))
        assert broker.stop()
        time.sleep(30)
        assert process.poll() is None, log_file.read_text()[-3000:]
        broker.start(topics)
        assert run_cli("generate", "--sink", "kafka", *rounds[1], **env).returncode == 0
        wait_for_lake(len(expected[0]) + len(expected[1]))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        broker.stop()
    log = log_file.read_text()
    assert process.returncode == 0, log[-3000:]
    assert "restarting it from its checkpoint" not in log and "streaming failed" not in log
    ids = [r["event_id"] for r in read_lake(lake, "raw", "listen_events")]
    assert sorted(ids) == sorted(expected[0] + expected[1])


def test_lost_offsets_stop_the_job_with_a_non_zero_exit(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    """Topics recreated under a checkpoint (data loss) is unrecoverable: exit 1, for the
    operator's restart policy and for a human to decide."""
    kafka_broker.reset_topics({t: 3 for t in TOPIC_NAMES})
    env = stream_env(kafka_broker, tmp_path / "home", BEATLYTICA_TOPICS="listen_events")
    args = ("--users", "100", *WINDOW)
    assert run_cli("generate", "--sink", "kafka", *args, **env).returncode == 0
    assert run_cli("stream", timeout=600, **env).returncode == 0
    kafka_broker.reset_topics({"listen_events": 3})
    assert (
        run_cli(
            "generate",
            "--sink",
            "kafka",
            "--users",
            "5",
            "--start",
            "2026-11-01",
            "--end",
            "2026-11-01T01:00:00",
            **env,
        ).returncode
        == 0
    )
    result = run_cli("stream", timeout=600, **env)
    assert result.returncode == 1
    failure = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and '"streaming failed"' in line
    ]
    assert failure and "listen_events" in result.stderr


def test_spark_submit_without_the_kafka_connector_fails_with_one_line(tmp_path: Path) -> None:
    """The operator runs the job with spark-submit; on a Spark without the connector jars the
    job says which jars are missing, in one line, and exits non-zero (the spark image has them:
    tests/cluster runs it there)."""
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "spark-submit"),
            "--master",
            "local[1]",
            str(ROOT / "spark_jobs" / "stream_events.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=cli_env(
            BEATLYTICA_HOME=str(tmp_path / "home"),
            SPARK_LOCAL_IP="127.0.0.1",
            BEATLYTICA_JARS_DIR=str(tmp_path / "no-jars"),
            BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
            PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            PYSPARK_PYTHON=str(ROOT / ".venv" / "bin" / "python"),
        ),
    )
    output = result.stdout + result.stderr  # spark-submit passes the job's stderr to stdout
    assert result.returncode == 2, output[-3000:]
    errors = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"ERROR"' in line
    ]
    assert len(errors) == 1, output[-3000:]
    assert "spark-sql-kafka-0-10" in errors[0]["message"]
    assert "Traceback" not in output

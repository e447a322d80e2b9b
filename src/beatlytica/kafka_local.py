"""A real Apache Kafka 4.x broker on 127.0.0.1 for the embedded stack and the tests.

KRaft combined mode (one process is broker and controller), jars resolved by mvn from
``jars/kafka/pom.xml`` into the git-ignored jar cache, data under ``<home>/kafka``.
``beatlytica kafka up|down|status`` and the pytest fixture both use :class:`LocalKafka`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from beatlytica.errors import BeatlyticaError

log = logging.getLogger(__name__)

#: the broker's main class in kafka_2.13 4.x
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP = "-Xmx512m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class TlsListener:
    """A second client listener that speaks TLS (protocol SSL) on ``port``, with the broker's
    private key (PKCS#8) and certificate chain in one PEM file, ``keystore``."""

    port: int
    keystore: Path


def server_properties(
    port: int, controller_port: int, log_dir: Path, tls: TlsListener | None = None
) -> str:
    """The combined-mode broker configuration (single node, replication factor 1)."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        # topics are created explicitly with their partition counts, as Strimzi does
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    if tls is not None:
        props["listeners"] += f",SSL://127.0.0.1:{tls.port}"
        props["advertised.listeners"] += f",SSL://127.0.0.1:{tls.port}"
        props["listener.security.protocol.map"] += ",SSL:SSL"
        props["ssl.keystore.type"] = "PEM"
        props["ssl.keystore.location"] = str(tls.keystore)
    return "".join(f"{k}={v}\n" for k, v in props.items())


LOG4J2 = """\
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


@dataclass
class LocalKafka:
    """One broker: ``data_dir`` holds its config, log segments, PID file and log."""

    data_dir: Path
    jars_dir: Path
    port: int = 9092
    java: str = "java"
    tls: TlsListener | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _classpath(self) -> str:
        if not any(self.jars_dir.glob("kafka_2.13-*.jar")):
            raise BeatlyticaError(
                f"no Kafka broker jars in {self.jars_dir}; run `make jars` "
                "(mvn -f jars/kafka/pom.xml dependency:copy-dependencies) first"
            )
        return str(self.jars_dir / "*")

    def pid(self) -> int | None:
        """The PID of our running broker, or None (a stale PID file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if KAFKA_MAIN.encode() in cmdline else None

    def start(self, topics: dict[str, int], timeout_s: float = 60.0) -> None:
        """Start the broker (if not running), wait until it serves, and create ``topics``
        (name -> partitions) that do not exist yet. Safe to call again."""
        if self.pid() is not None:
            log.info("Kafka already running", extra={"fields": {"pid": self.pid()}})
            self.create_topics(topics, timeout_s)
            return
        if _port_open(self.port):
            raise BeatlyticaError(
                f"port {self.port} on 127.0.0.1 is taken by another process; stop it or set "
                "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS to another 127.0.0.1:<port>"
            )
        classpath = self._classpath()
        log_dir = self.data_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(server_properties(self.port, free_port(), log_dir, self.tls))
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(LOG4J2.format(log_file=self.log_file))
        jvm = [self.java, HEAP, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
        if not (log_dir / "meta.properties").exists():
            cluster_id = uuid.uuid4().hex[:22]
            subprocess.run(
                [*jvm, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config)],
                check=True,
                capture_output=True,
                text=True,
            )
        with (self.data_dir / "broker.out").open("ab") as out:
            process = subprocess.Popen(
                [*jvm, KAFKA_MAIN, str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the shell does not reach the broker
            )
        self.pid_file.write_text(f"{process.pid}\n")
        try:
            self._await_ready(process, timeout_s)
            self.create_topics(topics, timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info(
            "Kafka broker ready",
            extra={"fields": {"bootstrap": self.bootstrap_servers, "pid": process.pid}},
        )

    def _await_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BeatlyticaError(
                    f"the Kafka broker exited with code {process.returncode}; "
                    f"see {self.data_dir / 'broker.out'} and {self.log_file}"
                )
            if _port_open(self.port):
                try:
                    metadata = admin.list_topics(timeout=2)
                    if metadata.brokers:
                        return
                except Exception:
                    pass
            time.sleep(0.3)
        raise BeatlyticaError(
            f"the Kafka broker did not become ready on {self.bootstrap_servers} within "
            f"{timeout_s:.0f}s; see {self.log_file}"
        )

    def create_topics(self, topics: dict[str, int], timeout_s: float = 30.0) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        existing = set(admin.list_topics(timeout=timeout_s).topics)
        missing = [NewTopic(t, p, 1) for t, p in topics.items() if t not in existing]
        if not missing:
            return
        for topic, future in admin.create_topics(missing, request_timeout=timeout_s).items():
            future.result(timeout=timeout_s)
            log.info("created topic", extra={"fields": {"topic": topic}})

    def reset_topics(self, topics: dict[str, int], timeout_s: float = 60.0) -> None:
        """Delete ``topics`` and create them empty again (the demo's fresh start)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        existing = set(admin.list_topics(timeout=timeout_s).topics)
        doomed = [t for t in topics if t in existing]
        if doomed:
            for future in admin.delete_topics(doomed, request_timeout=timeout_s).values():
                future.result(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while doomed and time.monotonic() < deadline:
            # deletion completes asynchronously; the names are free once metadata drops them
            if not set(doomed) & set(admin.list_topics(timeout=timeout_s).topics):
                break
            time.sleep(0.2)
        while True:
            try:
                self.create_topics(topics, timeout_s)
                return
            except Exception as e:
                if time.monotonic() > deadline:
                    raise BeatlyticaError(f"could not recreate topics {doomed}: {e}") from e
                time.sleep(0.5)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker by PID (SIGTERM, then SIGKILL). Returns whether one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pid() is not None:
            _reap(pid)
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    """Collect the exit status when the broker is our own child (tests), so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def from_settings() -> LocalKafka:
    """The embedded stack's broker: port from BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS."""
    from beatlytica.settings import get_settings

    settings = get_settings()
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise BeatlyticaError(
            "the local broker listens on 127.0.0.1; BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS is "
            f"{settings.kafka_bootstrap_servers!r}"
        )
    return LocalKafka(settings.home_dir / "kafka", settings.jars_path("kafka"), int(port))

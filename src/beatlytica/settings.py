"""One typed settings object for every stage, read from ``BEATLYTICA_*`` environment variables.

Defaults describe the embedded stack (local Kafka, a folder as the lake, DuckDB); the Helm
chart's ConfigMap sets the cluster values. ``beatlytica settings`` prints the table of
variables that docs/configuration.md holds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from beatlytica import __version__
from beatlytica.events import TOPIC_NAMES

ENV_PREFIX = "BEATLYTICA_"


class LogSettings(BaseSettings):
    """How every process logs; read on its own at start-up, before the other settings are
    validated (so that their errors are logged the configured way)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Level of the project's log lines; `DEBUG` also lets Spark's and py4j's "
        "own logs through.",
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="`json` (one object per line) or `text`; unset: text on a terminal, "
        "JSON otherwise.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Settings(LogSettings):
    """Pipeline settings. Every field is the environment variable ``BEATLYTICA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- where things run ------------------------------------------------------------------
    home: Path = Field(
        Path(".beatlytica"),
        description="State folder of the embedded stack: lake, warehouse, Kafka data, logs.",
    )
    jars_dir: Path = Field(
        Path(".cache/jars"),
        description="Jar cache filled by `make jars` (Kafka broker, Spark connectors).",
    )
    runtime: Literal["local", "kubernetes"] = Field(
        "local",
        description="Where pod tasks run: `local` subprocesses or `kubernetes` pods.",
    )

    # --- generator ---------------------------------------------------------------------------
    generator_quoted_user_agent_share: float = Field(
        0.73,
        ge=0,
        le=1,
        description="Share of the generator's users whose `userAgent` is wrapped in literal "
        'double quotes on every event (`"\\"Mozilla/5.0 …\\""` in the JSON), as in 73% of '
        "Eventsim's events; the others' is bare. 0: every agent bare.",
    )
    generator_mojibake_song_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the generator's songs whose `artist` and `song` are double-encoded "
        "UTF-8 (mojibake: `elÃ¤mÃ¤ssÃ¤` for `elämässä`), as Eventsim's song file holds some, "
        "so one artist appears under two spellings. Only the one song in eight with non-ASCII "
        "letters changes: the default garbles 5% of the listens, Eventsim's figure. 0: none.",
    )
    generator_tag: str | None = Field(
        None,
        description="Eventsim's `--tag`: a `tag` field with this text on every event that "
        "carries the user details (auth `Logged In` or `Cancelled`), after them, as Eventsim "
        "writes it. Empty: no tag. `beatlytica generate --tag` overrides it.",
    )

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    topics: Annotated[tuple[str, ...], NoDecode] = Field(
        TOPIC_NAMES, description="Event topics the pipeline carries, comma separated."
    )
    kafka_partitions: int = Field(3, ge=1, description="Partitions per topic on the local broker.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol."
    )
    kafka_sasl_mechanism: str = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol uses SASL."
    )
    kafka_username: str | None = Field(None, description="SASL user name (a KafkaUser).")
    kafka_password: SecretStr | None = Field(
        None, description="SASL password; from a Secret, never from a file in the repository."
    )
    kafka_ca_cert: str | None = Field(
        None,
        description="PEM certificate(s) of the CA that signed the brokers' certificates, for "
        "the SSL and SASL_SSL protocols (on GKE the `ca.crt` of Strimzi's "
        "`<cluster>-cluster-ca-cert` Secret); unset, the system's CAs are trusted.",
    )
    kafka_connect_timeout_s: float = Field(
        15.0, gt=0, description="How long clients wait for an unreachable broker before failing."
    )
    kafka_delivery_timeout_s: float = Field(
        120.0,
        gt=0,
        description="How long the generator's producer retries an event (librdkafka "
        "delivery.timeout.ms) before counting it undelivered and exiting non-zero: a broker "
        "outage shorter than this loses nothing. On SIGTERM the producer flushes for this plus "
        "5 seconds; the chart's producer.deliveryTimeoutSeconds sets it and sizes the pod's "
        "grace period above that.",
    )

    # --- lake --------------------------------------------------------------------------------
    lake_uri: str | None = Field(
        None, description="Root of the Parquet lake: `file://…` or `gs://…` (default: <home>/lake)."
    )

    gcs_endpoint: str | None = Field(
        None,
        description="GCS API endpoint of an emulator (fake-gcs-server on kind and in tests), "
        "e.g. `http://127.0.0.1:4443`; unset on GKE, where Workload Identity authenticates.",
    )

    # --- streaming job -----------------------------------------------------------------------
    stream_trigger: str = Field(
        "availableNow",
        description="`availableNow` (process what there is, then stop) or a processing-time "
        "interval such as `30 seconds`.",
    )
    stream_starting_offsets: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a query without a checkpoint starts reading."
    )
    stream_max_offsets_per_trigger: int | None = Field(
        None, ge=1, description="Upper bound of Kafka offsets per micro-batch (all partitions)."
    )
    stream_query_restarts: int = Field(
        5,
        ge=0,
        description="Times in a row the job restarts a failed topic query itself (from its "
        "checkpoint, exactly once) before it exits 1 for the operator to restart the driver; the "
        "count starts again once the query completes a micro-batch. A gap in the offsets (data "
        "loss) is never retried.",
    )
    stream_restart_backoff_seconds: float = Field(
        5.0,
        gt=0,
        description="Wait before the first in-process restart of a failed query; it doubles "
        "with each further failure in a row, up to five minutes.",
    )
    stream_event_time_min: str = Field(
        "2000-01-01T00:00:00",
        description="Earliest event time (`ts`) the streaming job accepts (UTC); earlier events, "
        "such as seconds sent as milliseconds, are quarantined.",
    )
    stream_event_time_max_ahead_hours: int = Field(
        24,
        ge=0,
        description="How far an event time (`ts`, `registration`) may lie after the record's "
        "Kafka timestamp; later events are quarantined.",
    )
    stream_max_event_bytes: int = Field(
        65_536,
        ge=1_024,
        description="Largest Kafka value the streaming job parses, in bytes (Eventsim's events "
        "take under 1 KiB); a larger one is quarantined whole, unparsed, with its size.",
    )

    # --- warehouse ---------------------------------------------------------------------------
    warehouse: Literal["duckdb", "bigquery"] = Field(
        "duckdb", description="Warehouse backend of the loader and dbt."
    )
    warehouse_raw_schema: str = Field(
        "raw",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Schema (DuckDB) or dataset (BigQuery) of the loader's raw tables.",
    )
    duckdb_path: Path | None = Field(
        None, description="DuckDB database file (default: <home>/warehouse.duckdb)."
    )
    loader_memory_limit_mb: int = Field(
        1024,
        ge=64,
        description="Memory limit of `beatlytica load` on DuckDB, in MiB (DuckDB's "
        "`memory_limit`): what a load needs beyond it spills to `<DuckDB file>.tmp`, so an "
        "interval of any size loads in bounded memory.",
    )
    duckdb_lock_timeout_seconds: float = Field(
        600,
        ge=0,
        description="How long a `beatlytica` command waits for the DuckDB warehouse while "
        "another process writes it (DuckDB has one writer: concurrent loads, dbt), before it "
        "fails naming the holder.",
    )
    gcp_project: str | None = Field(
        None,
        # GCP's project id rules: it reaches table names in SQL, so nothing else may pass
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        description="GCP project of the bucket and BigQuery.",
    )
    bigquery_dataset: str = Field(
        "beatlytica",
        pattern=r"^[A-Za-z0-9_]{1,1024}$",
        description="BigQuery dataset dbt builds its models in (staging, star schema, marts); "
        "the dashboard reads the marts there. The raw tables: BEATLYTICA_WAREHOUSE_RAW_SCHEMA.",
    )
    bigquery_location: str = Field("US", description="BigQuery location.")

    dbt_project_dir: Path = Field(
        Path("dbt"),
        description="The dbt project (with its profiles.yml) that `beatlytica dbt` runs.",
    )

    # --- orchestration ----------------------------------------------------------------------
    dag_start_date: str = Field(
        "2026-11-01T00:00:00",
        description="First data interval of the DAGs (UTC); earlier intervals are never run.",
    )
    pod_template_dir: Path = Field(
        Path("/opt/beatlytica/pod-templates"),
        description="Folder of the pod templates, `<image>.yaml` each: the whole pod of a pod "
        "task but its image, command and arguments (the chart's ConfigMap "
        "beatlytica-pod-templates, mounted into Airflow's scheduler).",
    )
    image_registry: str = Field(
        "beatlytica",
        description="Registry prefix of the images: `beatlytica` on kind (loaded images), "
        "`<region>-docker.pkg.dev/<project>/beatlytica` on GKE.",
    )
    image_tag: str = Field(
        __version__,
        description="Tag of the loader and dbt images the pods run (default: the "
        "project's version).",
    )
    dags_dir: Path = Field(
        Path("dags"), description="The DAG folder the local Airflow runs (`beatlytica dag-run`)."
    )
    task_retries: int = Field(
        3, ge=0, description="Retries of every DAG task (with exponential backoff from 1 minute)."
    )
    task_retry_delay_seconds: int = Field(
        60, ge=1, description="First retry delay of a DAG task; it doubles per try, to 15 minutes."
    )
    pod_startup_timeout_seconds: int = Field(
        300,
        ge=10,
        description="How long a pod task may take to start (image, volume, scheduling) before "
        "its task fails with the pod's events in the log.",
    )
    kube_config_file: Path | None = Field(
        None,
        description="Kubeconfig Airflow creates pod tasks with, for an Airflow outside the "
        "cluster; unset in the cluster, where the scheduler's ServiceAccount is used.",
    )
    interval_minutes: int = Field(
        60, ge=1, description="Length of one data interval of the hourly DAG, in minutes."
    )
    interval_grace_minutes: int = Field(
        10,
        ge=0,
        description="How long after an interval's end its events may still arrive: the lake "
        "sensor waits until the stream is this far past the end (in event time, or having read "
        "all of Kafka at that wall-clock time). Later events are late: the next runs reload "
        "their interval (BEATLYTICA_LATE_LOOKBACK_HOURS).",
    )
    late_lookback_hours: int = Field(
        24,
        ge=0,
        description="How far back each run of the hourly DAG looks for intervals whose "
        "committed lake files changed since they were loaded (late events), and reloads them "
        "with their dbt models. Events later than this are reported by `beatlytica reconcile`, "
        "not reloaded by themselves.",
    )

    @field_validator("topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in TOPIC_NAMES]
        if unknown or not value:
            raise ValueError(
                f"topics must be a non-empty subset of {', '.join(TOPIC_NAMES)}; "
                f"unknown: {', '.join(unknown) or '(none given)'}"
            )
        return value

    @field_validator("stream_event_time_min", "dag_start_date")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        from beatlytica.timeparse import parse_utc

        parse_utc(value)
        return value

    @field_validator("stream_trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        from beatlytica.timeparse import parse_trigger

        parse_trigger(value)
        return value

    @field_validator("kafka_ca_cert")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must hold PEM certificates (-----BEGIN CERTIFICATE----- ...)")
        return value

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Settings:
        if self.kafka_ca_cert and self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                "BEATLYTICA_KAFKA_CA_CERT is set but BEATLYTICA_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}, which uses no TLS (SSL or SASL_SSL do)"
            )
        return self

    @model_validator(mode="after")
    def _cloud_needs_project(self) -> Settings:
        if self.warehouse == "bigquery" and not self.gcp_project:
            raise ValueError("warehouse=bigquery needs BEATLYTICA_GCP_PROJECT")
        return self

    # --- derived values ----------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def lake(self) -> str:
        """The lake URI with its default filled in, without a trailing slash."""
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return (self.home_dir / "lake").as_uri()

    @property
    def duckdb_file(self) -> Path:
        return (self.duckdb_path or self.home_dir / "warehouse.duckdb").expanduser().resolve()

    def jars_path(self, name: str) -> Path:
        """One folder of the jar cache, e.g. ``kafka`` or ``spark``."""
        return (self.jars_dir / name).expanduser().resolve()

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka / Java client properties for the configured cluster."""
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            if not (self.kafka_username and self.kafka_password):
                raise ValueError(
                    f"security protocol {self.kafka_security_protocol} needs "
                    "BEATLYTICA_KAFKA_USERNAME and BEATLYTICA_KAFKA_PASSWORD"
                )
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_username
            config["sasl.password"] = self.kafka_password.get_secret_value()
        if self.kafka_ca_cert:
            config["ssl.ca.pem"] = self.kafka_ca_cert
        return config


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


DOCS_MARKERS = ("<!-- settings-table:begin -->\n", "<!-- settings-table:end -->")


def update_docs(path: Path) -> None:
    """Rewrite the settings table between the markers of a Markdown file."""
    text = path.read_text()
    begin, end = DOCS_MARKERS
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}{settings_table()}{end}{tail}")


def settings_table() -> str:
    """A Markdown table of every setting: variable, default, description."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows) + "\n"

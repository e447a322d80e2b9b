"""The BigQuery warehouse: load jobs from the committed gs:// files, then one script job that
replaces the interval in the raw table.

Per topic and interval:

1. ``<raw>.<topic>`` exists (created if missing): day-partitioned on ``ts``, clustered by
   ``user_id``, schema derived from the event model.
2. A load job writes the interval's committed Parquet files (an explicit URI list, never a
   wildcard: a wildcard would read files of failed batches) into a staging table, with hive
   partitioning so ``event_date`` and ``event_hour`` come from the folder names.
3. A multi-statement query job, in one transaction, deletes the interval's rows and inserts
   the staging rows of the interval, one per event_id; it returns the interval's row count.
4. The staging table is dropped (it also expires after a day, should step 4 never run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from beatlytica.errors import BeatlyticaError
from beatlytica.events import LOADED_AT, id_digest_sql
from beatlytica.lake import raw_table_uri
from beatlytica.schemas import bigquery_schema
from beatlytica.settings import Settings
from beatlytica.warehouse import DEDUPE_ORDER, FACT_TS

#: a load job accepts at most 10,000 source URIs
MAX_URIS_PER_LOAD = 10_000
STAGING_EXPIRY = timedelta(days=1)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M")


@dataclass(frozen=True)
class BigQueryWarehouse:
    client: Any  # google.cloud.bigquery.Client (a recording fake in tests)
    project: str
    dataset: str
    lake: str
    #: the dataset dbt's bigquery target builds its models in
    models_dataset: str = "beatlytica"

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryWarehouse:
        from google.cloud import bigquery

        assert settings.gcp_project  # the settings validator requires it
        client = bigquery.Client(project=settings.gcp_project, location=settings.bigquery_location)
        return cls(
            client,
            settings.gcp_project,
            settings.warehouse_raw_schema,
            settings.lake,
            settings.bigquery_dataset,
        )

    def table_id(self, topic: str) -> str:
        return f"{self.project}.{self.dataset}.{topic}"

    def staging_id(self, topic: str, start: datetime, end: datetime) -> str:
        return f"{self.table_id(topic)}__staging_{_stamp(start)}_{_stamp(end)}"

    # --- the objects each step sends (pure, asserted by the tests) -------------------------

    def table_definition(self, topic: str) -> Any:
        from google.cloud import bigquery

        table = bigquery.Table(self.table_id(topic), schema=bigquery_schema(topic))
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field="ts"
        )
        table.clustering_fields = ["user_id"]
        table.description = f"Raw {topic} from the lake, loaded by `beatlytica load`."
        return table

    def evolved_schema(self, topic: str, current: list[Any]) -> list[Any] | None:
        """The raw table's schema with the model's columns it lacks appended (nullable, as
        every column added to the model since a table was made), or None when it has them."""
        names = {f.name for f in current}
        missing = [f for f in bigquery_schema(topic) if f.name not in names]
        return [*current, *missing] if missing else None

    def load_job_config(self, topic: str) -> Any:
        from google.cloud import bigquery
        from google.cloud.bigquery.external_config import HivePartitioningOptions

        hive = HivePartitioningOptions()
        hive.mode = "CUSTOM"
        hive.source_uri_prefix = (
            f"{raw_table_uri(self.lake, topic)}/{{event_date:DATE}}/{{event_hour:INTEGER}}"
        )
        hive.require_partition_filter = False
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            hive_partitioning=hive,
            # the schema of the lake files; the partition columns come from the folder names
            schema=[
                f
                for f in bigquery_schema(topic)
                if f.name not in ("event_date", "event_hour", LOADED_AT.column)
            ],
        )

    def replace_sql(self, topic: str, start: datetime, end: datetime) -> str:
        columns = ", ".join(f.name for f in bigquery_schema(topic) if f.name != LOADED_AT.column)
        order = ", ".join(DEDUPE_ORDER)
        target = f"`{self.table_id(topic)}`"
        return (
            "begin transaction;\n"
            f"delete from {target} where ts >= @start and ts < @end;\n"
            f"insert into {target} ({columns}, {LOADED_AT.column})\n"
            f"select {columns}, current_timestamp()\n"
            f"from `{self.staging_id(topic, start, end)}`\n"
            "where ts >= @start and ts < @end\n"
            f"qualify row_number() over (partition by event_id order by {order}) = 1;\n"
            "commit transaction;\n"
            f"{self.count_sql(topic)};\n"
        )

    def count_sql(self, topic: str) -> str:
        return (
            f"select count(*) as row_count from `{self.table_id(topic)}` "
            "where ts >= @start and ts < @end"
        )

    def query_job_config(self, start: datetime, end: datetime) -> Any:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
                bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
            ]
        )

    # --- the interface ----------------------------------------------------------------------

    def replace_interval(self, topic: str, files: list[str], start: datetime, end: datetime) -> int:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        if len(files) > MAX_URIS_PER_LOAD:
            raise BeatlyticaError(
                f"{len(files)} lake files for {topic} in one interval exceed BigQuery's "
                f"{MAX_URIS_PER_LOAD} URIs per load job; load shorter intervals"
            )
        bad = [f for f in files if not f.startswith("gs://")]
        if bad:
            raise BeatlyticaError(f"BigQuery loads gs:// lakes only, found {bad[0]}")
        try:
            self.client.create_table(self.table_definition(topic), exists_ok=True)
            target = self.client.get_table(self.table_id(topic))
            schema = self.evolved_schema(topic, list(target.schema))
            if schema is not None:  # a table made before the model gained columns
                target.schema = schema
                self.client.update_table(target, ["schema"])
            staging = self.staging_id(topic, start, end)
            if files:
                self.client.load_table_from_uri(
                    files, staging, job_config=self.load_job_config(topic)
                ).result()
            else:  # an empty interval still replaces (deletes) what the table held for it
                self.client.create_table(
                    bigquery.Table(staging, schema=bigquery_schema(topic)), exists_ok=True
                )
            table = self.client.get_table(staging)
            table.expires = datetime.now(UTC) + STAGING_EXPIRY
            self.client.update_table(table, ["expires"])
            rows = list(
                self.client.query(
                    self.replace_sql(topic, start, end),
                    job_config=self.query_job_config(start, end),
                ).result()
            )
            self.client.delete_table(staging, not_found_ok=True)
        except gexc.GoogleAPIError as e:
            raise BeatlyticaError(f"BigQuery load of {topic} failed: {e}") from None
        return int(rows[0]["row_count"]) if rows else 0

    def count(self, topic: str, start: datetime, end: datetime) -> int:
        job_config = self.query_job_config(start, end)
        rows = list(self.client.query(self.count_sql(topic), job_config=job_config).result())
        return int(rows[0]["row_count"])

    def fingerprint_sql(self, topic: str) -> str:
        return (
            f"select count(*) as row_count, {id_digest_sql('bigquery')} as id_digest "
            f"from `{self.table_id(topic)}` where ts >= @start and ts < @end"
        )

    def fingerprint(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        job_config = self.query_job_config(start, end)
        rows = list(self.client.query(self.fingerprint_sql(topic), job_config=job_config).result())
        return int(rows[0]["row_count"]), int(rows[0]["id_digest"])

    def count_model(self, model: str, start: datetime, end: datetime) -> int:
        sql = (
            f"select count(*) as row_count from `{self.project}.{self.models_dataset}.{model}` "
            f"where {FACT_TS} >= @start and {FACT_TS} < @end"
        )
        rows = list(self.client.query(sql, job_config=self.query_job_config(start, end)).result())
        return int(rows[0]["row_count"])

    def close(self) -> None:
        self.client.close()

{#-
  The earliest Kafka record of every event of a raw table, as the loader keeps it (order:
  kafka_timestamp, kafka_partition, kafka_offset). The same event_id always has the same ts,
  hence the same event_date: ranking within (event_date, event_id) lets a filter on event_date
  reach the source. The result carries the helper column copy_number (always 1).
-#}
{% macro first_kafka_record(relation) %}
    select * from (
        select
            *,
            row_number() over (
                partition by event_date, event_id
                order by kafka_timestamp, kafka_partition, kafka_offset
            ) as copy_number
        from {{ relation }}
    ) as ranked
    where copy_number = 1
{% endmacro %}

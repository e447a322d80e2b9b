{#-
  Type-2 validity ranges [lower_bound, upper_bound) per entity: each range is non-empty, the
  ranges of one entity neither overlap nor leave gaps (a range ends where the next begins), and
  only the last one is open (upper_bound null). Rows where partition_by is null are ignored.
-#}
{% test valid_ranges_are_contiguous(model, partition_by, lower_bound, upper_bound) %}

with

ranges as (

    select
        {{ partition_by }} as entity,
        {{ lower_bound }} as range_start,
        {{ upper_bound }} as range_end,
        lead({{ lower_bound }}) over (
            partition by {{ partition_by }} order by {{ lower_bound }}
        ) as next_range_start
    from {{ model }}
    where {{ partition_by }} is not null

),

violations as (

    select *
    from ranges
    where
        -- an empty or inverted range
        (range_end is not null and range_end <= range_start)
        -- an open range that is not the last one
        or (range_end is null and next_range_start is not null)
        -- a closed range whose successor starts elsewhere (an overlap or a gap)
        or (range_end is not null and (next_range_start is null or next_range_start != range_end))

)

select * from violations

{% endtest %}

{#- every row satisfies a boolean SQL expression (the dbt_utils test, without the package) -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}

"""The project's error type: a message a user can act on, shown as one line by the CLI."""


class BeatlyticaError(Exception):
    """Bad configuration or an unreachable dependency; the CLI prints it and exits non-zero."""


#: the exit code of `beatlytica load --late` when no interval had late events: Airflow skips
#: the task (and the dbt rebuild after it) instead of failing it
NOTHING_LATE = 99

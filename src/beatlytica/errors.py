"""The project's error type: a message a user can act on, shown as one line by the CLI."""


class BeatlyticaError(Exception):
    """Bad configuration or an unreachable dependency; the CLI prints it and exits non-zero."""

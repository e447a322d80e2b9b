"""Beatlytica: the shared Python package of every stage."""

from importlib.metadata import version

#: the project's version: pyproject.toml's, as installed (the venv and every image install it)
__version__ = version("beatlytica")

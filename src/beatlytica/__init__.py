"""Beatlytica: the shared Python package of every stage."""

__version__ = "0.1.0"

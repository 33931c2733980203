"""Maintenance commands: ``python -m scripts.<name>``."""

"""Maintenance scripts: sample data and the docs' chart."""

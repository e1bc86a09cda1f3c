"""Tests of the pytest plugin (src/weighttie/pytest_plugin.py), through pytester."""

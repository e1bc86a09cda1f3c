"""Tests of the variable-identity graph export (src/weighttie/export.py)."""

"""Tests of --load without weight values (src/weighttie/traced.py)."""

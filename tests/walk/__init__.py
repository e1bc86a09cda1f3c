"""Tests of the live walker (src/weighttie/walk.py): analyze, and uses against an eager oracle."""

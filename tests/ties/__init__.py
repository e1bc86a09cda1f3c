"""Tests of ties (src/weighttie/ties.py, tie_record.py, load.py), under every Keras backend."""

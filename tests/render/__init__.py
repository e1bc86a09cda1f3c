"""Tests of the renderers and escaping (src/weighttie/render.py, text.py, escape.py)."""

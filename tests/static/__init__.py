"""Tests of the static reader (src/weighttie/static/): every file format, read without Keras."""

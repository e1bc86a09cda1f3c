"""Tests of the private Keras accesses (src/weighttie/_keras/), one test per access."""

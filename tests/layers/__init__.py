"""Tests of the layer catalogue (src/weighttie/layers/), one file per family."""

"""Tests of the picture (src/weighttie/picture/): SVG, HTML, in a browser and in a notebook."""

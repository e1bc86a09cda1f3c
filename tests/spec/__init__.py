"""Tests of spec files, checks, snapshots and diffs (src/weighttie/spec/), with the
findings and the weighttie.testing assertions they report."""

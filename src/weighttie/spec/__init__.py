"""Spec files, checks and diffs: what a model's sharing must look like, for CI.

A spec (TOML, ``weighttie.spec/1``; :mod:`.parse`) lists expectations;
:func:`check` (:mod:`.check`) turns each into a :class:`Result` against a Report.
:func:`snapshot` (:mod:`.snapshot`) writes the spec a model satisfies as it is
(commit it, check against it); :func:`diff` (:mod:`.diff`) compares two reports'
sharing structure and counts. Everything here reads only Reports.

Example spec::

    schema = "weighttie.spec/1"
    exact_groups = true            # no sharing groups beyond those listed

    [params]
    unique = 86785
    max_per_use = 200000

    [cost]                         # budgets (docs/cost.md); snapshot writes none
    max_macs = 1_000_000_000       # MACs per forward pass, every layer counted
    max_bytes_unique = 400_000_000
    max_bytes_per_use = 800_000_000

    [findings]
    forbid = ["twin-branches", "broken-tie"]

    [[group]]
    kind = "shared-model"
    layers = ["tower"]
    calls = 2

    [[not_shared]]
    layers = ["left_*", "right_*"]
"""

from __future__ import annotations

from weighttie.errors import SpecError
from weighttie.spec.check import Result, check, match_layers
from weighttie.spec.diff import NOT_COMPARED, Diff, diff
from weighttie.spec.parse import SPEC_SCHEMA, GroupSpec, Spec, load_spec
from weighttie.spec.snapshot import snapshot

__all__ = [
    "NOT_COMPARED",
    "SPEC_SCHEMA",
    "Diff",
    "GroupSpec",
    "Result",
    "Spec",
    "SpecError",
    "check",
    "diff",
    "load_spec",
    "match_layers",
    "snapshot",
]

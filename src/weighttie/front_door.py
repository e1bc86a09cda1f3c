"""One front door: the report of a model file, a saved JSON report, or a live model.

The command line and :mod:`weighttie.testing` both ask "what is the report of
this?"; the answer follows one policy, here:

* a :class:`~weighttie.Report` is itself;
* a path ending in ``.json`` is a saved report, read back (bounded);
* a model file or folder (a keras_hub preset, sharded weights, a model saved with
  ``zipped=False``; a Hugging Face checkpoint) is read statically, without Keras
  (:mod:`weighttie.static`), unless ``load`` asks for Keras: the model is then
  built from its config without weight values and traced (:mod:`weighttie.traced`,
  safe mode; a legacy ``.h5`` file is loaded with its values; a Hugging Face
  checkpoint is read statically only); a subclassed model's file has no graph (a
  keras_hub model's config holds constructor arguments): its static report says
  so in a note (uses unknown, counts exact) whether or not Keras is installed;
* anything else is a live Keras model or layer, analyzed.

Before Keras sees a file, the bounded static reader has read it: limits, damaged
or hostile members and special files are refused before a backend is imported
(seconds and hundreds of MB) and before Keras opens anything.
"""

from __future__ import annotations

import os
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import Report

__all__ = ["report_of"]


def report_of(
    source: Any,
    *,
    load: bool = False,
    unsafe: bool = False,
    findings: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """The report of a Report, a JSON report file, a model file or a live model.

    Args:
        source: a :class:`~weighttie.Report`; a path (``str`` or ``os.PathLike``)
            to a ``.keras`` / ``.h5`` model file or a ``.json`` report; or a built
            Keras model or layer.
        load: build the model of a file or folder through Keras (safe mode) without
            its weight values, and trace it (``source: traced``), instead of reading
            the file statically.
        unsafe: with ``load``, let Keras run code from the file (Lambda layers).
        findings: look for findings (reads values).
        limits: bounds on what a file may hold (docs/trust-model.md).

    Raises:
        WeighttieError: the file cannot be read (see the reader's errors).
    """
    if isinstance(source, Report):
        return source
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path.lower().endswith(".safetensors.index.json"):  # transformers' shard index
            raise FileFormatError(
                f"{path!r} is the index of sharded safetensors weights, not a model; pass the "
                "folder that holds it with its config.json (weighttie report DIR)"
            )
        if path.lower().endswith(".weights.json"):  # Keras's index of sharded weights
            raise FileFormatError(
                f"{path!r} is the index of sharded weights, not a model; pass the folder "
                "that holds it with the model's config.json (weighttie report DIR)"
            )
        if path.lower().endswith(".json"):
            from weighttie.report_json import read_report_json

            return read_report_json(path, limits=limits)
        return _file_report(path, load=load, unsafe=unsafe, findings=findings, limits=limits)
    from weighttie.walk import analyze

    return analyze(source, findings=findings)


def _file_report(path: str, *, load: bool, unsafe: bool, findings: bool, limits: Limits) -> Report:
    from weighttie.static import read_report

    if load:  # built through Keras without weight values (the bounded reader sees it first)
        from weighttie.traced import traced_report

        return traced_report(path, unsafe=unsafe, findings=findings, limits=limits)
    # Without --load, every model file or folder is read statically, a subclassed or
    # keras_hub model's too (its file has no graph: calls unknown, a note in the report
    # says --load counts them). The answer then depends on the file alone, never on
    # which packages are installed where the command runs (a CI check gives the
    # same result on every machine), and no class code is imported.
    return read_report(path, findings=findings, limits=limits)

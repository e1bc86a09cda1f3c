"""The static reader: a model file → raw facts → :class:`Report`, without Keras.

Everything it reads is bounded by :class:`~weighttie.limits.Limits` (layers,
calls, nesting, config bytes, HDF5 objects) before the work that grows with it,
and a weights file must be self-contained: external storage, external or
dangling links, virtual datasets and filters HDF5 would load as plugins are
refused before any value is read (:func:`check_before_load` makes the same checks
before Keras opens a file). It reads what the file states and nothing more:

* ``.keras`` (Keras 3): ``config.json`` gives the layers, nested models and every
  call with its inbound tensors and their shapes; ``model.weights.h5`` gives each
  layer's variables (shapes and dtypes, not values) under a group whose ``vars``
  carries the layer's name, and the sublayers a layer holds (an LSTM's ``cell``).
* legacy ``.h5`` (Keras 2 / tf.keras / tf_keras, and Keras 3's legacy format): the
  ``model_config`` attribute and the ``model_weights`` group, whose
  ``weight_names`` name every variable.

A call's shapes the file does not state are computed by the layer catalogue's
rules (:mod:`weighttie.layers`; Keras's built-in layers only), which also names a
class's variables and says which are trainable. Where the file does
not state a fact and no rule knows it (a custom layer's output shape, the class
of a sublayer, the names of an unknown layer's variables) the report says so
(null, ``?``, numbered names) rather than guess. Ties declared in
the file are applied as :func:`weighttie.load_model` would bind them, once their
saved copies are found to hold equal values (a tie whose copies differ is reported
unbound, with a ``broken-tie`` finding).

The package's modules, one job each:

* :mod:`~weighttie.static.config_graph`: a config's graph (calls, inbound
  tensors, stated shapes, wiring and cycle checks, Keras 2 call numbering);
* :mod:`~weighttie.static.call_shapes`: every call's input and output shapes, the
  file's or the shape rules';
* :mod:`~weighttie.static.h5_tree`: walking an HDF5 file and refusing what is not
  self-contained; the tree of saveables of ``model.weights.h5``;
* :mod:`~weighttie.static.values`: values streamed under a time budget;
* :mod:`~weighttie.static.rows`: the rows and variables collected, within limits;
* :mod:`~weighttie.static.declared_ties`: the ties a ``.keras`` file declares, applied;
* :mod:`~weighttie.static.group_names`: which layer a group of ``model.weights.h5``
  belongs to where the file does not name it (Keras 3.0 - 3.5);
* :mod:`~weighttie.static.legacy_copies`: which weights a legacy ``.h5`` stores once
  per place of one layer object (stored names, Keras 2's marks, equal values), and
  which copies it cannot tell from one variable;
* :mod:`~weighttie.static.keras3` and :mod:`~weighttie.static.legacy_h5`: the two
  readers; :mod:`~weighttie.static.huggingface`: Hugging Face checkpoint folders
  (``config.json`` and safetensors).

This package imports neither Keras nor any backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from weighttie.build import build_report
from weighttie.collector import collector_paused
from weighttie.errors import FileFormatError
from weighttie.facts import ModelFacts
from weighttie.layers import MODEL_CLASSES, UNKNOWN_CLASS, variable_names
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.model_files import FileKind, check_model_file
from weighttie.report import Report
from weighttie.static.huggingface import checkpoint_folder_facts, is_checkpoint_folder
from weighttie.static.keras3 import keras_facts, open_keras
from weighttie.static.legacy_h5 import legacy_facts
from weighttie.static.preset import folder_facts, is_model_folder

__all__ = [
    "MODEL_CLASSES",
    "UNKNOWN_CLASS",
    "CheckedFile",
    "check_before_load",
    "open_facts",
    "read_report",
    "variable_names",
]


@contextmanager
def open_facts(
    path: str | os.PathLike[str], *, findings: bool = True, limits: Limits = DEFAULT_LIMITS
) -> Iterator[ModelFacts]:
    """The facts of a model file or folder, read without Keras; valid inside the ``with``.

    The file stays open while the block runs: findings read values from it through
    ``facts.access``. One reader per format, chosen here: ``.keras``, legacy ``.h5``,
    model folders (keras_hub presets, sharded weights) and Hugging Face checkpoint
    folders (config.json and safetensors).

    Raises:
        MissingFileError, FileFormatError: the file cannot be read as a Keras model,
            or its weights file is not self-contained.
        LimitError: the file holds more than ``limits`` allow.
    """
    file = os.fspath(path)
    if is_checkpoint_folder(file):  # a Hugging Face checkpoint: config.json and safetensors
        reader = checkpoint_folder_facts(file, limits)
    elif is_model_folder(file):
        reader = folder_facts(file, findings, limits)
    elif file.lower().endswith(".safetensors") and os.path.lexists(file):
        raise FileFormatError(
            f"{file!r} is a safetensors weights file, not a model; pass the folder that holds "
            "it with its config.json (weighttie report DIR)"
        )
    elif check_model_file(file, folders=True) is FileKind.KERAS:
        reader = keras_facts(file, findings, limits)
    else:
        reader = legacy_facts(file, findings, limits)
    with reader as facts:
        yield facts


def read_report(
    path: str | os.PathLike[str], *, findings: bool = True, limits: Limits = DEFAULT_LIMITS
) -> Report:
    """Build a Report from a model file (or a model folder: a keras_hub preset, sharded
    weights, :mod:`~weighttie.static.preset`; a Hugging Face checkpoint,
    :mod:`~weighttie.static.huggingface`) alone, importing neither Keras nor a backend.

    Values are read for two things only, streamed from the file in chunks: the
    saved copies of each tie the file declares are compared (always: a tie whose
    copies differ is reported unbound, with a ``broken-tie`` finding when
    ``findings`` is on); and with ``findings`` (the default) same-shaped variables
    are hashed to find copies that should be shared (``broken-tie``).

    Everything read is bounded by ``limits`` before the work that grows with it.

    Raises:
        MissingFileError, FileFormatError: the file cannot be read as a Keras model,
            or its weights file is not self-contained.
        LimitError: the file holds more than ``limits`` allow.

    Example:
        >>> report = read_report("siamese.keras")     # doctest: +SKIP
        >>> report.model.source
        'static'
    """
    with collector_paused(), open_facts(path, findings=findings, limits=limits) as facts:
        return build_report(facts, findings=findings)


@dataclass(frozen=True)
class CheckedFile:
    """A model file the bounded reader has checked: its kind and (``.keras``) its config."""

    path: str
    kind: FileKind
    config: dict[str, Any]


def check_before_load(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> CheckedFile:
    """The checks to make before Keras opens a model file; returns what they read.

    Keras parses the whole config and opens datasets by path: a config beyond
    ``limits`` would cost it time and memory in proportion, and a weights file
    with external storage, external or dangling links, virtual datasets or
    plugin filters would make HDF5 open host paths (a FIFO there blocks inside
    HDF5, where no time budget can fire). This reads the file once as the static
    reader does, reading no values: the config within ``limits`` and checked as a
    model's graph, and the weights file walked and refused where it is not
    self-contained. The caller loads with the config returned, and reads nothing
    again.

    Raises:
        MissingFileError, FileFormatError: the file is not a regular model file, or
            not a well-formed model, or its weights file is not self-contained.
        LimitError: the file holds more than ``limits`` allow.
    """
    file = os.fspath(path)
    kind = check_model_file(file)
    if kind is FileKind.KERAS:
        with open_keras(file, False, limits) as (config, _):
            return CheckedFile(file, kind, config)
    with legacy_facts(file, False, limits):
        return CheckedFile(file, kind, {})

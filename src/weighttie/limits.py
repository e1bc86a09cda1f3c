"""How much of an input weighttie reads before it refuses the input.

A small file can claim a lot: a 3.6 MB archive can describe 640,000 layers, a
0.26 MB one a layer called 470,000 times, a sparse file gigabytes of TOML. Every
reader checks its input against :class:`Limits` *before* the work that grows
with it, so time and memory stay proportional to what weighttie accepts, and a
refusal is one clear :class:`~weighttie.errors.LimitError` naming the limit.

The defaults admit every real model measured (the largest, a 20,000-layer model,
uses a fifth of ``layers``); each can be raised, from Python with
``Limits(layers=...)`` and on the command line with ``--max-layers`` and its
siblings (docs/trust-model.md lists them all).

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["DEFAULT_LIMITS", "Limits"]

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one input may hold.

    Attributes:
        layers: layers in one model file, nested models and sublayers included.
        calls: calls (graph nodes) recorded in one model file, all levels together.
        depth: nesting of models, sublayers, HDF5 groups and JSON/TOML documents.
        config_bytes: bytes of a model's JSON config (``config.json``, a legacy
            ``model_config``) or ``metadata.json``, after decompression.
        h5_objects: groups and datasets visited in one weights file.
        tensors: tensors in one safetensors checkpoint (a Hugging Face folder: all its
            shards together), counted in each header before it is parsed.
        spec_bytes: bytes of a spec file (TOML) read by ``check``.
        report_bytes: bytes of a JSON report read by ``check`` or ``diff``.

    Example:
        >>> Limits(layers=500_000).layers
        500000
    """

    layers: int = 100_000
    calls: int = 200_000
    depth: int = 100
    config_bytes: int = 64 * _MiB
    h5_objects: int = 500_000
    tensors: int = 250_000
    spec_bytes: int = 1 * _MiB
    report_bytes: int = 256 * _MiB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"Limits.{f.name} must be a positive integer; received {f.name}={value!r}"
                )


#: The limits every reader uses unless given others.
DEFAULT_LIMITS = Limits()

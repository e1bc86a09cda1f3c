"""Hugging Face checkpoint folders read statically: ``config.json`` and safetensors weights.

``weighttie report DIR`` (and ``check``, ``snapshot``, ``diff``) for a folder holding
``config.json`` and ``model.safetensors``, or the shards of
``model.safetensors.index.json``: headers only (values only to compare the two stored
copies of a declared tie), no torch, no safetensors package, no transformers.

The package's modules, one job each:

* :mod:`~weighttie.static.huggingface.safetensors_header`: one file's header, checked
  as untrusted input;
* :mod:`~weighttie.static.huggingface.checkpoint_files`: which files of the folder
  are read, the index against its shards, where links may lead;
* :mod:`~weighttie.static.huggingface.families`: which tensors each architecture
  ties, and what a config declares;
* :mod:`~weighttie.static.huggingface.tensor_values`: two stored copies compared,
  sampled then streamed;
* :mod:`~weighttie.static.huggingface.hub_counts`: the Hub's parameter counts per
  dtype, and why weighttie's differ;
* :mod:`~weighttie.static.huggingface.checkpoint`: the reader (facts → Report).

docs/huggingface.md describes what is read and reported. This package imports
neither Keras nor a backend.
"""

from __future__ import annotations

from weighttie.static.huggingface.checkpoint import checkpoint_folder_facts
from weighttie.static.huggingface.checkpoint_files import is_checkpoint_folder

__all__ = ["checkpoint_folder_facts", "is_checkpoint_folder"]

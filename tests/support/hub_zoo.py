"""Tiny keras_hub models of five families, built offline from constructor arguments.

Nothing is downloaded (no presets from a hub). Each family gives a backbone and a
task model on it; the task models tie the token embedding to the output layer
(GPT-2, Gemma: ReversibleEmbedding's reverse call; OPT, BERT: the embedding called
inside another layer's call; T5: a config-stated tie). Import after
``pytest.importorskip("keras_hub")``.

Not :mod:`support.hub_families`, which builds every family at keras_hub's own test
sizes (a vocabulary of 10 and a hidden size of 2 for GPT-2, OPT, BERT and T5) and
whose tests compare counts, shapes and layers in order, never layer names. These five
are built at sizes of their own (a vocabulary of ``VOCABULARY``, a hidden size of 8)
and named ``<family>_backbone``, and their tests pin what that gives: the token
embedding's shape, layer paths such as ``gpt2_backbone/token_embedding``. Building
them from ``hub_families`` would change what those tests build, so the two stay apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras_hub

VOCABULARY = 64
_SMALL = {"num_layers": 2, "hidden_dim": 8, "intermediate_dim": 16}


def _backbones() -> dict[str, Callable[[], Any]]:
    m = keras_hub.models
    sequence = {"num_heads": 2, "max_sequence_length": 16, **_SMALL}
    return {
        "bert": lambda: m.BertBackbone(vocabulary_size=VOCABULARY, **sequence),
        "gemma": lambda: m.GemmaBackbone(
            vocabulary_size=VOCABULARY,
            num_query_heads=2,
            num_key_value_heads=1,
            head_dim=4,
            **_SMALL,
        ),
        "gpt2": lambda: m.GPT2Backbone(vocabulary_size=VOCABULARY, **sequence),
        "opt": lambda: m.OPTBackbone(vocabulary_size=VOCABULARY, **sequence),
        "t5": lambda: m.T5Backbone(vocabulary_size=VOCABULARY, num_heads=2, **_SMALL),
    }


_TASKS = {
    "bert": "BertMaskedLM",
    "gemma": "GemmaCausalLM",
    "gpt2": "GPT2CausalLM",
    "opt": "OPTCausalLM",
    "t5": "T5Seq2SeqLM",
}

FAMILIES = sorted(_TASKS)


def backbone(family: str) -> Any:
    """A fresh tiny backbone of ``family``, named ``<family>_backbone`` whatever Keras
    has counted up in this process (tests name its layers by path)."""
    model = _backbones()[family]()
    model.name = f"{family}_backbone"
    return model


def task(family: str, on: Any | None = None) -> Any:
    """A fresh task model of ``family`` on ``on`` (a new backbone when None)."""
    task_class = getattr(keras_hub.models, _TASKS[family])
    return task_class(backbone=backbone(family) if on is None else on, preprocessor=None)


def backbone_and_task(family: str) -> tuple[Any, Any]:
    """A backbone and a task model holding it."""
    bb = backbone(family)
    return bb, task(family, bb)

"""keras_hub files read without Keras: every weight kept, each counted trainable or not as
Keras counts it (issue 20). ``count_params()`` and ``trainable_weights`` are the oracle.

ViT nests blocks whose names repeat (``transformer_block_1`` under ``vit_encoder``);
Whisper pairs an encoder and a decoder and freezes its encoder position embedding in
its constructor, where no config the file holds says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import weighttie

keras_hub = pytest.importorskip("keras_hub")

MODELS: dict[str, Callable[[], Any]] = {
    "vit": lambda: keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    ),
    "whisper": lambda: keras_hub.models.WhisperBackbone(
        vocabulary_size=300,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        num_mels=16,
        max_encoder_sequence_length=32,
        max_decoder_sequence_length=16,
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_static_counts_and_trainable_split_are_keras(name: str, tmp_path: Path) -> None:
    model = MODELS[name]()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    report = weighttie.read_report(path)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert report.params.unique == model.count_params()
    assert report.params.trainable_unique == trainable
    assert report.params.unique - report.params.trainable_unique == sum(
        int(np.prod(v.shape)) for v in model.non_trainable_weights
    )
    # no weight dropped: every variable Keras holds has a row's variable of its shape
    assert sorted(v.shape for v in report.variables) == sorted(
        tuple(w.shape) for w in model.weights
    )

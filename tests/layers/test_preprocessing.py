"""Preprocessing (weighttie.layers.preprocessing): shapes and state against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
from keras import layers

from layers.family import FamilyOracle, built
from layers.shape_oracle import Case, Shape, data_format, image, unique
from weighttie.layers import preprocessing

AUGMENTATIONS = [
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "AutoContrast", "Solarization", "RandomInvert", "RandomHue",
    "RandomSaturation", "RandomSharpness", "RandomShear", "RandomPosterization",
    "RandomColorDegeneration", "RandomColorJitter", "Equalization", "RandomErasing",
    "RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform", "RandomGrayscale",
    "ContrastLimitedAdaptiveHistogramEqualization", "MixUp", "CutMix", "AugMix",
    "RandAugment",
]  # fmt: skip
ARGUMENTS: dict[str, dict[str, Any]] = {
    "RandomRotation": {"factor": 0.1}, "RandomZoom": {"height_factor": 0.1},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomContrast": {"factor": 0.1}, "RandomBrightness": {"factor": 0.1},
    "RandomHue": {"factor": 0.1}, "RandomSaturation": {"factor": 0.1},
    "RandomSharpness": {"factor": 0.1}, "RandomShear": {"x_factor": 0.1},
    "RandomPosterization": {"factor": (1, 4)}, "RandomColorDegeneration": {"factor": 0.1},
}  # fmt: skip


def _cases() -> Iterator[Case]:
    for (layer, kwargs), shape in itertools.product(
        [("Rescaling", {"scale": 0.5}), ("Normalization", {"mean": 0.0, "variance": 1.0})],
        [(None, 5), (None, None, 6), (2, 3, 4, 5)],
    ):
        yield Case(layer, kwargs, (shape,))
    for layer, first, shape in itertools.product(
        ["Resizing", "CenterCrop", "RandomCrop"], (False, True), [(8, 9), (None, None)]
    ):
        fmt = {"height": 4, "width": 5, "data_format": data_format(first)}
        yield Case(layer, fmt, (image(shape, first),))
        yield Case(layer, fmt, (image(shape, first)[1:],))
    for layer in AUGMENTATIONS:
        yield Case(layer, ARGUMENTS.get(layer, {}), ((None, 8, 9, 3),))
    yield Case("RandomGrayscale", {"data_format": "channels_first"}, ((None, 3, 8, 9),))
    int_shapes: list[Shape] = [(None,), (None, 1), (None, 3), (2, 4, 1), (None, 2, 3)]
    for mode, shape in itertools.product(["one_hot", "multi_hot", "count"], int_shapes):
        kwargs = {"bin_boundaries": [0.0, 1.0], "output_mode": mode}
        yield Case("Discretization", kwargs, (shape,))
        if mode != "one_hot" and len(shape) > 2:
            continue  # symbolic and eager disagree: the rule says None (tested below)
        kwargs = {"num_tokens": 6, "output_mode": mode}
        yield Case("CategoryEncoding", kwargs, (shape,), dtype="int32")
        oracle = "eager" if mode == "one_hot" else "symbolic"  # symbolic: one per sample
        kwargs = {"num_bins": 5, "output_mode": mode}
        yield Case("Hashing", kwargs, (shape,), dtype="int32", oracle=oracle)
    for shape in int_shapes:
        yield Case("Hashing", {"num_bins": 5}, (shape,), dtype="int32")
        yield Case("Discretization", {"bin_boundaries": [0.0, 1.0]}, (shape,))
    lookup_modes = ["int", "one_hot", "multi_hot", "count"]
    for mode, pad, shape in itertools.product(lookup_modes, (False, True), int_shapes):
        if mode in ("multi_hot", "count") and len(shape) > 2:
            continue
        kwargs = {"vocabulary": ["a", "b", "c"], "output_mode": mode}
        kwargs |= {"pad_to_max_tokens": pad, "max_tokens": 9 if pad else None}
        yield Case("StringLookup", kwargs, (shape,), dtype="string")
        kwargs = dict(kwargs, vocabulary=[4, 5, 6, 7])
        yield Case("IntegerLookup", kwargs, (shape,), dtype="int64")
    for mode, length, shape in itertools.product(
        ["int", "multi_hot", "count"], [None, 5], [(None,), (None, 1)]
    ):
        kwargs = {"vocabulary": ["a", "b"], "output_mode": mode}
        kwargs |= {"output_sequence_length": length if mode == "int" else None}
        if mode != "int" and len(shape) > 1:
            continue  # symbolic (None, 1, depth), eager (batch, depth): the rule says None
        yield Case("TextVectorization", kwargs, (shape,), dtype="string")
    for mode, shape in itertools.product(["int", "one_hot"], [(None, 1), (None, 2), (None,)]):
        kwargs = {"num_bins": 4, "output_mode": mode}
        yield Case("HashedCrossing", kwargs, (shape, shape), "list", dtype="int64")


def _adapted_normalization() -> Any:
    layer = layers.Normalization()
    layer.adapt(np.arange(12.0).reshape(4, 3))
    return built(layer, 3)


KERAS2_ONLY = [  # no data_format in Keras 2
    Case(layer, {"height": 4, "width": 5}, (shape,))
    for layer, shape in itertools.product(
        ["Resizing", "CenterCrop", "RandomCrop"], [(None, 8, 9, 3), (None, None, None, 3)]
    )
]

UNSURE = {
    "multi-hot of rank 3: symbolic and eager disagree": (
        "CategoryEncoding",
        {"num_tokens": 4, "output_mode": "multi_hot"},
        [(None, 2, 3)],
        None,
    ),
    "vocabulary size unknown": (
        "StringLookup",
        {"output_mode": "one_hot", "vocabulary_size": None},
        [(None, 2)],
        None,
    ),
}

VARIABLE_CASES = {"Normalization-adapted": _adapted_normalization}


class TestPreprocessing(FamilyOracle):
    family = preprocessing
    cases = unique(_cases())
    keras2_only = KERAS2_ONLY
    unsure = UNSURE
    variable_cases = VARIABLE_CASES

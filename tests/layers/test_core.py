"""Core layers (weighttie.layers.core): Dense, EinsumDense, the embeddings, InputLayer,
Lambda, activations and regularization, against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from keras import layers

from layers.family import FamilyOracle, built, quantized
from layers.shape_oracle import Case, Shape, unique
from weighttie.layers import HeldWeights, Weight, call_macs, core, output_shapes

ELEMENTWISE: list[tuple[str, dict[str, Any]]] = [
    ("Activation", {"activation": "relu"}), ("Identity", {}), ("Masking", {}),
    ("ActivityRegularization", {"l1": 0.1}), ("Dropout", {"rate": 0.5}),
    ("GaussianNoise", {"stddev": 0.1}), ("GaussianDropout", {"rate": 0.1}),
    ("AlphaDropout", {"rate": 0.1}), ("ReLU", {"max_value": 6.0}), ("LeakyReLU", {}),
    ("PReLU", {}), ("ELU", {}), ("Softmax", {"axis": 1}),
]  # fmt: skip


def _cases() -> Iterator[Case]:
    for (layer, kwargs), shape in itertools.product(
        ELEMENTWISE, [(None, 5), (None, None, 6), (2, 3, 4, 5)]
    ):
        yield Case(layer, kwargs, (shape,))
    yield Case("SpatialDropout1D", {"rate": 0.2}, ((None, 5, 3),))
    yield Case("SpatialDropout2D", {"rate": 0.2}, ((None, 5, 4, 3),))
    yield Case("SpatialDropout3D", {"rate": 0.2}, ((None, 5, 4, 2, 3),))
    for units, shape in itertools.product([1, 7], [(None, 5), (None, None, 5), (2, 3, 4, 5)]):
        yield Case("Dense", {"units": units}, (shape,))
    for shape in [(None,), (None, 5), (None, None), (2, 3, 4)]:
        yield Case("Embedding", {"input_dim": 10, "output_dim": 3}, (shape,), dtype="int32")
        kwargs = {"input_dim": 10, "output_dim": 3}
        yield Case("ReversibleEmbedding", kwargs, (shape,), dtype="int32")
    for shape in [(None, 3), (None, 4, 3)]:
        kwargs = {"input_dim": 10, "output_dim": 3}
        yield Case("ReversibleEmbedding", kwargs, (shape,), call={"reverse": True})
    einsums: list[tuple[str, Any, Shape, str | None]] = [
        ("ab,bc->ac", 8, (None, 5), "c"),
        ("abc,cd->abd", (None, 8), (None, 4, 5), "d"),
        ("abc,cd->abd", (4, 8), (None, 4, 5), None),
        ("abc,cde->abde", (None, 2, 3), (None, 4, 5), "de"),
        ("...b,bc->...c", 6, (None, 3, 4, 5), "c"),
        ("...b,bc->...c", 6, (None, 5), None),
        ("ab...,bc->ac...", 6, (None, 5, 4), None),
        ("abc,cde->abe", (4, 3), (None, 4, 5), None),
    ]
    for equation, output_shape, shape, bias in einsums:
        kwargs = {"equation": equation, "output_shape": output_shape, "bias_axes": bias}
        oracle = "eager" if equation.startswith("...") else "symbolic"  # elided axes reversed
        yield Case("EinsumDense", kwargs, (shape,), oracle=oracle)


KERAS2_ONLY = [
    Case("Embedding", {"input_dim": 9, "output_dim": 2, "input_length": 4}, ((None, 4),)),
    Case("ThresholdedReLU", {"theta": 0.5}, ((None, 4, 6),)),
]

UNSURE = {
    "custom class": ("MyDense", {"units": 3}, [(None, 4)], None),
    "Lambda runs code": ("Lambda", {"function": "x"}, [(None, 4)], None),
    "nested model": ("Functional", {"layers": []}, [(None, 4)], None),
    "no input": ("Dense", {"units": 3}, [], None),
    "no units": ("Dense", {}, [(None, 4)], None),
    "output_shape names an elided axis (Keras says rank 4, einsum gives 3)": (
        "EinsumDense",
        {"equation": "ab...,bc->ac...", "output_shape": [6, 4]},
        [(None, 5, 4)],
        None,
    ),
}

MAC_CASES = {
    "dense": (lambda: layers.Dense(7), ((5,),)),
    "dense-3d": (lambda: layers.Dense(4, use_bias=False), ((6, 5),)),
    "dense-4d": (lambda: layers.Dense(3), ((2, 3, 5),)),
}

VARIABLE_CASES = {
    "Dense": lambda: built(layers.Dense(3), 4),
    "Dense-no-bias": lambda: built(layers.Dense(3, use_bias=False), 4),
    "Dense-lora": lambda: built(layers.Dense(3, lora_rank=2), 4),
    "Dense-int8": lambda: quantized("int8", layers.Dense(3), 4),
    "Dense-int8-no-bias": lambda: quantized("int8", layers.Dense(3, use_bias=False), 4),
    "Dense-int4": lambda: quantized("int4", layers.Dense(3), 4),
    "Dense-float8": lambda: quantized("float8", layers.Dense(3), 4),
    "EinsumDense": lambda: built(layers.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c"), 3),
    "EinsumDense-int8": lambda: quantized(
        "int8", layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"), 4
    ),
    "Embedding": lambda: built(layers.Embedding(10, 3), 5),
    "Embedding-lora": lambda: built(layers.Embedding(10, 4, lora_rank=2), 3),
    "Embedding-int8": lambda: quantized("int8", layers.Embedding(10, 4), 3),
    "Embedding-int4": lambda: quantized("int4", layers.Embedding(10, 4), 3),
    "ReversibleEmbedding": lambda: built(layers.ReversibleEmbedding(10, 4), 3),
    "ReversibleEmbedding-untied": lambda: built(
        layers.ReversibleEmbedding(10, 4, tie_weights=False), 3
    ),
    "ReversibleEmbedding-untied-int8": lambda: quantized(
        "int8", layers.ReversibleEmbedding(10, 4, tie_weights=False), 3
    ),
    "PReLU": lambda: built(layers.PReLU(), 3),
}


class TestCore(FamilyOracle):
    family = core
    cases = unique(_cases())
    keras2_only = KERAS2_ONLY
    unsure = UNSURE
    mac_cases = MAC_CASES
    variable_cases = VARIABLE_CASES
    #: InputLayer states its shape (test_an_input_layer_states_its_shape).
    checked_elsewhere = frozenset({"InputLayer: shapes"})


def test_an_input_layer_states_its_shape() -> None:
    assert output_shapes("InputLayer", {"batch_shape": [None, 4, 6]}, []) == ((None, 4, 6),)
    assert output_shapes("InputLayer", {"batch_input_shape": [2, 3]}, []) == ((2, 3),)


def test_the_main_input_by_keyword() -> None:
    """``layer(inputs=x)``: Keras 3 stores the tensor among the call's kwargs."""
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 4]}}
    got = output_shapes("Dense", {"units": 3}, [(None, 4)], {"inputs": tensor})
    assert got == ((None, 3),)


def test_dense_macs_unknown_in_is_unknown_out() -> None:
    """Unknown shapes, other variables and classes without a rule give None, never a guess."""
    kernel = HeldWeights("Dense", (Weight("kernel", (8, 4)), Weight("bias", (4,))))
    assert call_macs("Dense", kernel, [(None, 8)], [(None, 4)]) == 32
    assert call_macs("Dense", kernel, [(None, None, 8)], [(None, None, 4)]) is None
    assert call_macs("Dense", kernel, [None], [(None, 4)]) is None
    assert call_macs("Dense", kernel, None, None) is None
    assert call_macs("MyDense", kernel, [(None, 8)], [(None, 4)]) is None
    lora = HeldWeights("Dense", (*kernel.own, Weight("lora_kernel_a", (8, 2))))
    assert call_macs("Dense", lora, [(None, 8)], [(None, 4)]) is None
    assert call_macs("Dropout", HeldWeights("Dropout"), None, None) == 0


def test_variables_of_an_unknown_class_or_count_are_numbered() -> None:
    from weighttie.layers import variable_names

    assert variable_names("MyLayer", {}, 2) == ["0", "1"]
    assert variable_names("Dense", {"use_bias": True}, 1) == ["0"]  # does not fit: numbered

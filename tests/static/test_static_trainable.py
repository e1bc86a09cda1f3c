"""Trainable or not, without Keras: the static split equals Keras's own.

A file does not say which variables are trainable. A layer frozen by its user says
so in its config; a built-in class creates some variables non-trainable whatever
its config says (BatchNormalization's moving statistics, preprocessing state,
integer-quantized kernels). Each model here is saved (``.keras`` from Keras 3,
``.h5`` from tf_keras) and read statically; Keras is the oracle: live
:func:`weighttie.analyze` and the model's own ``trainable_weights``. The catalogue's rules
layer by layer are checked in tests/layers/ (each family's variable cases).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import weighttie
from weighttie.static import read_report

layers = keras.layers


def _model(layer: Any, shape: tuple[int, ...], k: Any = keras, **input_kwargs: Any) -> Any:
    x = k.Input(shape, name="x", **input_kwargs)
    return k.Model(x, layer(x))


def _frozen(layer: Any) -> Any:
    layer.trainable = False
    return layer


def _adapted(layer: Any, data: Any) -> Any:
    layer.adapt(data)
    return layer


def _frozen_inner_dense(k: Any) -> Any:
    """The user freezes one layer of two."""
    x = k.Input((4,), name="x")
    hidden = k.layers.Dense(3, name="hidden")
    model = k.Model(x, k.layers.Dense(2, name="out")(hidden(x)))
    hidden.trainable = False
    return model


def _frozen_nested_model(k: Any) -> Any:
    """A nested model frozen as a whole: its layers' configs still say trainable."""
    i = k.Input((4,), name="i")
    tower = k.Model(i, k.layers.BatchNormalization(name="bn")(k.layers.Dense(3, name="d")(i)))
    tower.trainable = False
    x = k.Input((4,), name="x")
    return k.Model(x, k.layers.Dense(1, name="out")(tower(x)))


def _frozen_root(k: Any) -> Any:
    model = _model(k.layers.Dense(3, name="d"), (4,), k)
    model.trainable = False
    return model


def _quantized(mode: str, make: Callable[[], Any], shape: tuple[int, ...], **kw: Any) -> Any:
    model = _model(make(), shape, **kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Layer InputLayer does not have a `quantize` method")
        model.quantize(mode)
    return model


#: Keras 3 models whose variables are not all trainable (and some whose are).
KERAS3: dict[str, Callable[[], Any]] = {
    "normalization-adapted": lambda: _model(
        _adapted(layers.Normalization(), np.arange(12.0).reshape(4, 3)), (3,)
    ),
    "normalization-fixed": lambda: _model(layers.Normalization(mean=1.0, variance=2.0), (3,)),
    "batch-norm": lambda: _model(layers.BatchNormalization(), (3,)),
    "batch-norm-renorm": lambda: _model(layers.BatchNormalization(renorm=True), (3,)),
    "batch-norm-no-scale": lambda: _model(layers.BatchNormalization(scale=False), (3,)),
    "batch-norm-frozen": lambda: _model(_frozen(layers.BatchNormalization()), (3,)),
    "frozen-inner-dense": lambda: _frozen_inner_dense(keras),
    "frozen-nested-model": lambda: _frozen_nested_model(keras),
    "frozen-root": lambda: _frozen_root(keras),
    "frozen-bidirectional": lambda: _model(_frozen(layers.Bidirectional(layers.LSTM(3))), (5, 3)),
    "discretization": lambda: _model(layers.Discretization(bin_boundaries=[0.0, 1.0]), (3,)),
    "string-lookup-tf-idf": lambda: _model(
        layers.StringLookup(vocabulary=["a", "b"], idf_weights=[1.0, 2.0], output_mode="tf_idf"),
        (3,),
        dtype="string",
    ),
    "image-preprocessing": lambda: _model(
        lambda x: layers.RandomContrast(0.2, seed=4)(
            layers.RandomZoom(0.1, seed=5)(
                layers.RandomRotation(0.1, seed=6)(
                    layers.CenterCrop(12, 12)(layers.Resizing(16, 16)(layers.Rescaling(0.5)(x)))
                )
            )
        ),
        (20, 20, 3),
    ),
    "integer-lookup-hashing-encoding": lambda: _model(
        lambda x: [
            layers.IntegerLookup(vocabulary=[1, 2], idf_weights=[1.0, 2.0], output_mode="tf_idf")(
                x
            ),
            layers.CategoryEncoding(8, output_mode="count")(layers.Hashing(8)(x)),
        ],
        (3,),
        dtype="int64",
    ),
    "text-vectorization-tf-idf": lambda: _model(
        layers.TextVectorization(
            vocabulary=["a", "b"], idf_weights=[1.0, 2.0], output_mode="tf_idf"
        ),
        (1,),
        dtype="string",
    ),
    "random-flip-dropout-noise": lambda: _model(
        lambda x: layers.GaussianNoise(0.1, seed=2)(
            layers.Dropout(0.5, seed=1)(layers.RandomFlip(seed=3)(x))
        ),
        (4, 4, 3),
    ),
    "stateful-lstm": lambda: _model(layers.LSTM(3, stateful=True), (5, 3), batch_size=2),
    "int8-dense": lambda: _quantized("int8", lambda: layers.Dense(3), (4,)),
    "int8-dense-no-bias": lambda: _quantized("int8", lambda: layers.Dense(3, use_bias=False), (4,)),
    "int4-dense": lambda: _quantized("int4", lambda: layers.Dense(3), (4,)),
    "float8-dense": lambda: _quantized("float8", lambda: layers.Dense(3), (4,)),
    "int8-einsum-dense": lambda: _quantized(
        "int8", lambda: layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"), (4,)
    ),
    "int8-embedding": lambda: _quantized("int8", lambda: layers.Embedding(10, 4), (3,)),
    "int4-embedding": lambda: _quantized("int4", lambda: layers.Embedding(10, 4), (3,)),
    "int8-reversible-embedding-untied": lambda: _quantized(
        "int8", lambda: layers.ReversibleEmbedding(10, 4, tie_weights=False), (3,)
    ),
    # SpectralNormalization holds its layer's kernel as its own: one variable, saved twice
    "spectral-normalization-dense": lambda: _model(
        layers.SpectralNormalization(layers.Dense(3)), (4,)
    ),
    "spectral-normalization-conv": lambda: _model(
        layers.SpectralNormalization(layers.Conv2D(3, 2)), (5, 5, 2)
    ),
    "spectral-normalization-embedding": lambda: _model(
        layers.SpectralNormalization(layers.Embedding(10, 3)), (4,)
    ),
    "reversible-embedding-untied": lambda: _model(
        layers.ReversibleEmbedding(10, 4, tie_weights=False), (3,)
    ),
}


def _trainable_size(model: Any) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize("name", sorted(KERAS3))
def test_static_trainable_split_equals_keras(name: str, save) -> None:
    model = KERAS3[name]()
    static = read_report(save(model))
    live = weighttie.analyze(model)
    assert static.params == live.params
    assert static.params.trainable_unique == _trainable_size(model)
    assert [(v.path, v.shape, v.dtype, v.trainable, v.layers) for v in static.variables] == [
        (v.path, v.shape, v.dtype, v.trainable, v.layers) for v in live.variables
    ]
    assert static.groups == live.groups


def _tf_keras_models() -> dict[str, Callable[[], Any]]:
    k = pytest.importorskip("tf_keras")
    kl = k.layers
    return {
        "normalization-adapted": lambda: _model(
            _adapted(kl.Normalization(), np.arange(12.0).reshape(4, 3)), (3,), k
        ),
        "batch-norm": lambda: _model(kl.BatchNormalization(), (3,), k),
        "batch-norm-renorm": lambda: _model(kl.BatchNormalization(renorm=True), (3,), k),
        "sync-batch-norm": lambda: _model(kl.experimental.SyncBatchNormalization(), (3,), k),
        "batch-norm-frozen": lambda: _model(_frozen(kl.BatchNormalization()), (3,), k),
        "frozen-inner-dense": lambda: _frozen_inner_dense(k),
        "frozen-nested-model": lambda: _frozen_nested_model(k),
        "frozen-root": lambda: _frozen_root(k),
        "frozen-bidirectional": lambda: _model(_frozen(kl.Bidirectional(kl.LSTM(3))), (5, 3), k),
        "string-lookup": lambda: _model(kl.StringLookup(vocabulary=["a"]), (3,), k, dtype="string"),
        "random-flip-dropout": lambda: _model(
            lambda x: kl.Dropout(0.5, seed=1)(kl.RandomFlip(seed=3)(x)), (4, 4, 3), k
        ),
        "stateful-lstm": lambda: _model(kl.LSTM(3, stateful=True), (5, 3), k, batch_size=2),
    }


def _save_h5(model: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    return path


@pytest.mark.parametrize(
    "name",
    [
        "normalization-adapted",
        "batch-norm",
        "batch-norm-renorm",
        "sync-batch-norm",
        "batch-norm-frozen",
        "frozen-inner-dense",
        "frozen-nested-model",
        "frozen-root",
        "frozen-bidirectional",
        "string-lookup",
        "random-flip-dropout",
        "stateful-lstm",
    ],
)
def test_static_trainable_split_of_keras2_files_equals_tf_keras(name: str, tmp_path: Path) -> None:
    model = _tf_keras_models()[name]()
    static = read_report(_save_h5(model, tmp_path / "m.h5"))
    assert static.params.unique == model.count_params()
    assert static.params.trainable_unique == _trainable_size(model)
    assert sum(v.trainable for v in static.variables) == len(model.trainable_weights)


def test_keras2_adapt_state_of_unknown_length_is_non_trainable(tmp_path: Path) -> None:
    """tf_keras's adapted Discretization (``summary``) and a tf-idf IntegerLookup (its idf
    weights, named ``Variable``) hold variables of shape ``(2, None)`` and ``(None,)``:
    ``count_params`` counts them 0, the file stores their values. The static reader counts
    what the file stores, all of it non-trainable, as tf_keras made it."""
    k = pytest.importorskip("tf_keras")
    kl = k.layers
    models = {
        "disc": _model(
            _adapted(kl.Discretization(num_bins=3), np.arange(12.0).reshape(4, 3)), (3,), k
        ),
        "idf": _model(
            kl.IntegerLookup(vocabulary=[1, 2], idf_weights=[1.0, 2.0], output_mode="tf_idf"),
            (3,),
            k,
            dtype="int64",
        ),
    }
    for name, model in models.items():
        (weight,) = model.weights
        assert not weight.trainable and None in weight.shape.as_list()
        static = read_report(_save_h5(model, tmp_path / f"{name}.h5"))
        (variable,) = static.variables
        assert not variable.trainable
        assert static.params.trainable_unique == 0
        assert static.params.non_trainable_unique == variable.size == weight.numpy().size


@pytest.mark.parametrize(
    "make",
    [
        lambda: _model(layers.Dense(3, lora_rank=2), (4,)),
        lambda: _model(layers.Conv2D(3, 2, lora_rank=2), (4, 4, 2)),
        lambda: _model(layers.Embedding(10, 4, lora_rank=2), (3,)),
    ],
    ids=["dense", "conv2d", "embedding"],
)
def test_lora_kernel_is_frozen_and_its_factors_are_not_in_the_file(make, save) -> None:
    """Keras saves a LoRA layer's kernel with the product of its factors merged in, and
    makes the factors anew on load: the file holds the kernel (frozen under LoRA), not
    the factors, so the static count is short of the live one by exactly their size."""
    model = make()
    static = read_report(save(model))
    live = {v.path: v for v in weighttie.analyze(model).variables}
    factors = {p: v for p, v in live.items() if p.rsplit("/", 1)[-1].startswith("lora_")}
    assert len(factors) == 2
    for variable in static.variables:
        assert (variable.shape, variable.trainable) == (
            live[variable.path].shape,
            live[variable.path].trainable,
        )
    assert set(live) - {v.path for v in static.variables} == set(factors)
    assert static.params.trainable_unique == _trainable_size(model) - sum(
        v.size for v in factors.values()
    )


class _ListedTower(keras.Model):
    """A subclassed model keeping layers in a list attribute: Keras saves the list's
    members as it saves a model's ``layers``, each under its class's snake-cased name
    (``blocks/batch_normalization``), not under an attribute's name."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocks = [layers.Dense(4, name="d"), layers.BatchNormalization(name="bn")]
        self.head = layers.Dense(2, name="head")

    def call(self, x: Any) -> Any:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_a_layer_in_a_list_has_the_class_its_group_names(save) -> None:
    """A list's group holds no ``vars``: its members' group names are their classes', so a
    BatchNormalization kept in a list keeps its moving statistics non-trainable (the
    file has no graph: its weights are the only map). The attribute ``head`` says no class."""
    model = _ListedTower()
    model(np.zeros((1, 3)))
    report = read_report(save(model))
    assert report.params.trainable_unique == _trainable_size(model)
    assert report.layer("blocks/bn").class_name == "BatchNormalization"
    assert report.variable("blocks/bn/moving_mean").trainable is False
    assert report.layer("blocks/d").class_name == "Dense"
    assert report.layer("blocks").variables == ()
    assert report.layer("head").class_name == "?"

"""Failed tie operations leave the model as it was; failed loads leave the file as it was."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from ties.test_ties import same_valid_model
from weighttie import TieError


def state(*layer_list: keras.Layer) -> list[object]:
    """Everything a tie operation could change: variable identities and values, tie records,
    and what saving would write into each layer's build_config."""
    result: list[object] = []
    for layer in layer_list:
        for v in layer.weights:
            result.append((layer.name, v.path, id(v), v.numpy().tobytes()))
        result.append((layer.name, "record", repr(getattr(layer, "_weighttie_ties", None))))
        result.append((layer.name, "build_config", repr(layer.get_build_config())))
    return result


def model_state(model: keras.Model) -> list[object]:
    """state() of every layer, plus what compiling sets: the optimizer (identity and every
    slot's value), whether the model is compiled, its compile config and the variables it
    trains."""
    optimizer = getattr(model, "optimizer", None)
    slots = None if optimizer is None else [v.numpy().tobytes() for v in optimizer.variables]
    return [
        *state(*model.layers),
        ("optimizer", id(optimizer), slots),
        ("compiled", model.compiled, repr(model.get_compile_config())),
        ("trainable", [id(v) for v in model.trainable_variables]),
    ]


def dense(units: int = 3, inputs: int = 4, **kwargs: object) -> keras.Layer:
    layer = layers.Dense(units, **kwargs)
    layer.build((None, inputs))
    return layer


FAILING_TIES: dict[str, Callable[[], tuple[tuple[keras.Layer, ...], Callable[[], object]]]] = {}


def failing(name: str):  # type: ignore[no-untyped-def]
    def register(make):  # type: ignore[no-untyped-def]
        FAILING_TIES[name] = make
        return make

    return register


@failing("self")
def _self():  # type: ignore[no-untyped-def]
    a = dense()
    return (a,), lambda: weighttie.tie_weights(a, a)


@failing("different values without keep")
def _values():  # type: ignore[no-untyped-def]
    a, b = dense(), dense()
    return (a, b), lambda: weighttie.tie_weights(a, b)


@failing("shape mismatch")
def _shape():  # type: ignore[no-untyped-def]
    a, b = dense(3), dense(5)
    return (a, b), lambda: weighttie.tie_weights(a, b, keep="source")


@failing("shape mismatch on the second variable only")
def _second():  # type: ignore[no-untyped-def]
    a2 = layers.Conv1D(3, 2)
    a2.build((None, 5, 4))
    b2 = layers.Conv1D(3, 3)  # same bias shape, different kernel shape
    b2.build((None, 5, 4))
    return (a2, b2), lambda: weighttie.tie_weights(a2, b2, keep="target")


@failing("class mismatch")
def _class():  # type: ignore[no-untyped-def]
    a = dense()
    b = layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c")
    b.build((None, 4))
    return (a, b), lambda: weighttie.tie_weights(a, b, keep="source")


@failing("unknown variable name")
def _names():  # type: ignore[no-untyped-def]
    a, b = dense(), dense()
    return (a, b), lambda: weighttie.tie_weights(a, b, variables=["kernal"], keep="source")


@failing("missing counterpart")
def _counterpart():  # type: ignore[no-untyped-def]
    a, b = dense(), dense(use_bias=False)
    return (a, b), lambda: weighttie.tie_weights(a, b, keep="source")


@failing("cycle")
def _cycle():  # type: ignore[no-untyped-def]
    a, b = dense(), dense()
    weighttie.tie_weights(a, b, keep="source")
    return (a, b), lambda: weighttie.tie_weights(b, a, keep="source")


@failing("second source")
def _second_source():  # type: ignore[no-untyped-def]
    a, b, c = dense(), dense(), dense()
    weighttie.tie_weights(a, c, keep="source")
    return (a, b, c), lambda: weighttie.tie_weights(b, c, keep="source")


@failing("untie a layer that is not tied")
def _untie():  # type: ignore[no-untyped-def]
    a = dense()
    return (a,), lambda: weighttie.untie(a)


@pytest.mark.parametrize("name", sorted(FAILING_TIES))
def test_failed_tie_operations_change_nothing(name: str) -> None:
    keras.utils.set_random_seed(0)
    layer_list, operation = FAILING_TIES[name]()
    before = state(*layer_list)
    with pytest.raises(TieError):
        operation()
    assert state(*layer_list) == before


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_failed_retie_leaves_the_model_and_the_file_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    same_valid_model().save(path)
    digest = _digest(path)
    plain = keras.saving.load_model(path)
    if keras.config.backend() == "jax":  # JAX ties only before the optimizer is built
        plain.compile(keras.optimizers.Adam(1e-2), "mse")
    # the model already carries a different tie on the target
    other = layers.Conv2D(4, 3, name="other")
    other.build((None, 8, 8, 3))
    valid = plain.get_layer("valid")
    other.set_weights(valid.get_weights())
    weighttie.tie_weights(other, valid)
    before = state(plain.get_layer("same"), valid)
    optimizer_before = [v.numpy().tobytes() for v in plain.optimizer.variables]
    with pytest.raises(TieError, match="already tied to 'other'"):
        weighttie.retie(plain, path)
    assert state(plain.get_layer("same"), valid) == before
    assert [v.numpy().tobytes() for v in plain.optimizer.variables] == optimizer_before
    assert _digest(path) == digest


def test_failed_load_model_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    same_valid_model().save(path)
    data = bytearray(path.read_bytes())
    data[-200:] = b"\x00" * 200  # damage the zip directory
    path.write_bytes(bytes(data))
    digest = _digest(path)
    with pytest.raises(weighttie.WeighttieError):
        weighttie.load_model(path)
    assert _digest(path) == digest


def test_successful_operations_never_touch_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    same_valid_model().save(path)
    digest = _digest(path)
    model = weighttie.load_model(path)
    weighttie.retie(keras.saving.load_model(path), path)
    weighttie.analyze(model)
    assert _digest(path) == digest
    np.testing.assert_array_equal(
        model.get_layer("same").kernel.numpy(), model.get_layer("valid").kernel.numpy()
    )

"""The catalogue as a whole (weighttie.layers): every class states every fact, every
Keras layer class is in it under each of its names, and it imports no Keras."""

from __future__ import annotations

import doctest
import inspect
import subprocess
import sys
from typing import Any

import keras
import pytest
from keras import layers

import weighttie
from layers.mac_oracle import profiled_macs
from weighttie.layers import (
    CATALOGUE,
    FAMILIES,
    entry_of,
    is_builtin,
    output_shapes,
    runs_sublayers_once,
    variable_names,
)
from weighttie.layers.layer_class import NONE, UNKNOWN, LayerClass, Sublayers, Variables


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_class_states_every_fact(name: str) -> None:
    """A fact is a rule, or says 0 MACs, none held, or unknown: never missing."""
    entry = CATALOGUE[name]
    assert entry.name == name
    assert callable(entry.shapes) or entry.shapes is UNKNOWN
    assert (
        callable(entry.macs)
        or entry.macs is UNKNOWN
        or (type(entry.macs) is int and entry.macs == 0)
    )
    assert isinstance(entry.variables, Variables) or entry.variables in (NONE, UNKNOWN)
    assert isinstance(entry.sublayers, Sublayers) or entry.sublayers is NONE
    assert entry.package in ("keras", "keras_hub")
    if isinstance(entry.variables, Variables) and entry.variables.names is None:
        assert entry.variables.state or entry.variables.by_count, "a Variables that says nothing"


def test_a_class_is_catalogued_once() -> None:
    from weighttie.layers import _catalogue

    dense = CATALOGUE["Dense"]
    with pytest.raises(ValueError, match="names 'Dense' twice"):
        _catalogue([dense, dense])
    alias = LayerClass("Conv2D", UNKNOWN, UNKNOWN, NONE, NONE, aliases=("Dense",))
    with pytest.raises(ValueError, match="names 'Dense' twice"):
        _catalogue([dense, alias])
    assert sum(len(family.CLASSES) for family in FAMILIES) == len(CATALOGUE)


#: keras.layers' abstract bases: a file never holds one as a layer of its own.
ABSTRACT = frozenset({"Layer", "Wrapper"})


def _keras_layer_classes() -> dict[str, type]:
    found = {}
    for name in dir(keras.layers):
        cls = getattr(keras.layers, name)
        if inspect.isclass(cls) and issubclass(cls, keras.layers.Layer):
            found[name] = cls
    return found


def test_every_keras_layer_class_is_catalogued() -> None:
    """A Keras release that adds a layer class fails here until the class is catalogued,
    its facts stated or said unknown (docs/architecture.md: a new layer class)."""
    names = {cls.__name__ for cls in _keras_layer_classes().values()} - ABSTRACT
    missing = sorted(n for n in names if entry_of(n) is None or entry_of(n).package != "keras")  # type: ignore[union-attr]
    assert missing == []


#: Arguments that build each class Keras offers other names of (by the class's own name).
ALIASED: dict[str, dict[str, Any]] = {
    **{f"Conv{r}D": {"filters": 2, "kernel_size": 2} for r in (1, 2, 3)},
    **{f"Conv{r}DTranspose": {"filters": 2, "kernel_size": 2} for r in (1, 2, 3)},
    **{f"SeparableConv{r}D": {"filters": 2, "kernel_size": 2} for r in (1, 2)},
    **{f"{kind}Pooling{r}D": {"pool_size": 2} for kind in ("Max", "Average") for r in (1, 2, 3)},
    "GroupedQueryAttention": {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1},
}


def _aliased_layer(name: str) -> keras.Layer:
    cls = getattr(keras.layers, name)
    return cls(**ALIASED.get(cls.__name__, {}))


def test_every_other_name_keras_offers_is_an_alias() -> None:
    """Each name ``keras.layers`` offers for a class besides the one a file holds
    (``Convolution2D``, ``MaxPool2D``, ``GroupedQueryAttention``) is an alias of it."""
    offered = {}
    for name, cls in _keras_layer_classes().items():
        if name != cls.__name__:
            saved = keras.saving.serialize_keras_object(_aliased_layer(name))["class_name"]
            offered.update({other: saved for other in {name, cls.__name__} - {saved}})
    aliases = {alias: e.name for e in CATALOGUE.values() for alias in e.aliases}
    keras_aliases = {a: n for a, n in aliases.items() if not a.startswith("Custom>")}
    assert offered == keras_aliases


@pytest.mark.parametrize("alias", ["Convolution2D", "SeparableConvolution1D", "MaxPool2D"])
def test_a_config_naming_an_alias_reads_as_its_class(alias: str) -> None:
    """Keras loads a config that names ``Convolution2D`` as a ``Conv2D``: its shapes and
    variable names are the class's."""
    class_name = entry_of(alias).name  # type: ignore[union-attr]
    entry = keras.saving.serialize_keras_object(_aliased_layer(alias))
    assert entry["class_name"] == class_name
    loaded = keras.saving.deserialize_keras_object({**entry, "class_name": alias})
    assert type(loaded).__name__ == class_name
    shape = (None, 8, 8, 3) if "2D" in alias else (None, 8, 3)
    expected = (tuple(loaded(keras.Input(batch_shape=shape)).shape),)
    assert output_shapes(alias, entry["config"], [shape]) == expected
    own = [v.name for v in loaded.weights]
    assert variable_names(alias, entry["config"], len(own)) == own


def test_the_classes_that_run_code_they_were_given() -> None:
    """Every Keras class runs each sublayer once per call, but those whose call is code
    a user gave them: the walker and both file readers ask this one question."""
    runs_code = {n for n in CATALOGUE if not runs_sublayers_once(n)} - {
        e.name for e in CATALOGUE.values() if e.package != "keras"
    }
    assert runs_code == {"Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper"}
    assert runs_sublayers_once("StackedRNNCells")  # a Keras class the catalogue knows little of


@pytest.mark.parametrize(
    ("entry", "builtin"),
    [
        ({"module": "keras.layers", "class_name": "Dense"}, True),
        ({"module": "keras.layers", "class_name": "Pipeline"}, True),
        ({"class_name": "Dense"}, True),  # Keras 2
        ({"class_name": "TFOpLambda"}, True),
        ({"class_name": "MyLayer"}, False),
        ({"class_name": "TransformerEncoder"}, False),  # keras_hub's
        ({"module": "keras.src.ops.numpy", "class_name": "Reshape"}, False),  # a Keras 3 op
        ({"module": "my_package", "class_name": "Dense"}, False),
        ({"module": "keras.layers", "class_name": "Dense", "registered_name": "my>Dense"}, False),
    ],
)
def test_a_builtin_is_keras_by_module_or_a_keras_2_class_by_name(
    entry: dict[str, Any], builtin: bool
) -> None:
    assert is_builtin(entry) is builtin


def test_a_class_whose_macs_are_unknown_is_uncounted_not_zero() -> None:
    """EinsumDense's equation and Dot's axes are not among the facts: unknown, not
    guessed, though TensorFlow's profiler would count them."""
    x = keras.Input((5, 4))
    y = layers.EinsumDense("abc,cd->abd", output_shape=(None, 3), name="einsum")(x)
    z = layers.Dot(axes=2, name="dot")([y, y])
    model = keras.Model(x, z)
    report = weighttie.analyze(model)
    assert report.layer("einsum").macs is None and report.layer("dot").macs is None
    assert report.cost.macs is None and report.cost.uncounted == 2  # not "at least 0"
    assert profiled_macs(model) > 0


def test_docstring_examples() -> None:
    import weighttie.layers
    import weighttie.layers.quantization

    for module in (weighttie.layers, weighttie.layers.quantization):
        assert doctest.testmod(module).failed == 0


def test_imports_neither_keras_nor_numpy() -> None:
    code = (
        "import sys, weighttie.layers\n"
        "heavy = {'keras', 'tf_keras', 'tensorflow', 'numpy', 'jax', 'torch', 'h5py'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

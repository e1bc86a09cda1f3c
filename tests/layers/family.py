"""The tests every family of the layer catalogue runs, against Keras as the oracle.

A family's test file (``tests/layers/test_conv.py`` …) subclasses
:class:`FamilyOracle` and states its cases; the base class turns them into tests:

* shapes: every Keras 3 case against Keras's symbolic call (or eager call, where
  Keras 3.15's symbolic shape is wrong), a sample of them and the Keras-2-only
  cases against tf_keras through a saved ``.h5``, and what the rules refuse
  (an unknown first input gives None; odd configs never raise; the family's
  ``unsure`` calls give None);
* MACs: each MAC case against TensorFlow's profiler (:mod:`layers.mac_oracle`);
* variables: each built layer's own variables, in saving order, named and flagged
  trainable as Keras made them;
* coverage: every rule the family's module states is checked by one of those (or
  by a test of its own the family names in ``checked_elsewhere``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import keras
import pytest

from layers import mac_oracle, shape_oracle
from layers.shape_oracle import Case, Corpus, OpCase
from weighttie import _keras
from weighttie.layers import output_shapes, trainable_flags, variable_names
from weighttie.layers.layer_class import UNKNOWN, Variables

#: A call a rule must not answer: class, config, input shapes, call kwargs.
Unanswered = tuple[str, dict[str, Any], list[Any], dict[str, Any] | None]
#: A built layer whose own variables the catalogue names, and the layer whose config a
#: file holds for it (itself, or an RNN layer for its cell).
VariableCase = Callable[[], tuple[keras.Layer, keras.Layer]]


def built(layer: keras.Layer, *shape: int, **input_kwargs: Any) -> tuple[keras.Layer, keras.Layer]:
    """``layer`` called once on an input of per-example ``shape``."""
    layer(keras.Input(shape, **input_kwargs))
    return layer, layer


def quantized(mode: str, layer: keras.Layer, *shape: int) -> tuple[keras.Layer, keras.Layer]:
    """``layer`` in a model quantized to ``mode``."""
    x = keras.Input(shape)
    model = keras.Model(x, layer(x))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Layer InputLayer does not have a `quantize` method")
        model.quantize(mode)
    return layer, layer


def assert_variables_match_keras(layer: keras.Layer, config_of: keras.Layer) -> str:
    """The catalogue names ``layer``'s own variables in saving order (each saved array has
    the named variable's shape) and flags them trainable as Keras created them; the
    layer's class."""
    class_name = type(layer).__name__
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(config_of)))["config"]
    saved: dict[str, Any] = {}
    layer.save_own_variables(saved)
    names = variable_names(class_name, config, len(saved))
    assert names != [str(i) for i in range(len(saved))], f"{class_name}: names not tabled"
    own = {v.name: v for v in _keras.own_variables(layer)}
    assert set(names) <= set(own), (names, sorted(own))
    assert [tuple(a.shape) for a in saved.values()] == [tuple(own[n].shape) for n in names]
    flags = trainable_flags(class_name, config, names)
    assert flags == [bool(own[n].trainable) for n in names], (names, flags)
    return class_name


class FamilyOracle:
    """What every family's tests check; a family's file sets the class attributes."""

    #: The family's module in ``weighttie.layers``.
    family: ClassVar[ModuleType]
    #: Keras 3 shape cases (a sample goes to tf_keras too).
    cases: ClassVar[Sequence[Case]] = ()
    #: Shape cases only Keras 2 spells (``time_major`` …).
    keras2_only: ClassVar[Sequence[Case]] = ()
    #: ``tf.*`` calls tf_keras turns into op layers.
    op_cases: ClassVar[Sequence[OpCase]] = ()
    #: Classes whose tf_keras symbolic shape leaves dimensions unknown that the rule knows.
    keras2_loses_sizes: ClassVar[frozenset[str]] = frozenset()
    #: MAC cases, checked against TensorFlow's profiler.
    mac_cases: ClassVar[Mapping[str, mac_oracle.MacCase]] = {}
    #: Built layers whose variables the catalogue names.
    variable_cases: ClassVar[Mapping[str, VariableCase]] = {}
    #: Calls the rules must answer None to (a custom class, a config Keras rejects …), by id:
    #: class, config, input shapes, call kwargs.
    unsure: ClassVar[Mapping[str, Unanswered]] = {}
    #: Rules of the family a test of its own checks (``"Conv2DTranspose: MACs"``).
    checked_elsewhere: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A family without cases of a kind has no tests of that kind (rather than tests
        skipped for an empty parameter set)."""
        super().__init_subclass__(**kwargs)
        shaped = bool(cls.cases or cls.keras2_only or cls.op_cases)
        present = {
            "test_shapes_match_keras": bool(cls.cases),
            "test_shapes_match_tf_keras": shaped,
            "test_an_unknown_first_input_gives_none": shaped,
            "test_odd_configs_never_raise": shaped,
            "test_macs_equal_tensorflows_count": bool(cls.mac_cases),
            "test_variables_are_named_and_flagged_as_keras_makes_them": bool(cls.variable_cases),
            "test_none_when_unsure": bool(cls.unsure),
        }
        for test, runs in present.items():
            if not runs:
                setattr(cls, test, None)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        cls = metafunc.cls
        assert cls is not None
        params = {
            "class_name": sorted({case.layer for case in cls.cases}),
            "group": sorted(
                {c.layer for c in cls.keras2_cases()} | {f"op:{o.function}" for o in cls.op_cases}
            ),
            "mac_case": sorted(cls.mac_cases),
            "variable_case": sorted(cls.variable_cases),
            "unsure_call": list(cls.unsure),
        }
        for name, values in params.items():
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, values)

    @classmethod
    def keras2_cases(cls) -> list[Case]:
        return shape_oracle.keras2_sample(cls.cases, cls.keras2_only)

    @pytest.fixture(scope="class")
    @classmethod
    def keras3_corpus(cls) -> Corpus:
        return shape_oracle.keras3_corpus(cls.cases)

    @pytest.fixture(scope="class")
    @classmethod
    def keras2_corpus(cls, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
        folder: Path = tmp_path_factory.mktemp("keras2")
        return shape_oracle.keras2_corpus(cls.keras2_cases(), cls.op_cases, folder)

    def test_shapes_match_keras(self, keras3_corpus: Corpus, class_name: str) -> None:
        keras3_corpus.check(class_name)

    def test_shapes_match_tf_keras(self, keras2_corpus: Corpus, group: str) -> None:
        keras2_corpus.check(group, refines=group in self.keras2_loses_sizes)

    def test_an_unknown_first_input_gives_none(
        self, keras3_corpus: Corpus, keras2_corpus: Corpus
    ) -> None:
        shape_oracle.assert_unknown_first_input_gives_none(
            keras3_corpus.calls() + keras2_corpus.calls()
        )

    def test_odd_configs_never_raise(self, keras3_corpus: Corpus, keras2_corpus: Corpus) -> None:
        calls = keras3_corpus.calls() + keras2_corpus.calls()
        shape_oracle.assert_odd_configs_never_raise(calls, sample=60, seed=11)

    def test_none_when_unsure(self, unsure_call: str) -> None:
        assert output_shapes(*self.unsure[unsure_call]) is None

    def test_macs_equal_tensorflows_count(self, mac_case: str) -> None:
        mac_oracle.assert_macs_equal_tensorflows(self.mac_cases[mac_case])

    def test_variables_are_named_and_flagged_as_keras_makes_them(self, variable_case: str) -> None:
        assert_variables_match_keras(*self.variable_cases[variable_case]())

    def test_every_rule_of_the_family_is_checked_against_keras(self) -> None:
        """A class whose shapes, MACs or variable names the family states has a case
        that checks it against Keras (or a test of its own: ``checked_elsewhere``)."""
        shaped = {c.layer for c in [*self.cases, *self.keras2_only]}
        shaped |= {"TFOpLambda", "SlicingOpLambda"} if self.op_cases else set()
        costed = {type(make()).__name__ for make, _ in self.mac_cases.values()}
        named = {type(make()[0]).__name__ for make in self.variable_cases.values()}
        unchecked = []
        for entry in self.family.CLASSES:
            facts = {
                "shapes": entry.shapes is not UNKNOWN and entry.name not in shaped,
                "MACs": callable(entry.macs) and entry.name not in costed,
                "variables": isinstance(entry.variables, Variables)
                and entry.variables.names is not None
                and entry.name not in named,
            }
            unchecked += [f"{entry.name}: {fact}" for fact, missing in facts.items() if missing]
        assert sorted(set(unchecked) - self.checked_elsewhere) == []

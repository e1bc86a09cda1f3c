"""Keras computes each shape, the catalogue's rules must agree: the shape oracle.

Cases are generated systematically by each family's test file (classes × configs ×
input shapes, unknown dimensions included). Each Keras 3 case becomes a real layer
called on ``keras.Input`` tensors inside one functional model; the rule then reads
exactly what a ``.keras`` file holds (the serialized layer config, the node's
tensors and kwargs) and must give the shapes of the layer's symbolic outputs.
Configs Keras itself rejects are skipped. Keras 2 cases do the same with
``tf_keras``: one model saved to ``.h5``, the rule reading its ``model_config``
and matching tf_keras's own output shapes, ``TFOpLambda`` op layers included.
"""

from __future__ import annotations

import json
import operator
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from weighttie.layers import output_shapes

Shape = tuple[int | None, ...]
#: One call the rule answered: class, config, input shapes, call kwargs.
RuleCall = tuple[str, dict[str, Any], list[Shape | None], dict[str, Any]]


@dataclass(frozen=True)
class Sub:
    """A layer passed to another layer's constructor (``Bidirectional(LSTM(…))``)."""

    layer: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"{self.layer}({_compact(self.kwargs)})"


@dataclass(frozen=True)
class Case:
    """One call of one layer: constructor kwargs, input shapes and how it is called."""

    layer: str
    kwargs: dict[str, Any]
    inputs: tuple[Shape, ...]
    style: str = "one"  # "one": layer(x); "list": layer([x, y, …]); "args": layer(x, y, …)
    call: dict[str, Any] = field(default_factory=dict)  # non-tensor call kwargs
    by_name: tuple[str, ...] = ()  # names of the trailing inputs passed as kwargs
    dtype: str = "float32"
    #: "symbolic": Keras's symbolic call is the oracle; "eager": Keras 3.15's symbolic
    #: shape is wrong here, the tensor an eager call returns is the oracle.
    oracle: str = "symbolic"

    @property
    def id(self) -> str:
        extra = _compact(self.call) if self.call else ""
        named = "+" + ",".join(self.by_name) if self.by_name else ""
        inputs = ";".join(_shape_text(s) for s in self.inputs)
        return f"{self.layer}({_compact(self.kwargs)}){extra}{named}<{inputs}>"


@dataclass(frozen=True)
class OpCase:
    """A ``tf.*`` call on symbolic tf_keras tensors (it becomes a ``TFOpLambda`` layer)."""

    function: str
    inputs: tuple[Shape, ...]
    build: Callable[..., Any]


def unique(cases: Iterator[Case]) -> list[Case]:
    """The cases, each once (by id), in order."""
    return list({case.id: case for case in cases}.values())


def _compact(kwargs: dict[str, Any]) -> str:
    return ",".join(f"{k}={v!r}".replace(" ", "") for k, v in kwargs.items())


def _shape_text(shape: Shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def image(spatial: Shape, first: bool, channels: int = 3) -> Shape:
    """A batch of images of ``spatial`` size, channels first or last."""
    return (None, channels, *spatial) if first else (None, *spatial, channels)


def data_format(first: bool) -> str:
    return "channels_first" if first else "channels_last"


#: Spatial sizes of 1D/2D/3D images, unknown dimensions among them.
SPATIAL = {
    1: [(9,), (None,), (4,)],
    2: [(9, 7), (None, 6), (4, 4)],
    3: [(5, 6, 7), (None, 4, None)],
}


# -- building layers and reading what a file would hold ---------------------------------


def _construct(layers: Any, value: Any) -> Any:
    """Instantiate ``Sub`` specs (also inside lists) with the given ``layers`` module."""
    if isinstance(value, Sub):
        return getattr(layers, value.layer)(
            **{k: _construct(layers, v) for k, v in value.kwargs.items()}
        )
    if isinstance(value, list) and value and isinstance(value[0], Sub):
        return [_construct(layers, v) for v in value]
    return value


def _call_layer(layer: Any, tensors: list[Any], case: Case) -> Any:
    positional = tensors[: len(tensors) - len(case.by_name)]
    named = dict(zip(case.by_name, tensors[len(positional) :], strict=True))
    if case.style == "list":
        return layer(positional, **named, **case.call)
    if case.style == "args":
        return layer(*positional, **named, **case.call)
    return layer(positional[0], **named, **case.call)


def _node_tensors(value: Any) -> Iterator[dict[str, Any]]:
    """The ``__keras_tensor__`` configs of a serialized call, in ``tree.flatten`` order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield value["config"]
            return
        for key in sorted(value):
            yield from _node_tensors(value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _node_tensors(item)


def _as_shape(shape: Any) -> Shape | None:
    return None if shape is None else tuple(shape)


@dataclass(frozen=True)
class Outcome:
    """What the rule said and what Keras said, for one call Keras accepted."""

    case: str
    rule: tuple[Shape | None, ...] | None
    keras: tuple[Shape | None, ...]
    call: RuleCall  # the rule's arguments

    def __str__(self) -> str:
        return f"{self.case}: rule {self.rule} != keras {self.keras}"


@dataclass
class Corpus:
    """Outcomes by class name, and how many cases Keras rejected."""

    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def add(self, class_name: str, outcome: Outcome) -> None:
        self.outcomes.setdefault(class_name, []).append(outcome)

    def check(self, class_name: str, refines: bool = False) -> None:
        """The rule gives Keras's shapes (or, with ``refines``, the same shapes with
        dimensions Keras leaves unknown known)."""
        outcomes = self.outcomes.get(class_name, [])
        assert outcomes or self.rejected.get(class_name), "no case reached the rule"
        if not outcomes:
            pytest.skip(f"Keras rejected all {self.rejected[class_name]} cases")
        agree = _refines if refines else operator.eq
        wrong = [str(o) for o in outcomes if not agree(o.rule, o.keras)]
        assert not wrong, f"{len(wrong)} of {len(outcomes)} cases differ:\n" + "\n".join(wrong)

    def calls(self) -> list[RuleCall]:
        return [o.call for outcomes in self.outcomes.values() for o in outcomes]


def _concrete(shape: Shape) -> Shape:
    """The shape of the arrays an eager call gets: unknown dimensions become 2."""
    return tuple(2 if d is None else d for d in shape)


def _array(shape: Shape, dtype: str) -> Any:
    import numpy as np

    if dtype == "string":
        return np.full(shape, "a", dtype=object)
    return np.zeros(shape, dtype=dtype)


def _refines(rule: Any, keras: tuple[Shape | None, ...]) -> bool:
    """Same outputs and ranks, every dimension Keras knows the same."""
    if rule is None or len(rule) != len(keras):
        return False
    for mine, theirs in zip(rule, keras, strict=True):
        if theirs is None:
            continue
        if mine is None or len(mine) != len(theirs):
            return False
        if any(t is not None and m != t for m, t in zip(mine, theirs, strict=True)):
            return False
    return True


# -- Keras 3 -----------------------------------------------------------------------------------

#: Cases per functional model (Keras maps a model's graph in more than linear time).
CHUNK = 200


def keras3_corpus(cases: Sequence[Case]) -> Corpus:
    """Every case built with Keras 3 and answered by the rules as a ``.keras`` file states it."""
    keras = pytest.importorskip("keras")
    corpus = Corpus()
    for start in range(0, len(cases), CHUNK):
        _keras3_chunk(keras, corpus, cases, start)
    return corpus


def _keras3_chunk(keras: Any, corpus: Corpus, cases: Sequence[Case], start: int) -> None:
    inputs: list[Any] = []
    outputs: list[Any] = []
    built: dict[str, tuple[Case, tuple[Shape | None, ...]]] = {}
    for index, case in enumerate(cases[start : start + CHUNK], start):
        name = f"case_{index}"
        try:
            tensors = [keras.Input(batch_shape=s, dtype=case.dtype) for s in case.inputs]
            kwargs = {k: _construct(keras.layers, v) for k, v in case.kwargs.items()}
            layer = getattr(keras.layers, case.layer)(name=name, **kwargs)
            flat = keras.tree.flatten(_call_layer(layer, tensors, case))
        except Exception:  # Keras rejects this config or these inputs
            corpus.rejected[case.layer] = corpus.rejected.get(case.layer, 0) + 1
            continue
        if any(t is x for t in flat for x in tensors):  # Equalization hands back its input
            config = keras.saving.serialize_keras_object(layer)["config"]
            call = (case.layer, config, list(case.inputs), dict(case.call))
            expected = tuple(_as_shape(t.shape) for t in flat)
            corpus.add(case.layer, Outcome(case.id, output_shapes(*call), expected, call))
            continue
        inputs += tensors
        outputs += flat
        if case.oracle == "eager":
            arrays = [_array(_concrete(s), case.dtype) for s in case.inputs]
            flat = keras.tree.flatten(_call_layer(layer, arrays, case))
        built[name] = case, tuple(_as_shape(t.shape) for t in flat)
    if not outputs:
        return
    # What a .keras file's config.json holds: the layer's config, each call's tensors.
    config = keras.saving.serialize_keras_object(keras.Model(inputs, outputs))["config"]
    for entry in config["layers"]:
        if entry["name"] not in built:
            continue
        case, expected = built[entry["name"]]
        node = entry["inbound_nodes"][0]
        shapes = [_as_shape(t["shape"]) for t in _node_tensors([node["args"], node["kwargs"]])]
        if case.oracle == "eager":
            shapes = [_concrete(s) for s in shapes if s is not None]
        call = (entry["class_name"], entry["config"], shapes, node["kwargs"])
        corpus.add(entry["class_name"], Outcome(case.id, output_shapes(*call), expected, call))


# -- Keras 2 (tf_keras) ---------------------------------------------------------------------

#: Classes tf_keras does not have, or spells differently (data_format of the image
#: preprocessing layers): left out of the sample the Keras 2 corpus takes.
NOT_IN_KERAS2 = frozenset(
    {f"Adaptive{kind}Pooling{rank}D" for kind in ("Max", "Average") for rank in (1, 2, 3)}
    | {"GroupQueryAttention", "RMSNormalization", "ReversibleEmbedding", "AutoContrast"}
    | {"Solarization", "RandomInvert", "Resizing", "CenterCrop", "RandomCrop", "RandomHue"}
    | {"RandomSaturation", "RandomSharpness", "RandomShear", "RandomPosterization"}
    | {"RandomColorDegeneration", "RandomColorJitter", "Equalization", "RandomErasing"}
    | {"RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform", "RandomGrayscale"}
    | {"ContrastLimitedAdaptiveHistogramEqualization", "MixUp", "CutMix", "AugMix"}
    | {"RandAugment", "SpectralNormalization"}
)

#: tf_keras builds a recurrent layer in about 0.25 s: the Keras 2 corpus takes one of each.
SLOW_IN_TF_KERAS = frozenset(
    {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
)


def keras2_sample(cases: Sequence[Case], only_keras2: Sequence[Case]) -> list[Case]:
    """A spread of the Keras 3 cases (tf_keras takes most of the same arguments), plus
    what only Keras 2 spells."""
    by_class: dict[str, list[Case]] = {}
    for case in cases:
        if case.layer not in NOT_IN_KERAS2:
            by_class.setdefault(case.layer, []).append(case)
    sample = []
    for layer, of_class in by_class.items():
        count = 1 if layer in SLOW_IN_TF_KERAS else 5
        sample += of_class[:: -(-len(of_class) // count)]
    return unique(iter([*sample, *only_keras2]))


def _keras2_refs(value: Any) -> Iterator[list[Any]]:
    """The ``[layer, node, tensor]`` references among a Keras 2 call's kwargs, flatten order."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _keras2_refs(value[key])
    elif isinstance(value, list):
        if len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
            yield value
        else:
            for item in value:
                yield from _keras2_refs(item)


def _tf_shape(tensor: Any) -> Shape | None:
    return None if tensor.shape.rank is None else tuple(tensor.shape.as_list())


def keras2_corpus(cases: Sequence[Case], ops: Sequence[OpCase], folder: Path) -> Corpus:
    """Every case (and ``tf.*`` op) built with tf_keras, saved to ``.h5``, and answered by
    the rules as its ``model_config`` states it. Outcomes are grouped by case class,
    ``op:<function>``, or ``made:<function>`` for op layers a case made on the way."""
    tf = pytest.importorskip("tensorflow")
    tf_keras = pytest.importorskip("tf_keras")
    h5py = pytest.importorskip("h5py")
    corpus = Corpus()
    inputs: list[Any] = []
    outputs: list[Any] = []
    cases_by_layer: dict[str, tuple[str, str]] = {}  # layer name: case label, group

    def add(label: str, group: str, shapes: tuple[Shape, ...], dtype: str, call: Any) -> None:
        try:
            tensors = [tf_keras.Input(shape=s[1:], batch_size=s[0], dtype=dtype) for s in shapes]
            flat = tf.nest.flatten(call(tensors))
        except Exception:  # tf_keras rejects this config or these inputs
            corpus.rejected[group] = corpus.rejected.get(group, 0) + 1
            return
        inputs.extend(tensors)
        outputs.extend(flat)
        cases_by_layer[flat[0].node.layer.name] = label, group

    for index, case in enumerate(cases):

        def call_layer(tensors: list[Any], case: Case = case, index: int = index) -> Any:
            kwargs = {k: _construct(tf_keras.layers, v) for k, v in case.kwargs.items()}
            layer = getattr(tf_keras.layers, case.layer)(name=f"case_{index}", **kwargs)
            return _call_layer(layer, tensors, case)

        add(case.id, case.layer, case.inputs, case.dtype, call_layer)
    for op in ops:
        add(
            op.function,
            f"op:{op.function}",
            op.inputs,
            "float32",
            lambda t, op=op: op.build(tf, *t),
        )
    model = tf_keras.Model(inputs, outputs)
    path = folder / "keras2.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    with h5py.File(path, "r") as file:
        model_config = json.loads(file.attrs["model_config"])

    def shape_of(ref: list[Any]) -> Shape | None:
        if ref[0] == "_CONSTANT_VALUE":  # a constant first operand: 2.0 * x
            return tuple(tf.constant(ref[2]).shape.as_list())
        tensors = tf.nest.flatten(model.get_layer(ref[0]).get_output_at(ref[1]))
        return _tf_shape(tensors[ref[2]])

    for entry in model_config["config"]["layers"]:
        if not entry["inbound_nodes"]:
            continue
        refs = entry["inbound_nodes"][0]
        if isinstance(refs[0], str):  # an op layer's single tensor: the reference itself
            refs = [refs]
        kwargs = refs[0][3] if len(refs[0]) > 3 else {}
        shapes = [shape_of(r) for r in refs] + [shape_of(r) for r in _keras2_refs(kwargs)]
        config = entry["config"]
        call = (entry["class_name"], config, shapes, kwargs)
        rule = output_shapes(*call)
        layer = model.get_layer(config["name"])
        expected = tuple(_tf_shape(t) for t in tf.nest.flatten(layer.output))
        made = f"made:{config.get('function', entry['class_name'])}"  # on the way to a case
        label, group = cases_by_layer.get(config["name"], (config["name"], made))
        corpus.add(group, Outcome(f"{label} {shapes} {kwargs}", rule, expected, call))
    return corpus


# -- what the rules refuse to answer, and never do -----------------------------------


def assert_unknown_first_input_gives_none(calls: Sequence[RuleCall]) -> None:
    """Every call the corpus answers, asked again without its first input's shape."""
    answered = []
    for class_name, config, shapes, kwargs in calls:
        if shapes:
            unknown = [None, *shapes[1:]]
            if output_shapes(class_name, config, unknown, kwargs):
                answered.append((class_name, config))
    assert not answered


ODD_VALUES: list[Any] = [
    None, -1, 0, 1.5, True, "x", "", [], [0], [-2, "a"], [[1, 2, 3]], {}, {"class_name": 3},
    {"class_name": "LSTM", "config": {"units": "4"}}, [None, None], 10**30,
]  # fmt: skip


def assert_odd_configs_never_raise(calls: Sequence[RuleCall], sample: int, seed: int) -> None:
    """Each config value, call argument and input shape replaced by odd values: an
    answer or None, never an error."""
    rng = random.Random(seed)
    for class_name, config, shapes, kwargs in rng.sample(calls, min(sample, len(calls))):
        for key in config:
            for value in ODD_VALUES:
                odd = {**config, key: value}
                _well_formed(output_shapes(class_name, odd, shapes, kwargs), class_name, key, value)
        for key in [*kwargs, "return_attention_scores", "reverse"]:
            for value in rng.sample(ODD_VALUES, 4):
                _well_formed(output_shapes(class_name, config, shapes, {**kwargs, key: value}))
        for value in ODD_VALUES:
            _well_formed(output_shapes(class_name, config, [value, *shapes[1:]], kwargs))
            _well_formed(output_shapes(class_name, config, shapes, value))
            _well_formed(output_shapes(class_name, value, shapes, kwargs))
        _well_formed(output_shapes(class_name, config, [(None,) * 9], kwargs))
        _well_formed(output_shapes(class_name, config, [()], kwargs))


def _well_formed(result: Any, *context: Any) -> None:
    if result is None:
        return
    assert isinstance(result, tuple) and result, context
    for shape in result:
        assert shape is None or (
            isinstance(shape, tuple)
            and all(d is None or (type(d) is int and d >= 0) for d in shape)
        ), (result, *context)

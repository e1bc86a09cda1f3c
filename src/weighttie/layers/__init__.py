"""The layer catalogue: what each Keras layer class means, one entry per class.

Each family module (:mod:`~weighttie.layers.core`, :mod:`~weighttie.layers.conv`,
:mod:`~weighttie.layers.pooling`, :mod:`~weighttie.layers.reshaping`,
:mod:`~weighttie.layers.merging`, :mod:`~weighttie.layers.normalization`,
:mod:`~weighttie.layers.recurrent`, :mod:`~weighttie.layers.attention`,
:mod:`~weighttie.layers.preprocessing`, :mod:`~weighttie.layers.applications`,
:mod:`~weighttie.layers.tf_ops`, :mod:`~weighttie.layers.keras_hub`) states, per
class, in one :class:`~weighttie.layers.layer_class.LayerClass`: its output-shape
rule, its MAC rule (or 0, or unknown), its variables' names in saving order and
their trainability, the sublayers it holds and whether it runs them once per
call, and Keras's other names of it. This module builds :data:`CATALOGUE` and
answers the questions the rest of weighttie asks of a class; nothing outside it
keeps a table of classes.

The principle is **never guess**: a class the catalogue does not know, a fact it
says is unknown, a shape a rule needs and lacks, or a config a rule does not
understand (or one Keras itself would reject) gives ``None`` (unknown), numbered
variable names, or ``?``, never a plausible answer and never an error. The package
imports neither Keras, a backend nor numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from weighttie.layers import (
    applications,
    attention,
    conv,
    core,
    keras_hub,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
    tf_ops,
)
from weighttie.layers.layer_class import NONE, UNKNOWN, LayerClass, Sublayers, Variables
from weighttie.layers.macs import HeldWeights, MacCall, Weight, per_example
from weighttie.layers.quantization import INTEGER_MODES, quantization_mode
from weighttie.layers.shapes import NOT_UNDERSTOOD, ShapeCall, ShapeRule, Shapes
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "MODEL_CLASSES",
    "UNKNOWN_CLASS",
    "HeldWeights",
    "LayerClass",
    "Weight",
    "call_macs",
    "cell_name",
    "counts_zero_macs",
    "entry_of",
    "frozen_in_init",
    "given_sublayers",
    "graphless_classes",
    "held_from_sublayer",
    "holds_only_given",
    "holds_variables",
    "hub_variable_names",
    "is_builtin",
    "output_shapes",
    "runs_sublayers_once",
    "sublayer_class",
    "sublayer_entry",
    "sublayer_key",
    "trainable_flags",
    "variable_names",
]

#: The families, in the order their classes are catalogued.
FAMILIES = (
    core,
    conv,
    pooling,
    reshaping,
    merging,
    normalization,
    recurrent,
    attention,
    preprocessing,
    applications,
    tf_ops,
    keras_hub,
)


def _catalogue(entries: Iterable[LayerClass]) -> tuple[dict[str, LayerClass], dict[str, str]]:
    """Entries by class name, and aliases to class names; a name given twice is an error."""
    by_name: dict[str, LayerClass] = {}
    aliases: dict[str, str] = {}
    for entry in entries:
        for name in (entry.name, *entry.aliases):
            if name in by_name or name in aliases:
                raise ValueError(f"the layer catalogue names {name!r} twice")
        by_name[entry.name] = entry
        aliases.update(dict.fromkeys(entry.aliases, entry.name))
    return by_name, aliases


_BY_NAME, _ALIASES = _catalogue(entry for family in FAMILIES for entry in family.CLASSES)

#: Every catalogued class by the name a file holds (aliases are on the entries).
CATALOGUE: Mapping[str, LayerClass] = MappingProxyType(_BY_NAME)

#: Classes whose config lists their layers (a functional graph or a layer stack).
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: The class shown for a layer the file does not name the class of.
UNKNOWN_CLASS = "?"


def entry_of(class_name: Any) -> LayerClass | None:
    """The catalogue's entry of a class, by its name or one of Keras's other names of it.

    Example:
        >>> entry_of("Convolution2D").name
        'Conv2D'
        >>> entry_of("MyLayer") is None
        True
    """
    if not isinstance(class_name, str):
        return None
    return _BY_NAME.get(_ALIASES.get(class_name, class_name))


def _keras_entry(class_name: Any) -> LayerClass | None:
    entry = entry_of(class_name)
    return entry if entry is not None and entry.package == "keras" else None


# -- is it Keras's own, and how does it run what it holds ---------------------------------


def is_builtin(entry: Mapping[str, Any]) -> bool:
    """Whether a config entry (``class_name``, ``module`` …) is one of Keras's own layers:
    a Keras 3 entry of module ``keras.layers``, or a Keras 2 entry (no module) of a class
    the catalogue knows as Keras's; not registered under another name either way.

    A Keras 3 op (``keras.src.ops.numpy.Reshape``) or a custom class may share a layer's
    name: neither is Keras's layer.

    Example:
        >>> is_builtin({"module": "keras.layers", "class_name": "Dense"})
        True
        >>> is_builtin({"class_name": "Dense"}), is_builtin({"class_name": "MyLayer"})
        (True, False)
        >>> is_builtin({"module": "keras.src.ops.numpy", "class_name": "Reshape"})
        False
    """
    class_name = entry.get("class_name")
    if entry.get("registered_name") not in (None, class_name):
        return False
    module = entry.get("module")
    if module is None:
        return _keras_entry(class_name) is not None
    return bool(module == "keras.layers")


def runs_sublayers_once(class_name: str) -> bool:
    """Whether a layer of Keras's own class ``class_name`` runs each sublayer it holds once
    per call (an RNN's cell, a wrapper's layer, a Bidirectional's copies): every Keras
    class does but those that run code they were given (``Lambda``, ``TFSMLayer`` …),
    whose code decides. The caller knows the class is Keras's (:func:`is_builtin`, or a
    live layer's module).

    Example:
        >>> runs_sublayers_once("LSTM"), runs_sublayers_once("Lambda")
        (True, False)
    """
    entry = _keras_entry(class_name)
    if entry is None or entry.sublayers is NONE:
        return True
    return entry.sublayers.runs_once


# -- shapes ---------------------------------------------------------------------------------


def _shape_rule(class_name: str) -> ShapeRule | None:
    entry = entry_of(class_name)
    if entry is None or entry.shapes is UNKNOWN:
        return None
    return entry.shapes


def output_shapes(
    class_name: str,
    config: Mapping[str, Any],
    input_shapes: Sequence[Shape | None],
    call_kwargs: Mapping[str, Any] | None = None,
) -> Shapes | None:
    """The shapes of all outputs of one call of a built-in Keras layer.

    Args:
        class_name: The layer's class, as the file names it (``"Conv2D"``,
            ``"TFOpLambda"`` …). It must name a Keras built-in layer: the caller decides
            that a layer is not a custom class or a Keras 3 op of the same name
            (:func:`is_builtin`).
        config: The layer's config as serialized (Keras 3 ``config.json`` or Keras 2
            ``model_config``), the ``"config"`` member of the layer entry.
        input_shapes: The shapes of every tensor the call receives, batch included:
            positional arguments first, then the tensors among ``call_kwargs`` in
            sorted key order (depth first), as ``tree.flatten((args, kwargs))``
            lists them. ``None`` for a shape that is not known. A Keras 2 op layer's
            constant first operand (``["_CONSTANT_VALUE", -1, 2.0, {…}]``, as in
            ``2.0 * x``) is a positional input with its value's shape (``()``).
        call_kwargs: The call's keyword arguments as the file stores them (Keras 3:
            a node's ``"kwargs"``; Keras 2: the dict that ends a node reference),
            tensors included as ``__keras_tensor__`` entries or ``[layer, node,
            tensor]`` references.

    Returns:
        One shape per output tensor, in Keras's flattened output order, or
        ``None`` when the class has no shape rule, a needed input shape is unknown,
        or the config is one the rule does not understand. Within a known result a
        single output may be ``None``, and a dimension Keras leaves unknown is
        ``None`` inside a shape.

    Example:
        >>> output_shapes("Conv2D", {"filters": 8, "kernel_size": [3, 3],
        ...               "strides": [2, 2], "padding": "same"}, [(None, 32, 32, 3)])
        ((None, 16, 16, 8),)
        >>> output_shapes("LSTM", {"units": 4, "return_state": True}, [(None, 7, 3)])
        ((None, 4), (None, 4), (None, 4))
        >>> output_shapes("MyLayer", {}, [(None, 3)]) is None
        True
    """
    rule = _shape_rule(class_name)
    if rule is None or not isinstance(config, Mapping):
        return None
    try:
        return rule(ShapeCall.of(config, input_shapes, call_kwargs, _shape_rule))
    except (Unsure, *NOT_UNDERSTOOD):
        return None


# -- MACs ----------------------------------------------------------------------------------


def call_macs(
    class_name: str,
    weights: HeldWeights,
    input_shapes: Sequence[Shape | None] | None,
    output_shapes: Sequence[Shape | None] | None,
) -> int | None:
    """Multiply-accumulates of one call, per example; None when the facts cannot tell.

    ``weights`` holds the layer's own variables and its sublayers' (an LSTM's cell,
    a MultiHeadAttention's projections): their cost belongs to this call.

    Example:
        >>> call_macs("Dense", HeldWeights("Dense", (Weight("kernel", (8, 4)),)),
        ...           [(None, 8)], [(None, 4)])
        32
    """
    entry = entry_of(class_name)
    if entry is None or entry.macs is UNKNOWN:
        return None
    if entry.macs == 0:
        return 0
    if input_shapes is None or output_shapes is None:
        return None
    call = MacCall(
        weights,
        [per_example(s) for s in input_shapes],
        [per_example(s) for s in output_shapes],
        call_macs,
    )
    try:
        return entry.macs(call)
    except Unsure:
        return None


def counts_zero_macs(class_name: str) -> bool:
    """Whether a class's calls count 0 MACs by the published convention (pooling,
    normalisation, activations, merges, reshapes, lookups: docs/cost.md)."""
    entry = entry_of(class_name)
    return entry is not None and entry.macs == 0


# -- variables -------------------------------------------------------------------------------


def _variables(class_name: str) -> Variables | None:
    entry = entry_of(class_name)
    return entry.variables if entry is not None and isinstance(entry.variables, Variables) else None


def variable_names(class_name: str, config: dict[str, Any], count: int) -> list[str]:
    """The Keras names of a layer's ``count`` own variables, in saving order.

    Known classes are named as Keras names them; others, or a count that does not
    fit, are numbered ``"0"``, ``"1"`` … (the file does not name them).

    Example:
        >>> variable_names("Dense", {"use_bias": True}, 2)
        ['kernel', 'bias']
        >>> variable_names("MyLayer", {}, 2)
        ['0', '1']
    """
    variables = _variables(class_name)
    names = variables.names(config) if variables is not None and variables.names else None
    if names is not None:
        required = [n for n in names if not n.startswith("?")]
        for candidate in ([n.lstrip("?") for n in names], required):
            if len(candidate) == count:
                return candidate
    return [str(i) for i in range(count)]


def hub_variable_names(class_name: str, config: dict[str, Any], count: int) -> list[str]:
    """The names of a graphless model's layer's ``count`` variables: as
    :func:`variable_names` names them, else by how many the class holds, else numbered."""
    names = variable_names(class_name, config, count)
    variables = _variables(class_name)
    known = variables.by_count.get(count) if variables is not None else None
    if known is not None and names == [str(i) for i in range(count)]:
        return list(known)
    return names


#: For a class whose variables the catalogue does not name (a custom layer, a sublayer of
#: unknown class): the names of BatchNormalization's and Normalization's statistics, the
#: one hint left.
_GUESSED_NON_TRAINABLE = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})


def trainable_flags(class_name: str, config: dict[str, Any], names: list[str]) -> list[bool]:
    """Whether each of a layer's variables (named as :func:`variable_names` names them) is
    created trainable, whatever its config's ``trainable`` says (the caller adds that).

    A file does not say which variables are trainable (Keras saves a layer's trainable
    variables, then the others, without a count). The class says which it creates
    non-trainable (BatchNormalization's moving statistics, preprocessing state,
    SpectralNormalization's ``vector_u``, keras_hub's index tables and fixed
    frequencies, named by count); so does a quantization to integers (all but the
    bias) and LoRA (``lora_rank``: the kernel or embeddings).

    Example:
        >>> trainable_flags("BatchNormalization", {}, ["gamma", "beta", "moving_mean"])
        [True, True, False]
    """
    variables = _variables(class_name)
    if variables is not None and variables.state:
        return [False] * len(names)
    if quantization_mode(config) in INTEGER_MODES:
        return [name == "bias" for name in names]
    if config.get("lora_rank") and variables is not None and variables.lora:
        return [name not in ("kernel", "embeddings") for name in names]  # LoRA trains factors
    named = variables is not None and (variables.names is not None or bool(variables.by_count))
    frozen = variables.non_trainable if variables is not None and named else _GUESSED_NON_TRAINABLE
    return [name not in frozen for name in names]


def frozen_in_init(model_class: str, group_key: str) -> bool:
    """Whether a keras_hub model of ``model_class`` makes the layer it saves under
    ``group_key`` non-trainable in its constructor, where no config says so."""
    return group_key in keras_hub.FROZEN_IN_INIT.get(model_class, frozenset())


def graphless_classes() -> tuple[str, ...]:
    """The classes a graphless model's layers list is matched against by snake-cased name:
    those whose variables the catalogue names, Keras's listed by keras_hub, keras_hub's."""
    named = [
        entry.name
        for entry in CATALOGUE.values()
        if isinstance(entry.variables, Variables)
        and entry.variables.names is not None
        and entry.package == "keras"
    ]
    return (*named, *keras_hub.LISTED_KERAS_CLASSES, *(e.name for e in keras_hub.CLASSES))


# -- sublayers --------------------------------------------------------------------------------


def _sublayers(class_name: str) -> Sublayers | None:
    entry = entry_of(class_name)
    return entry.sublayers if entry is not None and entry.sublayers is not NONE else None


def _cell_class(class_name: str) -> str | None:
    """The class of the cell a recurrent layer makes, where tabled (not a ConvLSTM's)."""
    sub = _sublayers(class_name)
    cell = sub.cell if sub is not None else None
    return None if cell is None or cell.class_name is UNKNOWN else cell.class_name


def cell_name(class_name: str) -> str | None:
    """The name a recurrent layer gives the cell it makes (``lstm_cell``)."""
    sub = _sublayers(class_name)
    return sub.cell.name if sub is not None and sub.cell is not None else None


def held_from_sublayer(class_name: str) -> frozenset[str]:
    """A wrapper's own variables that are its sublayer's (one object, which Keras saves
    under each layer): SpectralNormalization's ``kernel`` is its layer's kernel or
    embeddings."""
    sub = _sublayers(class_name)
    return sub.held if sub is not None else frozenset()


def sublayer_class(
    parent_class: str, parent_config: dict[str, Any], key: str, *, empty: bool = False
) -> tuple[str, dict[str, Any]]:
    """The class and config of a sublayer saved under attribute ``key``, where the file
    or the catalogue says it: the class a keras_hub block keeps under that attribute
    (unless the sublayer holds nothing, ``empty``: a weightless stand-in may sit
    there), the cell an RNN layer makes from its own config, else the layer the
    parent's config holds for that attribute (a Bidirectional's ``forward_layer`` is a
    copy of its ``layer``); ``?`` where none says.

    Example:
        >>> sublayer_class("MBConvBlock", {}, "bn1")
        ('BatchNormalization', {})
        >>> sublayer_class("HGNetV2Stage", {}, "downsample_layer", empty=True)
        ('?', {})
    """
    sub = _sublayers(parent_class)
    tabled = sub.attributes.get(key) if sub is not None else None
    if tabled is not None and not empty:
        return tabled, {}
    cell = _cell_class(parent_class)
    if key == "cell" and cell is not None:
        return cell, parent_config
    candidates = {"forward_layer": "layer", "backward_layer": "backward_layer", "layer": "layer"}
    config_key = candidates.get(key, key)
    held = parent_config.get(config_key)
    if key == "backward_layer" and not isinstance(held, dict):
        held = parent_config.get("layer")
    if isinstance(held, dict) and isinstance(held.get("class_name"), str):
        held_config = held.get("config")
        return held["class_name"], held_config if isinstance(held_config, dict) else {}
    return UNKNOWN_CLASS, {}


def sublayer_key(parent_class: str, name: str) -> str | None:
    """The attribute a sublayer named ``name`` is held under, where the file names no
    attribute (a Keras 2 weight name, a row's name): an RNN layer's ``cell``, a
    Bidirectional's ``forward_layer`` or ``backward_layer`` (Keras names them
    ``forward_…`` and ``backward_…``), a wrapper's ``layer``; None for any other class,
    a generic RNN (its cell is a layer its user named) and a ConvLSTM (its cell's class
    is not tabled) among them."""
    sub = _sublayers(parent_class)
    if sub is None:
        return None
    if _cell_class(parent_class) is not None:
        return "cell"
    if sub.copies:
        return "backward_layer" if name.startswith("backward_") else "forward_layer"
    return "layer" if sub.given == "layer" else None


def sublayer_entry(
    parent_class: str, parent_config: dict[str, Any], name: str, class_name: str
) -> dict[str, Any] | None:
    """A config entry for a sublayer the config describes (an RNN's cell, a wrapper's
    layer), with the attribute that holds it; None where the config does not say."""
    key = sublayer_key(parent_class, name)
    if key is None:
        return None
    sub_class, sub_config = sublayer_class(parent_class, parent_config, key)
    if sub_class == UNKNOWN_CLASS or class_name not in (sub_class, UNKNOWN_CLASS):
        return None
    return {"class_name": sub_class, "config": {**sub_config, "held_as": key}}


def given_sublayers(
    class_name: str, config: dict[str, Any]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(attribute, name, class, config)`` of the layer a Keras wrapper was given, where its
    config says (a generic RNN's cell, a TimeDistributed's layer); it runs once per call.
    The layer object may sit elsewhere too (Bidirectional makes copies: none given)."""
    sub = _sublayers(class_name)
    key = sub.given if sub is not None else None
    held = config.get(key) if key is not None else None
    if key is None or not isinstance(held, dict):
        return []
    inner = held.get("config")
    if not isinstance(held.get("class_name"), str) or not isinstance(inner, dict):
        return []
    name = inner.get("name")
    return [(key, name, held["class_name"], inner)] if isinstance(name, str) else []


def holds_only_given(class_name: str) -> bool:
    """Whether a Keras class holds no variable of its own, only the layer object it was
    given (a generic RNN's cell, a TimeDistributed's layer): a weight a file lists
    directly under such a layer is the given layer's.

    Example:
        >>> holds_only_given("TimeDistributed"), holds_only_given("SpectralNormalization")
        (True, False)
    """
    entry = _keras_entry(class_name)
    sub = _sublayers(class_name)
    return entry is not None and entry.variables is NONE and sub is not None and bool(sub.given)


def holds_variables(class_name: str, config: dict[str, Any]) -> bool:
    """Whether a built layer of Keras's class ``class_name`` holds variables: its own (those
    the catalogue names for every config like ``config``), its cell's, or those of the
    layer it was given (:func:`holds_only_given`). False where the catalogue cannot tell.

    Example:
        >>> holds_variables("Dense", {}), holds_variables("Flatten", {})
        (True, False)
        >>> holds_variables("TimeDistributed", {"layer": {"class_name": "Dense",
        ...     "config": {"name": "d"}}})
        True
    """
    variables = _variables(class_name)
    if variables is not None and variables.names is not None:
        return any(not n.startswith("?") for n in variables.names(config) or ())
    if _cell_class(class_name) is not None:
        return True
    given = given_sublayers(class_name, config) if holds_only_given(class_name) else []
    return bool(given) and holds_variables(given[0][2], given[0][3])

"""What a layer's class tells the static reader: its variables' names, which are
not trainable, and the classes of the sublayers it holds.

A file does not say which variables are trainable (Keras saves a layer's
trainable variables, then the others, and tf_keras likewise, without a count);
a layer frozen by its user says ``"trainable": false`` in its config, and a
built-in class creates some variables non-trainable whatever its config says:
BatchNormalization's moving statistics, the state of preprocessing layers
(Normalization, Discretization, the lookups), SpectralNormalization's
``vector_u``, every variable but the bias of a layer quantized to integers, and the
kernel of a layer with LoRA (``lora_rank``).
:func:`trainable_flags` holds those rules, tested against Keras and tf_keras.
"""

from __future__ import annotations

from typing import Any

from weighttie.shape_rules import ALIASES

#: Classes whose config lists their layers (a functional graph or a layer stack).
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: The class shown for a sublayer the file does not name the class of.
UNKNOWN_CLASS = "?"

#: Statistics a class of Keras's creates non-trainable, by variable name (Keras 3 and tf_keras).
_BATCH_NORM_STATISTICS = frozenset(
    {"moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev"}
)
_NON_TRAINABLE_BY_CLASS = {
    "BatchNormalization": _BATCH_NORM_STATISTICS,
    "SyncBatchNormalization": _BATCH_NORM_STATISTICS,  # tf_keras
    "SpectralNormalization": frozenset({"vector_u"}),
}
#: Preprocessing classes whose every variable is state computed by ``adapt`` (Normalization's
#: mean, variance and count; tf_keras's Discretization summary and lookups' idf weights).
_STATE_ONLY = frozenset(
    {"Normalization", "Discretization", "StringLookup", "IntegerLookup", "TextVectorization"}
)
#: Quantization modes whose layers train only their bias (the rest is integer state).
_INTEGER_MODES = frozenset({"int8", "int4", "gptq", "awq"})
#: Classes that take ``lora_rank``: their kernel (or embeddings) is frozen under LoRA.
_LORA = frozenset(
    {"Dense", "EinsumDense", "Embedding", "ReversibleEmbedding", "Conv1D", "Conv2D", "Conv3D"}
)
#: For a class the tables do not know (a custom layer, a sublayer of unknown class): the
#: names of BatchNormalization's and Normalization's statistics, the one hint left.
_NON_TRAINABLE_NAMES = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
_RNN_CELLS = {"LSTM": "LSTMCell", "GRU": "GRUCell", "SimpleRNN": "SimpleRNNCell"}


def _kernel_bias(config: dict[str, Any]) -> list[str]:
    return ["kernel"] + (["bias"] if config.get("use_bias", True) else [])


def _norm(config: dict[str, Any]) -> list[str]:
    names = []
    if config.get("scale", True):
        names.append("gamma")
    if config.get("center", True):
        names.append("beta")
    return names


def _quantization_mode(config: dict[str, Any]) -> str | None:
    """A quantized layer's mode (``int8``, ``int4``, ``float8`` …) from its dtype policy."""
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict):
        mode = dtype["config"].get("mode")
        return mode.split("/", 1)[0] if isinstance(mode, str) else None
    if isinstance(dtype, str) and "_from_" in dtype:  # "int8_from_float32"
        return dtype.split("_from_", 1)[0].split("/", 1)[0]
    return None


#: The variables quantization adds after a layer's own (``?``: present only in some
#: sub-channel setups), as ``variable_serialization_spec`` orders them in Keras 3.15.
_QUANTIZED_KERNEL = {
    "int8": ["kernel_scale"],
    "int4": ["kernel_scale", "?kernel_zero", "?g_idx"],
    "float8": [
        "inputs_scale",
        "inputs_amax_history",
        "kernel_scale",
        "kernel_amax_history",
        "outputs_grad_scale",
        "outputs_grad_amax_history",
    ],
}
_QUANTIZED_EMBEDDINGS = {
    "int8": ["embeddings_scale"],
    "int4": ["embeddings_scale", "?embeddings_zero", "?g_idx"],
}
_QUANTIZED_REVERSE = {
    None: ["reverse_embeddings"],
    "int8": ["reverse_embeddings", "reverse_embeddings_scale"],
    "int4": ["reverse_embeddings", "reverse_embeddings_scale", "?reverse_embeddings_zero"],
}


def _dense(config: dict[str, Any], has_bias: bool) -> list[str] | None:
    mode = _quantization_mode(config)
    if mode is not None and mode not in _QUANTIZED_KERNEL:
        return None  # gptq, awq: their own order, not tabled here
    return ["kernel"] + (["bias"] if has_bias else []) + _QUANTIZED_KERNEL.get(mode or "", [])


def _embedding(config: dict[str, Any]) -> list[str] | None:
    mode = _quantization_mode(config)
    if mode is not None and mode not in _QUANTIZED_EMBEDDINGS:
        return None
    return ["embeddings", *_QUANTIZED_EMBEDDINGS.get(mode or "", [])]


def _reversible_embedding(config: dict[str, Any]) -> list[str] | None:
    names = _embedding(config)
    if names is None or config.get("tie_weights", True):
        return names
    return names + _QUANTIZED_REVERSE[_quantization_mode(config)]


def _wrapped_class(config: dict[str, Any]) -> Any:
    layer = config.get("layer")
    return layer.get("class_name") if isinstance(layer, dict) else None


def _batch_norm(config: dict[str, Any]) -> list[str]:
    names = [*_norm(config), "moving_mean", "moving_variance"]
    renorm = ["moving_stddev", "renorm_mean", "renorm_stddev"] if config.get("renorm") else []
    return names + renorm


_NAMES: dict[str, Any] = {
    **{
        cls: _kernel_bias
        for cls in (
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "Conv1DTranspose",
            "Conv2DTranspose",
            "Conv3DTranspose",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
            "LSTMCell",
            "GRUCell",
            "SimpleRNNCell",
        )
    },
    "SeparableConv1D": lambda c: (
        ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if c.get("use_bias", True) else [])
    ),
    "SeparableConv2D": lambda c: (
        ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if c.get("use_bias", True) else [])
    ),
    "Dense": lambda c: _dense(c, c.get("use_bias", True)),
    "EinsumDense": lambda c: _dense(c, bool(c.get("bias_axes"))),
    "Embedding": _embedding,
    "ReversibleEmbedding": _reversible_embedding,
    "BatchNormalization": _batch_norm,
    "SyncBatchNormalization": _batch_norm,
    "Normalization": lambda c: ["mean", "variance", "count"],
    "SpectralNormalization": lambda c: [
        "embeddings" if _wrapped_class(c) == "Embedding" else "kernel",
        "vector_u",
    ],
    "LayerNormalization": _norm,
    "GroupNormalization": _norm,
    "PReLU": lambda c: ["alpha"],
}
_RECURRENT = ("LSTMCell", "GRUCell", "SimpleRNNCell")

#: A wrapper's own variable that is its sublayer's variable (one object, which Keras saves
#: under each layer): SpectralNormalization's ``kernel`` is its layer's kernel or embeddings.
HELD_FROM_SUBLAYER: dict[str, frozenset[str]] = {
    "SpectralNormalization": frozenset({"kernel", "embeddings"}),
}


def variable_names(class_name: str, config: dict[str, Any], count: int) -> list[str]:
    """The Keras names of a layer's ``count`` own variables, in saving order.

    Known classes are named as Keras names them; others, or a count that does not
    fit, are numbered ``"0"``, ``"1"`` … (the file does not name them).
    """
    class_name = ALIASES.get(class_name, class_name)
    builder = _NAMES.get(class_name)
    names: list[str] | None = builder(config) if builder is not None else None
    if names is not None:
        if class_name in _RECURRENT:
            names = ["kernel", "recurrent_kernel", *names[1:]]
        required = [n for n in names if not n.startswith("?")]
        for candidate in ([n.lstrip("?") for n in names], required):
            if len(candidate) == count:
                return candidate
    return [str(i) for i in range(count)]


def trainable_flags(class_name: str, config: dict[str, Any], names: list[str]) -> list[bool]:
    """Whether each of a layer's variables (named as :func:`variable_names` names them) is
    created trainable, whatever its config's ``trainable`` says (the caller adds that).

    Example:
        >>> trainable_flags("BatchNormalization", {}, ["gamma", "beta", "moving_mean"])
        [True, True, False]
    """
    class_name = ALIASES.get(class_name, class_name)
    if class_name in _STATE_ONLY:
        return [False] * len(names)
    if _quantization_mode(config) in _INTEGER_MODES:
        return [name == "bias" for name in names]
    if config.get("lora_rank") and class_name in _LORA:  # LoRA trains its factors instead
        return [name not in ("kernel", "embeddings") for name in names]
    known = class_name in _NAMES or class_name in _NON_TRAINABLE_BY_CLASS
    frozen = _NON_TRAINABLE_BY_CLASS.get(class_name, frozenset() if known else _NON_TRAINABLE_NAMES)
    return [name not in frozen for name in names]


def _sublayer_class(
    parent_class: str, parent_config: dict[str, Any], key: str
) -> tuple[str, dict[str, Any]]:
    """The class of a sublayer saved under attribute ``key``, where the file says it."""
    if key == "cell" and parent_class in _RNN_CELLS:
        return _RNN_CELLS[parent_class], parent_config
    candidates = {"forward_layer": "layer", "backward_layer": "backward_layer", "layer": "layer"}
    config_key = candidates.get(key, key)
    sub = parent_config.get(config_key)
    if key == "backward_layer" and not isinstance(sub, dict):
        sub = parent_config.get("layer")
    if isinstance(sub, dict) and isinstance(sub.get("class_name"), str):
        sub_config = sub.get("config")
        return sub["class_name"], sub_config if isinstance(sub_config, dict) else {}
    return UNKNOWN_CLASS, {}


def _sublayer_key(parent_class: str, name: str) -> str | None:
    """The attribute a sublayer named ``name`` is held under, where the file names no
    attribute (a Keras 2 weight name, a row's name): an RNN's ``cell``, a Bidirectional's
    ``forward_layer`` or ``backward_layer`` (Keras names them ``forward_…`` and
    ``backward_…``), a wrapper's ``layer``."""
    if parent_class in _RNN_CELLS:
        return "cell"
    if parent_class == "Bidirectional":
        return "backward_layer" if name.startswith("backward_") else "forward_layer"
    if parent_class in ("TimeDistributed", "SpectralNormalization"):
        return "layer"
    return None


def sublayer_entry(
    parent_class: str, parent_config: dict[str, Any], name: str, class_name: str
) -> dict[str, Any] | None:
    """A config entry for a sublayer the config describes (an RNN's cell, a wrapper's
    layer), with the attribute that holds it; None where the config does not say."""
    key = _sublayer_key(parent_class, name)
    if key is None:
        return None
    sub_class, sub_config = _sublayer_class(parent_class, parent_config, key)
    if sub_class == UNKNOWN_CLASS or class_name not in (sub_class, UNKNOWN_CLASS):
        return None
    return {"class_name": sub_class, "config": {**sub_config, "held_as": key}}


#: Keras classes whose config holds a layer they call, and the attribute that holds it: a
#: layer object the user gave them, which may sit elsewhere too (Bidirectional makes copies).
_GIVEN_SUBLAYERS = {"RNN": "cell", "TimeDistributed": "layer", "SpectralNormalization": "layer"}


def given_sublayers(
    class_name: str, config: dict[str, Any]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(attribute, name, class, config)`` of the layer a Keras wrapper was given, where its
    config says (a generic RNN's cell, a TimeDistributed's layer); it runs once per call."""
    key = _GIVEN_SUBLAYERS.get(class_name)
    sub = config.get("cell" if key == "cell" else "layer") if key is not None else None
    if key is None or not isinstance(sub, dict):
        return []
    inner = sub.get("config")
    if not isinstance(sub.get("class_name"), str) or not isinstance(inner, dict):
        return []
    name = inner.get("name")
    return [(key, name, sub["class_name"], inner)] if isinstance(name, str) else []

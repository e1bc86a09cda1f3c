"""What a layer's class tells the static reader: its variables' names, which are
not trainable, and the classes of the sublayers it holds."""

from __future__ import annotations

from typing import Any

#: Classes whose config lists their layers (a functional graph or a layer stack).
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: The class shown for a sublayer the file does not name the class of.
UNKNOWN_CLASS = "?"

_NON_TRAINABLE = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
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


_NAMES: dict[str, Any] = {
    **{
        cls: _kernel_bias
        for cls in (
            "Dense",
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
    "EinsumDense": lambda c: ["kernel"] + (["bias"] if c.get("bias_axes") else []),
    "Embedding": lambda c: ["embeddings"],
    "BatchNormalization": lambda c: [*_norm(c), "moving_mean", "moving_variance"],
    "LayerNormalization": _norm,
    "GroupNormalization": _norm,
    "PReLU": lambda c: ["alpha"],
}
_RECURRENT = ("LSTMCell", "GRUCell", "SimpleRNNCell")


def variable_names(class_name: str, config: dict[str, Any], count: int) -> list[str]:
    """The Keras names of a layer's ``count`` own variables, in saving order.

    Known classes are named as Keras names them; others, or a count that does not
    fit, are numbered ``"0"``, ``"1"`` … (the file does not name them).
    """
    builder = _NAMES.get(class_name)
    if builder is not None:
        names: list[str] = builder(config)
        if class_name in _RECURRENT:
            names = ["kernel", "recurrent_kernel", *names[1:]]
        if len(names) == count:
            return names
    return [str(i) for i in range(count)]


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

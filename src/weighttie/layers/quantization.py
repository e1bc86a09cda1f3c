"""What quantization does to a layer's variables: which mode its config says, the
variables each mode adds after the layer's own, and which modes leave only the bias
trainable (the rest is integer state)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "INTEGER_MODES",
    "QUANTIZED_EMBEDDINGS",
    "QUANTIZED_KERNEL",
    "QUANTIZED_REVERSE",
    "quantization_mode",
]

#: Quantization modes whose layers train only their bias (the rest is integer state).
INTEGER_MODES = frozenset({"int8", "int4", "gptq", "awq"})

#: The variables quantization adds after a layer's own (``?``: present only in some
#: sub-channel setups), as ``variable_serialization_spec`` orders them in Keras 3.15.
QUANTIZED_KERNEL = {
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
QUANTIZED_EMBEDDINGS = {
    "int8": ["embeddings_scale"],
    "int4": ["embeddings_scale", "?embeddings_zero", "?g_idx"],
}
QUANTIZED_REVERSE = {
    None: ["reverse_embeddings"],
    "int8": ["reverse_embeddings", "reverse_embeddings_scale"],
    "int4": ["reverse_embeddings", "reverse_embeddings_scale", "?reverse_embeddings_zero"],
}


def quantization_mode(config: dict[str, Any]) -> str | None:
    """A quantized layer's mode (``int8``, ``int4``, ``float8`` …) from its dtype policy.

    Example:
        >>> quantization_mode({"dtype": "int8_from_float32"})
        'int8'
        >>> quantization_mode({"dtype": "float32"}) is None
        True
    """
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict):
        mode = dtype["config"].get("mode")
        return mode.split("/", 1)[0] if isinstance(mode, str) else None
    if isinstance(dtype, str) and "_from_" in dtype:  # "int8_from_float32"
        return dtype.split("_from_", 1)[0].split("/", 1)[0]
    return None

"""How a shape rule reads one call: the call, config values, shape arithmetic.

The families' shape rules (``Conv2D``'s in :mod:`~weighttie.layers.conv` …) are
built from these pieces, the way Keras computes output shapes, in pure Python (no
Keras, no backend, no numpy). Every reader raises :class:`Unsure` on a value of a
form Keras would reject or this module does not understand: the rule's answer is
then None, never a plausible shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = [
    "CONV_PADDING",
    "MAX_WRAPPER_DEPTH",
    "NOT_UNDERSTOOD",
    "Config",
    "ShapeCall",
    "ShapeRule",
    "Shapes",
    "apply_inner",
    "axes_of",
    "axis_of",
    "bool_of",
    "broadcast",
    "choice_of",
    "class_and_config",
    "clean_shape",
    "count_tensors",
    "int_of",
    "ints_of",
    "is_channels_first",
    "is_tensor",
    "join_channels",
    "known_dim",
    "merge_dims",
    "padding_of",
    "pairs_of",
    "reshape",
    "same_shape",
    "signed_int_of",
    "single",
    "split_channels",
    "value_of",
    "with_rank",
    "wrapped_layer",
]

Config = Mapping[str, Any]
#: The shapes of one call's outputs (an entry is None when not known).
Shapes = tuple[Shape | None, ...]

#: How deep wrappers may nest (``Bidirectional`` of ``TimeDistributed`` …).
MAX_WRAPPER_DEPTH = 8

#: What a config value of a form no rule expects may raise on its way: not understood.
NOT_UNDERSTOOD = (
    TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, RecursionError
)  # fmt: skip


# -- the call a rule sees -------------------------------------------------------


@dataclass(frozen=True)
class ShapeCall:
    """One call: the layer's config, its tensors' shapes and its keyword arguments.

    ``rule_of`` gives the shape rule of another class (a wrapper's inner layer), or
    None where the catalogue has none.
    """

    config: Config
    shapes: tuple[Shape | None, ...]
    kwargs: Mapping[str, Any]
    rule_of: Callable[[str], Callable[[ShapeCall], Shapes] | None]
    depth: int = 0

    @classmethod
    def of(
        cls,
        config: Config,
        input_shapes: Sequence[Shape | None],
        call_kwargs: Mapping[str, Any] | None,
        rule_of: Callable[[str], Callable[[ShapeCall], Shapes] | None],
    ) -> ShapeCall:
        if isinstance(input_shapes, str | bytes) or not isinstance(input_shapes, Sequence):
            raise Unsure
        kwargs = call_kwargs if isinstance(call_kwargs, Mapping) else {}
        return cls(config, tuple(clean_shape(s) for s in input_shapes), kwargs, rule_of)

    def inner(self, config: Config, shapes: tuple[Shape | None, ...]) -> ShapeCall:
        """The call of a wrapped layer (a wrapper's call kwargs are not its inner layer's)."""
        if self.depth >= MAX_WRAPPER_DEPTH:
            raise Unsure
        return ShapeCall(config, shapes, {}, self.rule_of, self.depth + 1)

    @property
    def positional(self) -> tuple[Shape | None, ...]:
        """The shapes of the tensors passed positionally (those before the kwargs' tensors)."""
        count = len(self.shapes) - count_tensors(self.kwargs)
        if count < 0:
            raise Unsure
        return self.shapes[:count]

    def kwarg_shapes(self) -> dict[str, Shape | None]:
        """The shape of each keyword argument that is one tensor, by name."""
        offset = len(self.positional)
        found: dict[str, Shape | None] = {}
        for key in sorted(self.kwargs, key=str):
            count = count_tensors(self.kwargs[key])
            if count == 1 and is_tensor(self.kwargs[key]):
                found[str(key)] = self.shapes[offset]
            offset += count
        return found

    @property
    def x(self) -> Shape:
        """The known shape of the main input: the first positional tensor, or the
        ``inputs`` (``sequences`` for recurrent layers) keyword argument."""
        positional = self.positional
        if positional:
            shape = positional[0]
        else:
            named = self.kwarg_shapes()
            shape = named.get("inputs", named.get("sequences"))
        if shape is None:
            raise Unsure
        return shape

    @staticmethod
    def all_known(shapes: Sequence[Shape | None]) -> list[Shape]:
        """The shapes, every one known (at least one)."""
        known = [s for s in shapes if s is not None]
        if not known or len(known) != len(shapes):
            raise Unsure
        return known

    def flag(self, key: str) -> bool:
        """A boolean call argument (absent: False)."""
        return bool_of(self.kwargs.get(key, False))


#: An output-shape rule: one call's output shapes.
ShapeRule = Callable[[ShapeCall], Shapes]


def clean_shape(value: Any) -> Shape | None:
    """A shape as a file states it (a list of sizes and nulls), or None if it is not one."""
    if not isinstance(value, list | tuple):
        return None
    dims: list[int | None] = []
    for d in value:
        if d is None:
            dims.append(None)
        elif isinstance(d, int) and not isinstance(d, bool) and d >= 0:
            dims.append(d)
        else:
            return None
    return tuple(dims)


def is_tensor(value: Any) -> bool:
    """A tensor as a call's kwargs store it (Keras 3 entry or Keras 2 reference)."""
    if isinstance(value, Mapping):
        return value.get("class_name") == "__keras_tensor__"
    return (
        isinstance(value, list | tuple)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3])
        and (len(value) == 3 or isinstance(value[3], Mapping))
    )


def count_tensors(value: Any, depth: int = 0) -> int:
    """How many tensors a call argument holds (``tree.flatten`` counts them)."""
    if depth > 64:
        raise Unsure
    if is_tensor(value):
        return 1
    if isinstance(value, Mapping):
        return sum(count_tensors(value[k], depth + 1) for k in value)
    if isinstance(value, list | tuple):
        return sum(count_tensors(v, depth + 1) for v in value)
    return 0


# -- reading config values ------------------------------------------------------

_MISSING = object()


def value_of(config: Config, key: str, default: Any = _MISSING) -> Any:
    """``config[key]``; a missing key is the Keras default, or not understood without one."""
    if key in config:
        return config[key]
    if default is _MISSING:
        raise Unsure
    return default


def int_of(value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Unsure
    return value


def signed_int_of(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unsure
    return value


def bool_of(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Unsure
    return value


def ints_of(value: Any, count: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a list of ``count`` ints (Keras's ``standardize_tuple``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (int_of(value, minimum),) * count
    if not isinstance(value, list | tuple) or len(value) != count:
        raise Unsure
    return tuple(int_of(v, minimum) for v in value)


def pairs_of(value: Any, count: int) -> tuple[tuple[int, int], ...]:
    """Cropping or padding amounts: an int, ``count`` ints, or ``count`` pairs."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ((int_of(value), int_of(value)),) * count
    if not isinstance(value, list | tuple) or len(value) != count:
        raise Unsure
    pairs = []
    for item in value:
        first, second = ints_of(item, 2, minimum=0)
        pairs.append((first, second))
    return tuple(pairs)


def is_channels_first(config: Config) -> bool:
    """The config's data format; absent or null is Keras's default, channels_last."""
    value = config.get("data_format")
    if value is None or value == "channels_last":
        return False
    if value == "channels_first":
        return True
    raise Unsure


#: The paddings of convolutions and pooling (Conv1D adds ``causal``).
CONV_PADDING = frozenset({"valid", "same"})


def padding_of(config: Config, allowed: frozenset[str]) -> str:
    value = config.get("padding", "valid")
    if not isinstance(value, str) or value.lower() not in allowed:
        raise Unsure  # explicit padding lists are not understood
    return value.lower()


def choice_of(config: Config, key: str, allowed: Iterable[Any], default: Any) -> Any:
    value = config.get(key, default)
    if value not in allowed:
        raise Unsure
    return value


def axis_of(value: Any, rank: int) -> int:
    """An axis in ``[-rank, rank)`` as a non-negative index."""
    axis = signed_int_of(value)
    if not -rank <= axis < rank:
        raise Unsure
    return axis % rank


def axes_of(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        return tuple(axis_of(v, rank) for v in value)
    return (axis_of(value, rank),)


def with_rank(shape: Shape, *ranks: int) -> Shape:
    if len(shape) not in ranks:
        raise Unsure
    return shape


def known_dim(dim: int | None) -> int:
    if dim is None:
        raise Unsure
    return dim


# -- shape arithmetic -------------------------------------------------------------


def split_channels(shape: Shape, rank: int, channels_first: bool) -> tuple[Shape, int | None]:
    """The spatial dimensions and the channel dimension of a ``rank``-D image batch."""
    with_rank(shape, rank + 2)
    if channels_first:
        return shape[2:], shape[1]
    return shape[1:-1], shape[-1]


def join_channels(
    batch: int | None, spatial: Sequence[int | None], channels: int | None, channels_first: bool
) -> Shape:
    if channels_first:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def broadcast(first: Shape, second: Shape) -> Shape:
    """NumPy/TensorFlow broadcasting (``broadcast_shapes``)."""
    rank = max(len(first), len(second))
    a = (1,) * (rank - len(first)) + first
    b = (1,) * (rank - len(second)) + second
    dims: list[int | None] = []
    for i, j in zip(a, b, strict=True):
        if i == 1:
            dims.append(j)
        elif j == 1:
            dims.append(i)
        elif i is None:
            dims.append(j)
        elif j is None or i == j:
            dims.append(i)
        else:
            raise Unsure
    return tuple(dims)


def merge_dims(first: int | None, second: int | None) -> int | None:
    """Two views of one dimension: the known one, or not understood if they differ."""
    if first is None:
        return second
    if second is not None and second != first:
        raise Unsure
    return first


def reshape(source: Shape, target: Sequence[int | None]) -> Shape:
    """``compute_reshape_output_shape``: resolve one ``-1`` when every size is known."""
    if sum(1 for d in target if d == -1) > 1 or any(d is not None and d < -1 for d in target):
        raise Unsure
    if None in source or None in target:
        return tuple(None if d == -1 else d for d in target)
    size = math.prod(d for d in source if d is not None)
    known = math.prod(d for d in target if d is not None and d != -1)
    if -1 not in target:
        if known != size:
            raise Unsure
        return tuple(target)
    if known == 0 or size % known:
        raise Unsure
    return tuple(size // known if d == -1 else d for d in target)


# -- rule kinds ---------------------------------------------------------------------


def single(compute: Callable[[Config, Shape], Shape]) -> ShapeRule:
    """A rule for a layer with one input and one output."""

    def rule(call: ShapeCall) -> Shapes:
        return (compute(call.config, call.x),)

    return rule


def same_shape(call: ShapeCall) -> Shapes:
    """The output has the input's shape (activations, dropout, most augmentations)."""
    return (call.x,)


# -- wrappers ---------------------------------------------------------------------------


def class_and_config(entry: Any) -> tuple[str, Config]:
    """The class and config of a serialized layer (``{"class_name", "config"}``)."""
    if not isinstance(entry, Mapping):
        raise Unsure
    class_name, config = entry.get("class_name"), entry.get("config")
    if not isinstance(class_name, str) or not isinstance(config, Mapping):
        raise Unsure
    return class_name, config


def wrapped_layer(call: ShapeCall, key: str = "layer") -> tuple[str, Config]:
    """The class and config of the layer a wrapper holds under ``key``, where it is
    Keras's own (a custom class may share a built-in's name)."""
    entry = value_of(call.config, key)
    class_name, config = class_and_config(entry)
    module, registered = entry.get("module"), entry.get("registered_name")
    if module is not None and not (isinstance(module, str) and module.startswith("keras")):
        raise Unsure  # a custom class that happens to share a built-in's name
    if registered is not None and registered != class_name:
        raise Unsure
    return class_name, config


def apply_inner(
    call: ShapeCall, class_name: str, config: Config, shapes: tuple[Shape | None, ...]
) -> Shapes:
    """The shapes of a wrapped layer's call on ``shapes``, by its class's rule."""
    rule = call.rule_of(class_name)
    if rule is None:
        raise Unsure
    return rule(call.inner(config, shapes))

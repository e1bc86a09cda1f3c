"""How a MAC rule reads one call: the variables the layer holds and the call's shapes.

Both front ends state the same facts: a layer's class name, the variables it holds
(its own and its sublayers', with names and shapes) and one call's input and output
shapes. No config is read, so the static report of a file gives the MACs
:func:`weighttie.analyze` gives. The conventions (docs/cost.md):

* one MAC is one multiply and one add of a matrix product or a convolution;
  MACs are counted per example (the batch dimension is left out) and per call;
* bias additions, activations and the element-wise gate arithmetic of recurrent
  cells are not counted; a convolution counts every kernel tap at every output
  position, padding included.

A rule that cannot tell from these facts raises
:class:`~weighttie.layers.layer_class.Unsure`: the call's MACs are unknown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = [
    "HeldWeights",
    "MacCall",
    "MacRule",
    "PerExample",
    "Weight",
    "bare_name",
    "known_shape",
    "per_example",
    "positions",
    "roles",
]


@dataclass(frozen=True)
class Weight:
    """A variable as the rules see it: its own name (``kernel``) and shape.

    A file that does not name its variables gives their position (``0``, ``1`` …)
    in Keras's saving order instead; the rules accept either.
    """

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class HeldWeights:
    """The variables a layer holds itself (``own``) and through its sublayers, by name."""

    class_name: str
    own: tuple[Weight, ...] = ()
    sublayers: Mapping[str, HeldWeights] = field(default_factory=dict)

    def holders(self) -> Iterator[HeldWeights]:
        """This layer and every sublayer below it that holds a variable, in order."""
        if self.own:
            yield self
        for sub in self.sublayers.values():
            yield from sub.holders()


#: Per-example shapes of a call's inputs or outputs (None: not known).
PerExample = list[tuple[int, ...] | None]


@dataclass(frozen=True)
class MacCall:
    """One call as a MAC rule sees it. ``macs_of`` costs another class's call by its
    rule (the layer a ``TimeDistributed`` wraps), None where unknown."""

    weights: HeldWeights
    inputs: PerExample
    outputs: PerExample
    macs_of: Callable[
        [str, HeldWeights, Sequence[Shape | None], Sequence[Shape | None]], int | None
    ]


#: A MAC rule: one call's multiply-accumulates per example.
MacRule = Callable[[MacCall], int]


def per_example(shape: Shape | None) -> tuple[int, ...] | None:
    """The shape without its batch dimension, or None when any other dimension is unknown."""
    if shape is None or not shape:
        return None
    rest = shape[1:]
    if any(d is None for d in rest):
        return None
    return tuple(d for d in rest if d is not None)


def known_shape(shapes: PerExample, index: int) -> tuple[int, ...]:
    """The ``index``-th shape, known."""
    if index >= len(shapes):
        raise Unsure
    shape = shapes[index]
    if shape is None:
        raise Unsure
    return shape


def bare_name(name: str) -> str:
    """``kernel`` from ``dense/kernel:0`` (a Keras 2 file's full name) or ``kernel``."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def roles(
    weights: Sequence[Weight], order: Sequence[str], aliases: Mapping[str, str] | None = None
) -> dict[str, Weight]:
    """Each weight's role, by name or, where the file gives positions, by saving order.

    ``order`` lists the roles in Keras's saving order; the last may be missing
    (``use_bias=False``). Any other variable (LoRA, quantization scales) makes the
    cost unknown.
    """
    aliases = aliases or {}
    names = [aliases.get(bare_name(w.name), bare_name(w.name)) for w in weights]
    if all(n in order for n in names) and len(set(names)) == len(names):
        found = dict(zip(names, weights, strict=True))
    elif all(n.isdigit() for n in names) and len(weights) <= len(order):
        by_position = sorted(zip(names, weights, strict=True), key=lambda item: int(item[0]))
        found = {role: w for role, (_, w) in zip(order, by_position, strict=False)}
    else:
        raise Unsure
    if order[0] not in found:
        raise Unsure
    return found


def positions(shape: tuple[int, ...], channels: int) -> int:
    """Positions of a channels-first or channels-last shape with ``channels`` channels.

    ``prod(shape) / channels`` is the same whichever axis holds the channels, so
    the data format (not among the facts) need not be known.
    """
    if channels not in (shape[0], shape[-1]):
        raise Unsure
    return math.prod(shape) // channels

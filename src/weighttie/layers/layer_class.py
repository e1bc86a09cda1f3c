"""The record of one layer class in the catalogue: what the class means, fact by fact.

An entry states every fact the rest of weighttie asks of a class, or says it is
not known (:data:`UNKNOWN`); a class holding no variables or no sublayers says
:data:`NONE`. No fact has a silent default, so a class added to the catalogue
cannot get shapes and quietly lack MACs.

The rules an entry carries are pure functions of what a file or a live model
states: a shape rule reads one call (:class:`~weighttie.layers.shapes.ShapeCall`:
config, input shapes, call kwargs), a MAC rule one call's held variables and
shapes (:class:`~weighttie.layers.macs.MacCall`), a names rule the layer's
config. A rule that cannot tell raises :class:`~weighttie.layers.unsure.Unsure`;
the question's answer is then None ("unknown"), never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

from weighttie.layers.macs import MacRule
from weighttie.layers.shapes import ShapeRule

__all__ = [
    "CALL_DECIDES",
    "NONE",
    "RUNS_EACH_ONCE",
    "UNKNOWN",
    "Cell",
    "Fact",
    "LayerClass",
    "NamesRule",
    "Sublayers",
    "Variables",
    "weightless",
]


class Fact(Enum):
    """A fact an entry states without a rule."""

    UNKNOWN = "unknown"  # not known: the question's answer is None / numbered / "?"
    NONE = "none"  # the class holds none (variables, sublayers)


UNKNOWN: Final = Fact.UNKNOWN
NONE: Final = Fact.NONE
Unknown: TypeAlias = Literal[Fact.UNKNOWN]
Nothing: TypeAlias = Literal[Fact.NONE]

#: The names of a layer's own variables in saving order, from its config (``?name``:
#: present in some configs only); None where the config is one the rule does not know.
NamesRule = Callable[[dict[str, Any]], list[str] | None]


@dataclass(frozen=True)
class Variables:
    """A class's own variables: their names and which Keras creates non-trainable.

    Attributes:
        names: The names in saving order, from the config; None where not tabled
            (the file's numbering stands: ``0``, ``1`` …).
        non_trainable: Names Keras creates non-trainable whatever the config says
            (BatchNormalization's moving statistics).
        state: Every variable is state (``adapt``'s statistics, lookup tables):
            none is trainable.
        lora: The class takes ``lora_rank``: its kernel (or embeddings) is then frozen.
        by_count: Names by how many variables the layer holds, for a file that gives
            no config (a graphless keras_hub model's weights), in saving order: Keras
            saves those created trainable, then the others. A name the count cannot
            tell is the file's number (``"1"``: one of two options' variables).
    """

    names: NamesRule | None
    non_trainable: frozenset[str] = frozenset()
    state: bool = False
    lora: bool = False
    by_count: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """The cell a recurrent layer makes from its own config: its class (UNKNOWN where
    not tabled) and the name Keras gives it (``lstm_cell``)."""

    class_name: str | Unknown
    name: str


@dataclass(frozen=True)
class Sublayers:
    """The layers a class holds, and how its call runs them.

    Attributes:
        runs_once: Its call runs each sublayer once (Keras's own layers do); False
            where its call is code a user gave it (``Lambda``) or its own
            (keras_hub's blocks), which decides.
        cell: The cell it makes from its own config (an LSTM's ``LSTMCell``).
        given: The attribute (and config key) of a layer object it was given: a
            generic RNN's ``cell``, a wrapper's ``layer``.
        copies: It holds a forward and a backward copy of its config's layer
            (``forward_layer``, ``backward_layer``: Bidirectional).
        held: Its own variables that are its sublayer's, one object saved under both
            (SpectralNormalization's ``kernel``).
        attributes: The classes of the sublayers its own code keeps as attributes, by
            attribute name (keras_hub's blocks: a file saves each under the attribute's
            name, which does not say the class). Where an option is off, the code may
            keep a weightless stand-in there (``Identity``): a group holding nothing is
            no evidence of the class named.
    """

    runs_once: bool
    cell: Cell | None = None
    given: str | None = None
    copies: bool = False
    held: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=dict)


#: Holds sublayers and runs each once per call.
RUNS_EACH_ONCE = Sublayers(runs_once=True)
#: Its call is code it was given or its own: how often it runs what it holds is its call's.
CALL_DECIDES = Sublayers(runs_once=False)


@dataclass(frozen=True)
class LayerClass:
    """One class of the catalogue, every fact stated (or :data:`UNKNOWN`).

    Attributes:
        name: The class name a file holds (``Conv2D``; Keras 2 op layers ``TFOpLambda``).
        shapes: The output-shape rule of one call.
        macs: The MAC rule of one call; ``0`` by the published convention (pooling,
            normalisation, merges …: docs/cost.md).
        variables: Its own variables' names and trainability; NONE if it holds none.
        sublayers: The layers it holds and how it runs them; NONE if it holds none.
        aliases: Other names Keras loads as this class (``Convolution2D``).
        package: ``keras`` (Keras, tf_keras, keras.applications) or ``keras_hub``.
    """

    name: str
    shapes: ShapeRule | Unknown
    macs: MacRule | Literal[0] | Unknown
    variables: Variables | Nothing | Unknown
    sublayers: Sublayers | Nothing
    aliases: tuple[str, ...] = ()
    package: str = "keras"


def weightless(
    name: str,
    shapes: ShapeRule | Unknown,
    macs: MacRule | Literal[0] | Unknown,
    aliases: tuple[str, ...] = (),
) -> LayerClass:
    """A class that holds no variables and no sublayers (pooling, merges, activations …)."""
    return LayerClass(name, shapes, macs, variables=NONE, sublayers=NONE, aliases=aliases)

"""Recurrent layers and the wrappers Keras keeps beside them: ``LSTM``, ``GRU``,
``SimpleRNN`` and their cells, ``RNN`` over any cells (stacked too),
``ConvLSTM1D/2D/3D``, ``Bidirectional`` and ``TimeDistributed``.

Shapes: ``return_sequences`` / ``return_state`` and Keras 2's ``time_major``; the
wrappers apply their inner layer's rule. MACs: time steps × Σ over cells (both
directions) of kernel size + recurrent kernel size; the element-wise gate
arithmetic is not counted (docs/cost.md). A recurrent layer's variables are its
cell's: the cell is a sublayer, run once per call of the layer (its per-step reads
are one use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weighttie.layers.conv import conv_shape_rule
from weighttie.layers.layer_class import (
    NONE,
    RUNS_EACH_ONCE,
    UNKNOWN,
    Cell,
    LayerClass,
    Sublayers,
    Variables,
)
from weighttie.layers.macs import HeldWeights, MacCall, known_shape, positions, roles
from weighttie.layers.shapes import (
    MAX_WRAPPER_DEPTH,
    Config,
    ShapeCall,
    ShapeRule,
    Shapes,
    apply_inner,
    bool_of,
    choice_of,
    class_and_config,
    int_of,
    value_of,
    with_rank,
    wrapped_layer,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


# -- shapes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CellSizes:
    """What a recurrent cell contributes to shapes: its output size and state sizes."""

    output: int
    states: tuple[int, ...]


def _cell_sizes(class_name: str, config: Config, depth: int = 0) -> _CellSizes:
    if depth > MAX_WRAPPER_DEPTH:
        raise Unsure
    if class_name in ("LSTMCell", "GRUCell", "SimpleRNNCell"):
        units = int_of(value_of(config, "units"), 1)
        return _CellSizes(units, (units, units) if class_name == "LSTMCell" else (units,))
    if class_name == "StackedRNNCells":
        cells = value_of(config, "cells")
        if not isinstance(cells, list) or not cells:
            raise Unsure
        parts = [_cell_sizes(*class_and_config(entry), depth + 1) for entry in cells]
        return _CellSizes(parts[-1].output, tuple(s for p in parts for s in p.states))
    raise Unsure


def _sequence_outputs(config: Config, shape: Shape, cell: _CellSizes) -> Shapes:
    """An RNN's outputs: the output (last step or sequence), then each state."""
    with_rank(shape, 3)
    time_major = bool_of(config.get("time_major", False))  # Keras 2: (time, batch, features)
    if time_major:
        steps, batch = shape[0], shape[1]
    else:
        batch, steps = shape[0], shape[1]
    output: Shape = (batch, cell.output)
    if bool_of(config.get("return_sequences", False)):
        output = (steps, batch, cell.output) if time_major else (batch, steps, cell.output)
    if not bool_of(config.get("return_state", False)):
        return (output,)
    return (output, *((batch, size) for size in cell.states))


def _recurrent_shape(cell_class: str) -> ShapeRule:
    def rule(call: ShapeCall) -> Shapes:
        return _sequence_outputs(call.config, call.x, _cell_sizes(cell_class, call.config))

    return rule


def _rnn_shape(call: ShapeCall) -> Shapes:
    cell = _cell_sizes(*class_and_config(value_of(call.config, "cell")))
    return _sequence_outputs(call.config, call.x, cell)


def _conv_lstm_shape(rank: int) -> ShapeRule:
    step_rule = conv_shape_rule(rank, "step")

    def rule(call: ShapeCall) -> Shapes:
        shape = with_rank(call.x, rank + 3)
        config = call.config
        if bool_of(config.get("time_major", False)):
            raise Unsure
        step = step_rule(call.inner(config, ((shape[0], *shape[2:]),)))[0]
        if step is None:
            raise Unsure
        output = step
        if bool_of(config.get("return_sequences", False)):
            output = (shape[0], shape[1], *step[1:])
        if bool_of(config.get("return_state", False)):
            return (output, step, step)
        return (output,)

    return rule


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
_SEQUENCE_LAYERS = frozenset(
    {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
)


def _bidirectional_shape(call: ShapeCall) -> Shapes:
    mode = choice_of(call.config, "merge_mode", _MERGE_MODES, "concat")
    class_name, config = wrapped_layer(call)
    if class_name not in _SEQUENCE_LAYERS:
        raise Unsure  # Keras wraps recurrent layers only
    forward = apply_inner(call, class_name, config, (call.x,))
    if call.config.get("backward_layer") is not None:
        backward = apply_inner(call, *wrapped_layer(call, "backward_layer"), (call.x,))
        if backward != forward:
            raise Unsure  # Keras computes shapes from the forward layer only
    output, states = forward[0], forward[1:]
    if output is None:
        raise Unsure
    if mode == "concat":
        merged: Shapes = ((*output[:-1], None if output[-1] is None else 2 * output[-1]),)
    elif mode is None:
        merged = (output, output)
    else:
        merged = (output,)
    return merged + states + states


def _time_distributed_shape(call: ShapeCall) -> Shapes:
    shape = call.x
    if len(shape) < 3:
        raise Unsure
    class_name, config = wrapped_layer(call)
    inner = apply_inner(call, class_name, config, ((shape[0], *shape[2:]),))
    if len(inner) != 1 or inner[0] is None or not inner[0]:
        raise Unsure
    child = inner[0]
    return ((child[0], shape[1], *child[1:]),)


# -- MACs ---------------------------------------------------------------------------------------


def _cell_steps(weights: HeldWeights, rank: int) -> int:
    """MACs of one time step: every cell's input and recurrent kernels, once each."""
    total = 0
    for holder in weights.holders():
        found = roles(holder.own, ("kernel", "recurrent_kernel", "bias"))
        recurrent = found.get("recurrent_kernel")
        kernel = found["kernel"]
        if recurrent is None or len(kernel.shape) != rank or len(recurrent.shape) != rank:
            raise Unsure
        total += kernel.size + recurrent.size
    if not total:
        raise Unsure
    return total


def _rnn_macs(call: MacCall) -> int:
    """SimpleRNN, GRU, LSTM, RNN over their cells, Bidirectional over both directions."""
    x = known_shape(call.inputs, 0)
    if len(x) != 2:
        raise Unsure
    return x[0] * _cell_steps(call.weights, 2)


def _conv_rnn_macs(call: MacCall) -> int:
    """ConvLSTM1D/2D/3D: per step, the input and the recurrent convolution at every output
    position (the recurrent one keeps the output's size: ``same`` padding, stride 1)."""
    x, y = known_shape(call.inputs, 0), known_shape(call.outputs, 0)
    holders = list(call.weights.holders())
    if len(holders) != 1:
        raise Unsure
    kernel = roles(holders[0].own, ("kernel", "recurrent_kernel", "bias"))["kernel"]
    spatial = len(kernel.shape) - 2
    if len(x) != spatial + 2:
        raise Unsure
    steps = x[0]
    filters = kernel.shape[-1] // 4
    if len(y) == spatial + 2:  # return_sequences
        if y[0] != steps:
            raise Unsure
        y = y[1:]
    elif len(y) != spatial + 1:
        raise Unsure
    return steps * positions(y, filters) * _cell_steps(call.weights, spatial + 2)


def _time_distributed_macs(call: MacCall) -> int:
    """The wrapped layer's MACs on one time step, times the steps."""
    x, y = known_shape(call.inputs, 0), known_shape(call.outputs, 0)
    w = call.weights
    if len(w.sublayers) != 1 or w.own or not x or not y or x[0] != y[0]:
        raise Unsure
    inner = next(iter(w.sublayers.values()))
    macs = call.macs_of(inner.class_name, inner, [(None, *x[1:])], [(None, *y[1:])])
    if macs is None:
        raise Unsure
    return x[0] * macs


# -- the classes --------------------------------------------------------------------------------


def _cell_names(config: dict[str, Any]) -> list[str]:
    return ["kernel", "recurrent_kernel"] + (["bias"] if config.get("use_bias", True) else [])


def _recurrent_layer(name: str, cell_class: str, cell_name: str) -> LayerClass:
    """An RNN layer that makes its cell from its own config; the cell holds the variables."""
    return LayerClass(
        name,
        shapes=_recurrent_shape(cell_class),
        macs=_rnn_macs,
        variables=NONE,
        sublayers=Sublayers(runs_once=True, cell=Cell(cell_class, cell_name)),
    )


def _cell(name: str) -> LayerClass:
    """A cell: a sublayer of its RNN layer, not a call of the graph."""
    return LayerClass(name, UNKNOWN, UNKNOWN, Variables(_cell_names), NONE)


CLASSES = (
    _recurrent_layer("LSTM", "LSTMCell", "lstm_cell"),
    _recurrent_layer("GRU", "GRUCell", "gru_cell"),
    _recurrent_layer("SimpleRNN", "SimpleRNNCell", "simple_rnn_cell"),
    _cell("LSTMCell"),
    _cell("GRUCell"),
    _cell("SimpleRNNCell"),
    LayerClass("StackedRNNCells", UNKNOWN, UNKNOWN, NONE, RUNS_EACH_ONCE),
    LayerClass("RNN", _rnn_shape, _rnn_macs, NONE, Sublayers(runs_once=True, given="cell")),
    *(
        LayerClass(
            f"ConvLSTM{r}D",
            shapes=_conv_lstm_shape(r),
            macs=_conv_rnn_macs,
            variables=NONE,
            sublayers=Sublayers(runs_once=True, cell=Cell(UNKNOWN, "conv_lstm_cell")),
        )
        for r in (1, 2, 3)
    ),
    LayerClass(
        "Bidirectional",
        shapes=_bidirectional_shape,
        macs=_rnn_macs,  # of a ConvLSTM*D: unknown (its input is no sequence of vectors)
        variables=NONE,
        sublayers=Sublayers(runs_once=True, copies=True),
    ),
    LayerClass(
        "TimeDistributed",
        _time_distributed_shape,
        _time_distributed_macs,
        NONE,
        Sublayers(runs_once=True, given="layer"),
    ),
)

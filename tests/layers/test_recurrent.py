"""Recurrent layers and their wrappers (weighttie.layers.recurrent): shapes, MACs and
the cells' variables against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import keras
from keras import layers

from layers.family import FamilyOracle
from layers.shape_oracle import Case, Shape, Sub, data_format, image, unique
from weighttie.layers import recurrent


def _cases() -> Iterator[Case]:
    shapes: list[Shape] = [(None, 7, 3), (None, None, 3), (4, 5, 3)]
    for layer, sequences, state, shape in itertools.product(
        ["LSTM", "GRU", "SimpleRNN"], (False, True), (False, True), shapes
    ):
        kwargs = {"units": 4, "return_sequences": sequences, "return_state": state}
        yield Case(layer, kwargs, (shape,))
        if shape == shapes[0]:
            modes = ["concat", "sum", "mul", "ave", None] if layer == "LSTM" else ["concat", None]
            for mode in modes:
                inner = Sub(layer, kwargs)
                yield Case("Bidirectional", {"layer": inner, "merge_mode": mode}, (shape,))
    cells: list[Any] = [Sub("LSTMCell", {"units": 4}), Sub("GRUCell", {"units": 2})]
    cells += [[Sub("LSTMCell", {"units": 4}), Sub("GRUCell", {"units": 2})]]
    cells += [[Sub("SimpleRNNCell", {"units": 3}), Sub("LSTMCell", {"units": 5})]]
    for cell, sequences, state in itertools.product(cells, (False, True), (False, True)):
        kwargs = {"cell": cell, "return_sequences": sequences, "return_state": state}
        yield Case("RNN", kwargs, (shapes[0],))
    ranks = itertools.cycle((1, 2, 3))
    for sequences, state, padding, stride, first in itertools.product(
        (False, True), (False, True), ["valid", "same"], [1, 2], (False, True)
    ):
        rank = next(ranks)
        kwargs = {"filters": 4, "kernel_size": 3 if rank < 3 else 2, "padding": padding}
        kwargs |= {"strides": stride, "data_format": data_format(first)}
        kwargs |= {"return_sequences": sequences, "return_state": state}
        spatial = {1: (9,), 2: (8, 7), 3: (5, 6, 4)}[rank]
        step = image(spatial, first)
        yield Case(f"ConvLSTM{rank}D", kwargs, ((None, 4, *step[1:]),))
    for kind in ("LSTM", "GRU"):
        kwargs = {"units": 3, "return_sequences": True}
        inner = Sub("ConvLSTM1D", {"filters": 2, "kernel_size": 3, "return_sequences": True})
        for layer in (Sub(kind, kwargs), inner):
            shape = (None, 5, 3) if layer is not inner else (None, 5, 8, 3)
            yield Case("Bidirectional", {"layer": layer}, (shape,))
    distributed: list[tuple[Sub, Shape]] = [
        (Sub("Dense", {"units": 5}), (None, 4, 6)),
        (Sub("Dense", {"units": 5}), (None, None, 3, 6)),
        (Sub("Conv2D", {"filters": 2, "kernel_size": 3}), (None, 4, 8, 8, 3)),
        (Sub("Flatten"), (None, 4, 2, 3)),
        (Sub("MaxPooling1D"), (None, 3, 8, 2)),
    ]
    for layer, shape in distributed:
        yield Case("TimeDistributed", {"layer": layer}, (shape,))


def _keras2_only_cases() -> Iterator[Case]:
    """Keras 2 spellings Keras 3 cannot build: ``time_major``, a Bidirectional's own
    backward layer, stacked cells returning their states."""
    for layer, sequences, state in [
        ("LSTM", True, True),
        ("GRU", True, False),
        ("SimpleRNN", False, True),
    ]:
        kwargs = {"units": 3, "return_sequences": sequences, "return_state": state}
        yield Case(layer, {**kwargs, "time_major": True}, ((5, None, 4),))
    for layer, mode, state in [
        ("LSTM", "concat", True),
        ("LSTM", None, True),
        ("GRU", "ave", False),
    ]:
        kwargs = {"units": 3, "return_sequences": True, "return_state": state}
        backward = Sub(layer, {**kwargs, "go_backwards": True})
        bidirectional = {"layer": Sub(layer, kwargs), "backward_layer": backward}
        yield Case("Bidirectional", {**bidirectional, "merge_mode": mode}, ((None, 7, 4),))
    cells = [Sub("LSTMCell", {"units": 4}), Sub("GRUCell", {"units": 2})]
    yield Case("RNN", {"cell": cells, "return_state": True}, ((None, 5, 3),))


def _cell_of(kind: str) -> tuple[keras.Layer, keras.Layer]:
    """A recurrent layer's cell, whose config is the layer's own."""
    layer = getattr(layers, kind)(3)
    layer.build((None, 4, 2))
    return layer.cell, layer


KERAS2_ONLY = list(_keras2_only_cases())

UNSURE = {
    "causal ConvLSTM1D": (
        "ConvLSTM1D",
        {"filters": 2, "kernel_size": 3, "padding": "causal"},
        [(None, 4, 8, 3)],
        None,
    ),
    "backward layer of another size": (
        "Bidirectional",
        {
            "layer": {"class_name": "LSTM", "config": {"units": 3}},
            "backward_layer": {"class_name": "LSTM", "config": {"units": 4}},
        },
        [(None, 5, 2)],
        None,
    ),
    "Bidirectional of a layer that is not recurrent": (
        "Bidirectional",
        {"layer": {"class_name": "Dense", "config": {"units": 3}}},
        [(None, 5, 2)],
        None,
    ),
    "custom inner class named like a built-in": (
        "TimeDistributed",
        {"layer": {"module": "my_package", "class_name": "Dense", "config": {"units": 3}}},
        [(None, 5, 2)],
        None,
    ),
}

MAC_CASES = {
    "simple-rnn": (lambda: layers.SimpleRNN(6, unroll=True), ((5, 4),)),
    "simple-rnn-sequences": (
        lambda: layers.SimpleRNN(3, unroll=True, return_sequences=True),
        ((7, 2),),
    ),
    "gru": (lambda: layers.GRU(5, unroll=True), ((4, 3),)),
    "gru-reset-before": (lambda: layers.GRU(4, unroll=True, reset_after=False), ((6, 5),)),
    "lstm": (lambda: layers.LSTM(5, unroll=True), ((4, 3),)),
    "lstm-states": (
        lambda: layers.LSTM(3, unroll=True, return_sequences=True, return_state=True),
        ((5, 7),),
    ),
    "rnn-stacked-cells": (
        lambda: layers.RNN([layers.LSTMCell(4), layers.GRUCell(3)], unroll=True),
        ((6, 5),),
    ),
    "bidirectional-lstm": (
        lambda: layers.Bidirectional(layers.LSTM(4, unroll=True, return_sequences=True)),
        ((5, 3),),
    ),
    "bidirectional-gru-sum": (
        lambda: layers.Bidirectional(layers.GRU(3, unroll=True), merge_mode="sum"),
        ((4, 6),),
    ),
    "conv-lstm1d": (lambda: layers.ConvLSTM1D(3, 3, unroll=True), ((4, 9, 2),)),
    "conv-lstm2d": (lambda: layers.ConvLSTM2D(4, 3, unroll=True), ((3, 8, 8, 2),)),
    "conv-lstm2d-sequences-same": (
        lambda: layers.ConvLSTM2D(2, 3, padding="same", unroll=True, return_sequences=True),
        ((3, 6, 5, 3),),
    ),
    "conv-lstm2d-strided": (
        lambda: layers.ConvLSTM2D(3, 3, strides=2, unroll=True),
        ((2, 9, 9, 2),),
    ),
    "conv-lstm3d": (lambda: layers.ConvLSTM3D(2, 2, unroll=True), ((2, 4, 4, 3, 2),)),
    "time-distributed-conv": (
        lambda: layers.TimeDistributed(layers.Conv2D(5, 3, strides=2)),
        ((4, 11, 9, 3),),
    ),
    "time-distributed-dense": (lambda: layers.TimeDistributed(layers.Dense(6)), ((5, 3, 4),)),
}

VARIABLE_CASES = {
    "LSTMCell": lambda: _cell_of("LSTM"),
    "GRUCell": lambda: _cell_of("GRU"),
    "SimpleRNNCell": lambda: _cell_of("SimpleRNN"),
}


class TestRecurrent(FamilyOracle):
    family = recurrent
    cases = unique(_cases())
    keras2_only = KERAS2_ONLY
    unsure = UNSURE
    mac_cases = MAC_CASES
    variable_cases = VARIABLE_CASES

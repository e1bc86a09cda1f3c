"""The rows and variables the static reader collects, counted against the limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from weighttie.errors import LimitError
from weighttie.facts import ROOT, RawLayer, RawVariable
from weighttie.layers import held_from_sublayer, sublayer_entry, trainable_flags
from weighttie.limits import Limits
from weighttie.report import CallNode

__all__ = ["Place", "Reader", "Unsaved", "opaque_notes"]


class Place(Enum):
    """Where a layer the weights file has no group for was found."""

    ROW = "row"
    """A layer of a model's config: its row exists, without variables."""
    SUBLAYER = "sublayer"
    """A Keras layer's sublayer its config names (an RNN's cell): no row yet; it runs
    once per call of its parent."""
    REFERENCE = "reference"
    """A layer a custom layer's config holds: no row yet; the custom layer's call
    decides whether it runs or is read, which the file does not record."""


@dataclass(frozen=True)
class Unsaved:
    """One place where the config describes a layer the weights file does not hold there."""

    place: Place
    path: str  # the row's path (ROW), or the path of the row to create
    parent: str
    name: str
    class_name: str
    built: bool
    config: dict[str, Any] | None = None  # the layer's config where it is found


class Reader:
    """Collects the rows and variables of one file, counting layers and calls against limits."""

    def __init__(self, where: str, limits: Limits) -> None:
        self.where = where
        self.limits = limits
        self.rows: list[RawLayer] = []
        self.variables: dict[Hashable, RawVariable] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.row_index: dict[str, int] = {}
        self.sublayers: dict[str, int] = {}  # the last sublayer index given, by parent
        #: Custom layers holding sublayers: their own ``call`` decides how often those
        #: run, which the file does not record (the sublayers' calls are unknown).
        self.opaque: list[tuple[str, str]] = []  # (path, class name)
        #: Rows with a group in the weights file, and places without one
        #: (:mod:`~weighttie.static.reached_again`).
        self.saved: set[str] = set()
        self.unsaved: list[Unsaved] = []
        #: Why some rows run an unknown number of times (each also a model note).
        self.calls_notes: list[str] = []
        self.layers = 0
        self.calls = 0

    def check_depth(self, depth: int, what: str) -> None:
        """Refuse nesting past the depth limit: ``what`` nests models (or layers) ``depth`` deep."""
        if depth > self.limits.depth:
            raise LimitError(
                f"{self.where}: {what} more than {self.limits.depth} levels deep, the depth limit",
                limit="depth",
            )

    def count_more(self, layers: int) -> None:
        """Count ``layers`` more rows against the layers limit."""
        self.layers += layers
        self._check_layers()

    def _check_layers(self) -> None:
        if self.layers > self.limits.layers:
            raise LimitError(
                f"{self.where} holds more than {self.limits.layers:,} layers, the layers limit",
                limit="layers",
            )

    def _count(self, path: str, nodes: tuple[CallNode, ...] | None) -> None:
        """Keep layers and calls within limits.

        The config's are counted as it is parsed; here the weights file's sublayers
        and a Sequential model's implied calls join them.
        """
        self.layers += path != ROOT
        self._check_layers()
        self.calls += len(nodes or ())
        if self.calls > self.limits.calls:
            raise LimitError(
                f"{self.where} records more than {self.limits.calls:,} calls of layers, "
                "the calls limit",
                limit="calls",
            )

    def add(
        self,
        path: str,
        name: str,
        class_name: str,
        parent: str | None,
        *,
        is_model: bool,
        nodes: tuple[CallNode, ...] | None,
        variables: list[tuple[str, tuple[int, ...], str]],
        names: list[str],
        trainable: bool,
        calls_known: bool = True,
    ) -> None:
        """One row and the variables it holds itself.

        A row with ``nodes`` runs once per call in its parent's graph; one without runs
        once per run of its parent (a Keras layer's sublayer), or an unknown number of
        times where ``calls_known`` is False (a custom layer's sublayer).

        ``trainable`` is False where the layer or a parent is frozen by its config; the
        layer's class decides the rest (:func:`~weighttie.layers.trainable_flags`),
        read from its config entry when the reader recorded one (``entries``) before this call.
        A row without an entry of its own (a sublayer the weights file shows) is given one for
        findings (:meth:`_sublayer_entry`).
        """
        self._count(path, nodes)
        entry = self.entries.get(path)
        config = entry.get("config") if entry is not None else None
        flags = trainable_flags(class_name, config if isinstance(config, dict) else {}, names)
        keys = []
        for (key, shape, dtype), var_name, flag in zip(variables, names, flags, strict=True):
            self.variables[key] = RawVariable(
                key=key,
                name=var_name,
                shape=shape,
                dtype=dtype,
                trainable=trainable and flag,
            )
            keys.append(key)
        made_by = self.entries.get(parent) if parent is not None and entry is None else None
        if parent is not None and made_by is not None and isinstance(made_by.get("config"), dict):
            self.entries[path] = self._sublayer_entry(parent, made_by, name, class_name)
        if parent is not None:
            self._share_with_parent(parent, keys, names)
        self.row_index[path] = len(self.rows)
        self.rows.append(
            RawLayer(
                path=path,
                name=name,
                class_name=class_name,
                parent=parent,
                identity=path,
                is_model=is_model,
                nodes=nodes,
                variables=tuple(keys),
                runs=len(nodes) if nodes is not None else 1 if calls_known else None,
            )
        )

    def _sublayer_entry(
        self, parent: str, made_by: dict[str, Any], name: str, class_name: str
    ) -> dict[str, Any]:
        """The config entry of a sublayer: its own, where its parent's config holds it (an
        RNN's cell, a Bidirectional's layers); else its parent's config (without the parent's
        name), with its class and its place among the parent's sublayers."""
        parent_class = str(made_by.get("class_name", ""))
        own = sublayer_entry(parent_class, made_by["config"], name, class_name)
        if own is not None:
            return own
        config = {k: v for k, v in made_by["config"].items() if k != "name"}
        index = self.sublayers[parent] = self.sublayers.get(parent, -1) + 1
        made = {"sublayer_of": config, "index": index, "class_name": class_name}
        return {"class_name": class_name, "config": made}

    def _share_with_parent(self, parent: str, keys: Sequence[Hashable], names: list[str]) -> None:
        """Where the parent's class holds one of this sublayer's variables as its own
        (:func:`~weighttie.layers.held_from_sublayer`), the parent's saved copy
        is that variable: the parent's row takes this row's key, and the copy is dropped."""
        index = self.row_index.get(parent)
        row = self.rows[index] if index is not None else None
        held = held_from_sublayer(row.class_name) if row is not None else frozenset()
        if index is None or row is None or not held:
            return
        copy = next((k for k in row.variables if self.variables[k].name in held), None)
        if copy is None:
            return
        name = self.variables[copy].name
        source = next((k for k, n in zip(keys, names, strict=True) if n == name), None)
        if source is None:
            return
        if (self.variables[copy].shape, self.variables[copy].dtype) != (
            self.variables[source].shape,
            self.variables[source].dtype,
        ):
            return
        del self.variables[copy]
        variables = tuple(source if k == copy else k for k in row.variables)
        self.rows[index] = dataclasses.replace(row, variables=variables)


def opaque_notes(reader: Reader) -> tuple[str, ...]:
    """The note for custom layers holding layers whose runs and reads the file does not record."""
    if not reader.opaque:
        return ()
    note = _opaque_note(reader)
    reader.calls_notes.append(note)
    return (note,)


def _opaque_note(reader: Reader) -> str:
    shown = ", ".join(f"{path!r} ({class_name})" for path, class_name in reader.opaque[:3])
    more = f" and {len(reader.opaque) - 3} more" if len(reader.opaque) > 3 else ""
    return (
        f"custom layers hold other layers, which their own call() may run or read: "
        f"{shown}{more}; the file does not record which (a tied embedding called again or "
        "read inside a head, a layer called twice), so how often those layers' variables "
        "are used is unknown, and so are the per-use totals (--load on a .keras file "
        "counts them through Keras)"
    )

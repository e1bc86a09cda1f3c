"""The rows and variables the static reader collects, counted against the limits."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from weighttie.errors import LimitError
from weighttie.facts import RawLayer, RawVariable
from weighttie.graph import ROOT
from weighttie.limits import Limits
from weighttie.report import CallNode
from weighttie.static.class_tables import _NON_TRAINABLE


class _Reader:
    """Collects the rows and variables of one file, counting layers and calls against limits."""

    def __init__(self, where: str, limits: Limits) -> None:
        self.where = where
        self.limits = limits
        self.rows: list[RawLayer] = []
        self.variables: dict[Hashable, RawVariable] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.layers = 0
        self.calls = 0

    def check_depth(self, depth: int, what: str) -> None:
        """Refuse nesting past the depth limit: ``what`` nests models (or layers) ``depth`` deep."""
        if depth > self.limits.depth:
            raise LimitError(
                f"{self.where}: {what} more than {self.limits.depth} levels deep, the depth limit",
                limit="depth",
            )

    def _count(self, path: str, nodes: tuple[CallNode, ...] | None) -> None:
        """Keep layers and calls within limits.

        The config's are counted as it is parsed; here the weights file's sublayers
        and a Sequential model's implied calls join them.
        """
        self.layers += path != ROOT
        if self.layers > self.limits.layers:
            raise LimitError(
                f"{self.where} holds more than {self.limits.layers:,} layers, the layers limit",
                limit="layers",
            )
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
        is_model: bool,
        nodes: tuple[CallNode, ...] | None,
        variables: list[tuple[str, tuple[int, ...], str]],
        names: list[str],
        trainable: bool,
    ) -> None:
        self._count(path, nodes)
        keys = []
        for (key, shape, dtype), var_name in zip(variables, names, strict=True):
            self.variables[key] = RawVariable(
                key=key,
                name=var_name,
                shape=shape,
                dtype=dtype,
                trainable=trainable and var_name not in _NON_TRAINABLE,
            )
            keys.append(key)
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
            )
        )

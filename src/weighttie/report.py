"""The Report: frozen, plain data describing a model's weight sharing.

This module imports no Keras. Everything downstream of the walker and the static
reader (renderers, graph export, checks) reads only these classes. A Report
round-trips through the versioned JSON contract ``weighttie.report/3``
(docs/json-contract.md); a ``weighttie.report/1`` document still reads, with its
cost unknown::

    >>> report = Report.from_json(text)          # doctest: +SKIP
    >>> report.layer("lstm").nodes[1].output_shapes
    ((None, 32),)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from weighttie.errors import LayerNotFoundError, ReportFormatError
from weighttie.escape import printable_json
from weighttie.files import read_limited
from weighttie.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "SCHEMA",
    "Bytes",
    "CallNode",
    "Cost",
    "Finding",
    "GroupKind",
    "InboundRef",
    "LayerBytes",
    "LayerInfo",
    "LayerParams",
    "ModelInfo",
    "Params",
    "Report",
    "Shape",
    "SharingGroup",
    "Tie",
    "VariableInfo",
    "read_report_json",
]

SCHEMA = "weighttie.report/3"
#: The schema before variables named their readers; still read (readers: the holders
#: that run).
SCHEMA_2 = "weighttie.report/2"
#: The schema before cost (bytes and MACs) was added; still read, with cost unknown.
SCHEMA_1 = "weighttie.report/1"

#: A tensor shape; ``None`` marks a dimension that is not known (e.g. the batch).
Shape = tuple[int | None, ...]


class GroupKind(StrEnum):
    """Why a set of variables is shared."""

    SHARED_LAYER = "shared-layer"
    """One layer called several times."""
    SHARED_MODEL = "shared-model"
    """One nested model called several times."""
    TIED = "tied"
    """Distinct layers holding the same variable objects."""
    READ_SHARED = "read-shared"
    """Distinct layers reading the same variables, one without holding them (a head
    computing with ``emb.embeddings`` without calling ``emb``)."""


class FindingKind(StrEnum):
    """What a finding says (docs/concepts.md)."""

    BROKEN_TIE = "broken-tie"
    """Separate variables of distinct layers, in the same role, with identical contents; or
    a declared tie whose stored copies differ."""
    TWIN_BRANCHES = "twin-branches"
    """Identical parallel sub-graphs holding separate weights."""
    MISSING_TIED_TENSOR = "missing-tied-tensor"
    """A checkpoint's config declares a head untied, but the head is not stored (a
    loader initializes it at random); or declares a tie and stores neither tensor."""
    STORED_TWICE = "stored-twice"
    """A checkpoint's config declares a tie and both tensors are stored, equal: wasted space."""
    ALIAS = "alias"
    """A safetensors metadata alias names a tensor the checkpoint does not store."""


class Source(StrEnum):
    """How a report was made."""

    LIVE = "live"
    """``analyze`` of a model in memory."""
    LOADED = "loaded"
    """A file loaded through Keras, then analyzed."""
    STATIC = "static"
    """A file read without Keras."""


@dataclass(frozen=True)
class InboundRef:
    """One input of a call: tensor ``tensor_index`` of call ``node_index`` of ``layer``."""

    layer: str
    node_index: int
    tensor_index: int


@dataclass(frozen=True)
class CallNode:
    """One call of a layer inside the graph that holds it (Keras's ``Node``).

    ``index`` counts only the calls that belong to the analyzed model's graph, in
    call order, so it matches the node indices a saved ``.keras`` file uses.
    ``macs``: multiply-accumulates of one run of this call, per example (a nested
    model's call: the sum of its inner calls), or None where unknown
    (docs/cost.md). Front ends leave it None; :func:`weighttie.build.build_report`
    fills it.
    """

    index: int
    inbound: tuple[InboundRef, ...]
    input_shapes: tuple[Shape | None, ...]
    output_shapes: tuple[Shape | None, ...]
    macs: int | None = None


@dataclass(frozen=True)
class LayerParams:
    """Parameter counts of one layer row.

    ``held``: sizes of the variables the layer holds itself (not via sublayers).
    ``unique``: sizes of the variables this row is the first holder of (rows sum to
    ``Params.unique``). ``per_use``: ``held`` × the layer's uses (rows sum to
    ``Params.per_use``); None where the uses are unknown.
    """

    held: int
    unique: int
    per_use: int | None


@dataclass(frozen=True)
class LayerBytes:
    """Bytes of one layer row, counted as :class:`LayerParams` counts parameters.

    Each is None when some variable's dtype has no known width (or uses are unknown).
    """

    held: int | None
    unique: int | None
    per_use: int | None


#: Bytes of a row whose cost is not known (a ``weighttie.report/1`` report).
UNKNOWN_LAYER_BYTES = LayerBytes(None, None, None)


@dataclass(frozen=True)
class Bytes:
    """Bytes of a set of variables: each stored once (``unique``), or at every use (``per_use``)."""

    unique: int | None
    per_use: int | None


@dataclass(frozen=True)
class Cost:
    """Model-wide cost (docs/cost.md).

    ``bytes``: the variables' bytes, stored once and per use. ``macs``:
    multiply-accumulates of one forward pass per example, summed over every call
    whose MACs are known (a shared tower counts once per call); None when layers
    are uncounted and the known ones add up to 0. ``uncounted``: layers that
    compute in a forward pass but are not in ``macs`` (a class without a rule,
    unknown shapes or calls); when it is not 0, ``macs`` is a lower bound.
    """

    bytes: Bytes
    macs: int | None
    uncounted: int


#: The cost of a ``weighttie.report/1`` report: not recorded.
UNKNOWN_COST = Cost(Bytes(None, None), None, 0)


@dataclass(frozen=True)
class LayerInfo:
    """One layer (or nested model, or graph operation) at one path in the model.

    ``nodes`` is ``None`` when the calls are unknown: inside a subclassed model and
    for sublayers a layer calls itself (an LSTM's cell). ``order`` is the layer's
    position in the model: a model's layers in the order Keras lists them, each
    nested model's (or layer's) own layers right after it, as ``model.summary()``
    reads; reports list layers by path, renderers may list them in this order.
    ``bytes``: see :class:`LayerBytes`. ``macs``: this row's MACs in one forward
    pass of the analyzed model (its calls' ``macs`` × its parent's uses; a nested
    model's includes its inner layers), or None where any is unknown. ``uses`` is
    None where the file cannot tell how often the layer runs (``ModelInfo.notes``
    says why).
    """

    name: str
    path: str
    class_name: str
    uses: int | None
    params: LayerParams
    variables: tuple[str, ...]
    nodes: tuple[CallNode, ...] | None
    order: int = 0
    bytes: LayerBytes = UNKNOWN_LAYER_BYTES
    macs: int | None = None
    parent: str | None = ""


@dataclass(frozen=True)
class VariableInfo:
    """One variable object. ``path`` is its first holder's path plus its name.

    ``name``: its Keras name (``kernel``). ``layers``: the layers holding it.
    ``read_by``: the layers whose calls read it (usually its holders that run; also
    a layer reading another's variable, as a tied output head reads
    ``emb.embeddings``). ``uses``: how many layer calls read
    it in one forward pass, None where the calls are unknown. ``bytes`` = size ×
    the dtype's width, None when the width is not known.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    size: int
    layers: tuple[str, ...]
    uses: int | None
    bytes: int | None = None
    read_by: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class SharingGroup:
    """One reason for sharing.

    ``params``: unique parameters of the group's variables. ``calls``: how often the
    layer/model is called (shared-layer, shared-model) or how many distinct layers
    hold the variables (tied). ``duplicated``: the part of ``Params.duplicated``
    this sharing accounts for; either is None where the calls are unknown.
    ``bytes``: the group's variables stored once and at every use.
    """

    kind: GroupKind
    layers: tuple[str, ...]
    variables: tuple[str, ...]
    params: int
    calls: int | None
    duplicated: int | None
    bytes: Bytes = Bytes(None, None)


@dataclass(frozen=True)
class Tie:
    """A tie declared with ``tie_weights``: ``bound`` while both layers hold one variable."""

    source: str
    target: str
    variables: tuple[str, ...]
    bound: bool


@dataclass(frozen=True)
class Finding:
    """Something suspicious the analyzer noticed (``broken-tie``, ``twin-branches``)."""

    kind: FindingKind
    layers: tuple[str, ...]
    params: int
    message: str


@dataclass(frozen=True)
class Params:
    """Model-wide parameter counts (see docs/concepts.md).

    ``unique`` counts each variable once and equals ``model.count_params()``;
    ``per_use`` counts each variable once per use in a forward pass;
    ``duplicated = per_use - unique``; both None where the calls are unknown
    (a file that states no graph).
    """

    unique: int
    per_use: int | None
    duplicated: int | None
    trainable_unique: int
    non_trainable_unique: int


@dataclass(frozen=True)
class ModelInfo:
    """What was analyzed and how (``source``: live, loaded or static).

    ``notes``: what the source cannot tell (e.g. that a file states no calls), one
    sentence each. ``calls_note``: why some layers' calls are unknown, None when
    every count that depends on calls is known (set by the build; the sentence is
    one of ``notes``).
    """

    name: str
    class_name: str
    source: Source
    file: str | None = None
    keras_version: str | None = None
    notes: tuple[str, ...] = ()
    calls_note: str | None = None


@dataclass(frozen=True)
class Report:
    """Everything weighttie knows about one model's weight sharing."""

    model: ModelInfo
    params: Params
    layers: tuple[LayerInfo, ...]
    variables: tuple[VariableInfo, ...]
    groups: tuple[SharingGroup, ...]
    ties: tuple[Tie, ...] = ()
    findings: tuple[Finding, ...] = ()
    cost: Cost = UNKNOWN_COST
    _by_path: Mapping[str, LayerInfo] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_parent: Mapping[str | None, tuple[LayerInfo, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {row.path: row for row in self.layers})
        by_parent: dict[str | None, list[LayerInfo]] = {}
        for row in sorted(self.layers, key=lambda row: (row.order, row.path)):
            by_parent.setdefault(row.parent, []).append(row)
        object.__setattr__(
            self, "_by_parent", {parent: tuple(rows) for parent, rows in by_parent.items()}
        )

    # -- lookup -------------------------------------------------------------

    def layer(self, name_or_path: str) -> LayerInfo:
        """Return the layer row at ``name_or_path`` (a path, or a name that is unique).

        Raises:
            LayerNotFoundError: no layer matches, or a bare name matches several.
        """
        row = self._by_path.get(name_or_path)
        if row is not None:  # the common case, kept O(1): findings look up every holder
            return row
        names = {row.path: row.name for row in self.layers}
        return self._by_path[resolve_layer(name_or_path, names, self.model.name)]

    def children(self, path: str = "") -> tuple[LayerInfo, ...]:
        """The rows directly inside the layer at ``path`` ("" for the model), in model order."""
        return self._by_parent.get(path, ())

    def subtree(self, path: str) -> tuple[LayerInfo, ...]:
        """The row at ``path`` and every row inside it, in model order (pre-order).

        Raises:
            LayerNotFoundError: no layer matches.
        """
        top = self.layer(path)
        found, stack = [], [top]
        while stack:
            row = stack.pop()
            found.append(row)
            stack.extend(reversed(self.children(row.path)))
        return tuple(found)

    def variable(self, path: str) -> VariableInfo:
        """Return the variable row at ``path``."""
        for v in self.variables:
            if v.path == path:
                return v
        raise LayerNotFoundError(f"no variable {path!r} in model {self.model.name!r}")

    def groups_of(self, kind: GroupKind | str) -> tuple[SharingGroup, ...]:
        """Return the sharing groups of one kind."""
        kind = GroupKind(kind)
        return tuple(g for g in self.groups if g.kind is kind)

    # -- JSON contract ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data (``weighttie.report/3``)."""
        return {
            "schema": SCHEMA,
            "model": {
                "name": self.model.name,
                "class": self.model.class_name,
                "source": self.model.source,
                "file": self.model.file,
                "keras_version": self.model.keras_version,
                "notes": list(self.model.notes),
                "calls_note": self.model.calls_note,
            },
            "params": {
                "unique": self.params.unique,
                "per_use": self.params.per_use,
                "duplicated": self.params.duplicated,
                "trainable_unique": self.params.trainable_unique,
                "non_trainable_unique": self.params.non_trainable_unique,
            },
            "cost": {
                "bytes": _bytes_to_dict(self.cost.bytes),
                "macs": self.cost.macs,
                "uncounted": self.cost.uncounted,
            },
            "layers": [_layer_to_dict(row) for row in self.layers],
            "variables": [
                {
                    "path": v.path,
                    "name": v.name,
                    "shape": list(v.shape),
                    "dtype": v.dtype,
                    "trainable": v.trainable,
                    "size": v.size,
                    "layers": list(v.layers),
                    "read_by": list(v.read_by),
                    "uses": v.uses,
                    "bytes": v.bytes,
                }
                for v in self.variables
            ],
            "groups": [
                {
                    "kind": g.kind.value,
                    "layers": list(g.layers),
                    "variables": list(g.variables),
                    "params": g.params,
                    "calls": g.calls,
                    "duplicated": g.duplicated,
                    "bytes": _bytes_to_dict(g.bytes),
                }
                for g in self.groups
            ],
            "ties": [
                {
                    "source": t.source,
                    "target": t.target,
                    "variables": list(t.variables),
                    "bound": t.bound,
                }
                for t in self.ties
            ],
            "findings": [
                {
                    "kind": f.kind,
                    "layers": list(f.layers),
                    "params": f.params,
                    "message": f.message,
                }
                for f in self.findings
            ],
        }

    def _repr_html_(self) -> str:
        """The picture, inline in a Jupyter notebook (docs/picture.md)."""
        from weighttie.picture import to_html

        return to_html(self, fragment=True)

    def to_json(self, *, compact: bool = False) -> str:
        """Return the report as JSON text; the same report always gives the same text.

        The layout puts each top-level key, and each element of a top-level list
        (a layer, a variable, a group …), on a line of its own: readable, friendly
        to line-based diffs, and written by the C encoder (``indent`` would be
        several times slower on big models). ``compact`` gives one line.

        Letters of any script are written as they are; a control, format or
        separator character (and a lone surrogate) in a name is written as a ``\\u``
        escape, so the text is safe to print and decodes to the same names.
        """
        doc = self.to_dict()
        if compact:
            return printable_json(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) + "\n"
        dump = json.JSONEncoder(ensure_ascii=False).encode
        lines = []
        for key, value in doc.items():
            if isinstance(value, list) and value:
                items = ",\n".join(f"    {dump(item)}" for item in value)
                lines.append(f"  {dump(key)}: [\n{items}\n  ]")
            else:
                lines.append(f"  {dump(key)}: {dump(value)}")
        return printable_json("{\n" + ",\n".join(lines) + "\n}\n")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Report:
        """Build a report from :meth:`to_dict` output.

        A ``weighttie.report/1`` document (written before cost was recorded) reads
        too, with every cost field unknown (None).

        Raises:
            ReportFormatError: the document is not a ``weighttie.report/3`` (or /2, /1) report.
        """
        if not isinstance(doc, Mapping):
            raise ReportFormatError(
                f"expected a JSON object with schema {SCHEMA!r}; received: {type(doc).__name__}"
            )
        schema = doc.get("schema")
        if schema not in (SCHEMA, SCHEMA_2, SCHEMA_1):
            raise ReportFormatError(
                f"expected a report with schema {SCHEMA!r} (or {SCHEMA_2!r}, {SCHEMA_1!r}); "
                f"received: schema={schema!r}"
            )
        try:
            return _report_from_dict(doc, with_cost=schema != SCHEMA_1)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportFormatError(
                f"report document does not follow {schema}: {type(exc).__name__}: {exc}"
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """Build a report from :meth:`to_json` output.

        Raises:
            ReportFormatError: the text is not JSON (or not UTF-8), nests deeper than
                the parser follows, or is not a ``weighttie.report/3`` (or /2, /1) report.
        """
        try:
            doc = json.loads(text)
        except RecursionError:
            raise ReportFormatError(
                f"report nests arrays or objects too deeply to be a {SCHEMA} report "
                "(which nests 7 levels)"
            ) from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ReportFormatError(f"report is not valid JSON: {exc}") from None
        return cls.from_dict(doc)


def read_report_json(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Read a JSON report file (``weighttie report --format json``) back into a Report.

    At most ``limits.report_bytes`` are read; a FIFO, a device or a directory is
    refused before it is opened.

    Example:
        >>> read_report_json("report.json").params.unique  # doctest: +SKIP
        497

    Raises:
        MissingFileError: nothing exists at ``path``.
        FileFormatError: ``path`` is not a regular file.
        LimitError: the file holds more than ``limits.report_bytes`` (limit ``report_bytes``).
        ReportFormatError: the file is not a ``weighttie.report/2`` (or /1) JSON report.
    """
    data = read_limited(
        path, limit=limits.report_bytes, limit_name="report_bytes", what="JSON report"
    )
    try:
        return Report.from_json(data)
    except ReportFormatError as exc:
        raise ReportFormatError(f"{str(path)!r}: {exc}") from None


# -- helpers --------------------------------------------------------------------


def resolve_layer(name_or_path: str, names: Mapping[str, str], model: str) -> str:
    """The path ``name_or_path`` means among ``names`` (path → layer name).

    A path matches itself; a bare name must match exactly one layer.

    Raises:
        LayerNotFoundError: nothing matches, or the name is ambiguous.
    """
    if name_or_path in names:
        return name_or_path
    matches = sorted(path for path, name in names.items() if name == name_or_path)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise LayerNotFoundError(
            f"layer name {name_or_path!r} is ambiguous: it matches {', '.join(matches)}; "
            "pass the full path instead"
        )
    raise LayerNotFoundError(
        f"no layer named {name_or_path!r} in model {model!r}; "
        f"known paths: {_preview(sorted(names))}"
    )


def _preview(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _shape_to_json(shape: Shape | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


def _shape_from_json(value: Any) -> Shape | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"a shape must be a list, got {type(value).__name__}")
    for d in value:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise TypeError(f"a shape dimension must be an integer or null, got {d!r}")
    return tuple(value)


def _bytes_to_dict(b: Bytes) -> dict[str, int | None]:
    return {"unique": b.unique, "per_use": b.per_use}


def _layer_to_dict(row: LayerInfo) -> dict[str, Any]:
    return {
        "name": row.name,
        "path": row.path,
        "parent": row.parent,
        "order": row.order,
        "class": row.class_name,
        "uses": row.uses,
        "params": {
            "held": row.params.held,
            "unique": row.params.unique,
            "per_use": row.params.per_use,
        },
        "bytes": {
            "held": row.bytes.held,
            "unique": row.bytes.unique,
            "per_use": row.bytes.per_use,
        },
        "macs": row.macs,
        "variables": list(row.variables),
        "nodes": None
        if row.nodes is None
        else [
            {
                "index": n.index,
                "inbound": [[r.layer, r.node_index, r.tensor_index] for r in n.inbound],
                "input_shapes": [_shape_to_json(s) for s in n.input_shapes],
                "output_shapes": [_shape_to_json(s) for s in n.output_shapes],
                "macs": n.macs,
            }
            for n in row.nodes
        ],
    }


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _optional_int(value: Any) -> int | None:
    """An integer, or None: a count the source could not tell."""
    return None if value is None else _int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _bytes_from_dict(doc: Mapping[str, Any]) -> Bytes:
    return Bytes(unique=_optional_int(doc["unique"]), per_use=_optional_int(doc["per_use"]))


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return tuple(_str(v) for v in value)


def _node_from_dict(doc: Mapping[str, Any], with_cost: bool) -> CallNode:
    inbound = []
    for ref in doc["inbound"]:
        layer, node_index, tensor_index = ref
        inbound.append(InboundRef(_str(layer), _int(node_index), _int(tensor_index)))
    return CallNode(
        index=_int(doc["index"]),
        inbound=tuple(inbound),
        input_shapes=tuple(_shape_from_json(s) for s in doc["input_shapes"]),
        output_shapes=tuple(_shape_from_json(s) for s in doc["output_shapes"]),
        macs=_optional_int(doc["macs"]) if with_cost else None,
    )


def _layer_bytes_from_dict(doc: Mapping[str, Any]) -> LayerBytes:
    return LayerBytes(
        held=_optional_int(doc["held"]),
        unique=_optional_int(doc["unique"]),
        per_use=_optional_int(doc["per_use"]),
    )


def _with_parents(layers: tuple[LayerInfo, ...]) -> tuple[LayerInfo, ...]:
    """Rows of a document older than ``parent``, given one: the path without the name, or
    the nearest prefix that is a row (a tf_keras name may hold "/")."""
    paths = {row.path for row in layers}

    def parent(row: LayerInfo) -> str | None:
        if row.path == "":
            return None
        suffix = "/" + row.name
        candidate = (
            row.path[: -len(suffix)]
            if row.name and row.path.endswith(suffix)
            else row.path.rpartition("/")[0]
        )
        while candidate and candidate not in paths:
            candidate = candidate.rpartition("/")[0]
        return candidate

    return tuple(replace(row, parent=parent(row)) for row in layers)


def _variable_name(path: str) -> str:
    """A variable's name in a document older than ``name``: its path's last part."""
    name = path.rpartition("/")[2]
    stem, mark, number = name.rpartition("#")
    return stem if mark and number.isdigit() else name


def _calls_note(notes: tuple[str, ...], unknown: bool) -> str | None:
    """A document older than ``calls_note``: the note on calls, where counts are unknown."""
    if not unknown:
        return None
    return next((note for note in notes if "call" in note), "how often some layers run is unknown")


def _running(variable: Mapping[str, Any], uses: Mapping[str, int | None]) -> tuple[str, ...]:
    """The readers of a variable in a document older than ``read_by``: its holders that run."""
    return tuple(p for p in _strs(variable["layers"]) if uses.get(p) != 0)


def _report_from_dict(doc: Mapping[str, Any], *, with_cost: bool = True) -> Report:
    """A report from its JSON document; a /1 document (``with_cost`` false) has no cost."""
    m = doc["model"]
    p = doc["params"]
    cost = UNKNOWN_COST
    if with_cost:
        c = doc["cost"]
        cost = Cost(
            bytes=_bytes_from_dict(c["bytes"]),
            macs=_optional_int(c["macs"]),
            uncounted=_int(c["uncounted"]),
        )
    layers = tuple(
        LayerInfo(
            name=_str(row["name"]),
            path=_str(row["path"]),
            class_name=_str(row["class"]),
            uses=_optional_int(row["uses"]),
            params=LayerParams(
                held=_int(row["params"]["held"]),
                unique=_int(row["params"]["unique"]),
                per_use=_optional_int(row["params"]["per_use"]),
            ),
            variables=_strs(row["variables"]),
            nodes=None
            if row["nodes"] is None
            else tuple(_node_from_dict(n, with_cost) for n in row["nodes"]),
            order=_int(row.get("order", i)),
            bytes=_layer_bytes_from_dict(row["bytes"]) if with_cost else UNKNOWN_LAYER_BYTES,
            macs=_optional_int(row["macs"]) if with_cost else None,
            parent=_optional_str(row["parent"]) if "parent" in row else None,
        )
        for i, row in enumerate(doc["layers"])
    )
    if any("parent" not in row for row in doc["layers"]):  # before /3: from the paths
        layers = _with_parents(layers)
    uses = {row.path: row.uses for row in layers}
    variables = tuple(
        VariableInfo(
            path=_str(v["path"]),
            shape=tuple(_int(d) for d in v["shape"]),
            dtype=_str(v["dtype"]),
            trainable=bool(v["trainable"]),
            size=_int(v["size"]),
            layers=_strs(v["layers"]),
            uses=_optional_int(v["uses"]),
            bytes=_optional_int(v["bytes"]) if with_cost else None,
            read_by=_strs(v["read_by"]) if "read_by" in v else _running(v, uses),
            name=_str(v["name"]) if "name" in v else _variable_name(_str(v["path"])),
        )
        for v in doc["variables"]
    )
    groups = tuple(
        SharingGroup(
            kind=GroupKind(g["kind"]),
            layers=_strs(g["layers"]),
            variables=_strs(g["variables"]),
            params=_int(g["params"]),
            calls=_optional_int(g["calls"]),
            duplicated=_optional_int(g["duplicated"]),
            bytes=_bytes_from_dict(g["bytes"]) if with_cost else Bytes(None, None),
        )
        for g in doc["groups"]
    )
    ties = tuple(
        Tie(
            source=_str(t["source"]),
            target=_str(t["target"]),
            variables=_strs(t["variables"]),
            bound=bool(t["bound"]),
        )
        for t in doc.get("ties", [])
    )
    findings = tuple(
        Finding(
            kind=FindingKind(f["kind"]),
            layers=_strs(f["layers"]),
            params=_int(f["params"]),
            message=_str(f["message"]),
        )
        for f in doc.get("findings", [])
    )
    return Report(
        model=ModelInfo(
            name=_str(m["name"]),
            class_name=_str(m["class"]),
            source=Source(m["source"]),
            file=_optional_str(m.get("file")),
            keras_version=_optional_str(m.get("keras_version")),
            notes=_strs(m.get("notes", [])),
            calls_note=_optional_str(m["calls_note"])
            if "calls_note" in m
            else _calls_note(_strs(m.get("notes", [])), p["per_use"] is None),
        ),
        params=Params(
            unique=_int(p["unique"]),
            per_use=_optional_int(p["per_use"]),
            duplicated=_optional_int(p["duplicated"]),
            trainable_unique=_int(p["trainable_unique"]),
            non_trainable_unique=_int(p["non_trainable_unique"]),
        ),
        layers=layers,
        variables=variables,
        groups=groups,
        ties=ties,
        findings=findings,
        cost=cost,
    )

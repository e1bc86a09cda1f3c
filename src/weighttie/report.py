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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from weighttie.errors import LayerNotFoundError

__all__ = [
    "SCHEMA",
    "Bytes",
    "CallNode",
    "Cost",
    "Finding",
    "FindingKind",
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
    "Source",
    "Tie",
    "VariableInfo",
    "resolve_layer",
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
    TRACED = "traced"
    """A file's model built through Keras from its config without weight values, then
    analyzed: calls and uses are Keras's, no value was read (docs/traced.md)."""


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
    ``Params.unique``). ``per_use``: the sizes its runs read in one forward pass,
    ``held`` × the layer's uses for Keras's own layers (rows sum to
    ``Params.per_use``); None where the uses are unknown. ``inside``: unique sizes of
    the variables held by this row and every row inside it (a nested model, an RNN
    holding its cell): what ``model.summary()`` shows on a container's row; never
    added to the others, which already count them.
    """

    held: int
    unique: int
    per_use: int | None
    inside: int = 0


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
    """What was analyzed and how (``source``: live, traced, loaded or static).

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

    # -- JSON contract (weighttie.report_json) --------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data (``weighttie.report/3``)."""
        from weighttie.report_json import report_to_dict

        return report_to_dict(self)

    def to_json(self, *, compact: bool = False) -> str:
        """Return the report as JSON text (:func:`weighttie.report_json.report_to_json`)."""
        from weighttie.report_json import report_to_json

        return report_to_json(self, compact=compact)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Report:
        """Build a report from :meth:`to_dict` output (/2 and /1 documents read too).

        Raises:
            ReportFormatError: the document is not a ``weighttie.report/3`` (or /2, /1)
                report.
        """
        from weighttie.report_json import report_from_dict

        return report_from_dict(doc)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """Build a report from :meth:`to_json` output.

        Raises:
            ReportFormatError: the text is not JSON (or not UTF-8), nests deeper than
                the parser follows, or is not a ``weighttie.report/3`` (or /2, /1) report.
        """
        from weighttie.report_json import report_from_json

        return report_from_json(text)

    def _repr_html_(self) -> str:
        """The picture, inline in a Jupyter notebook (docs/picture.md)."""
        from weighttie.picture import to_html

        return to_html(self, fragment=True)


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

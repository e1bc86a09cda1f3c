"""The one build: from raw layer and variable facts to a Report.

Both front ends (the live walker in ``walk.py`` and the static reader in
``static/``) describe a model with the same facts (:mod:`weighttie.facts`): one
:class:`~weighttie.facts.RawLayer` per layer *occurrence* (a path), one
:class:`~weighttie.facts.RawVariable` per variable *object*, keyed by identity,
the declared ties, and access to configs and values. :func:`build_report` turns
those facts into a :class:`~weighttie.report.Report`, findings included, in one
build; all counting rules live here, once, so the two front ends cannot disagree
about what sharing means.

The counting rules (docs/concepts.md):

* ``uses(row) = calls(row) × uses(parent)``; the analyzed model runs once.
* ``uses(variable) = Σ uses(row)`` over the rows that hold it directly.
* ``unique = Σ size``; ``per_use = Σ size × uses``; ``duplicated = per_use − unique``.
* bytes likewise, with ``bytes(variable) = size × dtype width`` (:mod:`weighttie.dtypes`);
  MACs per call from :func:`weighttie.layers.call_macs`, a nested model's call as the
  sum of its inner calls, and ``macs = Σ call MACs × uses(parent)`` (docs/cost.md).

This module imports no Keras.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace

from weighttie.collector import collector_paused
from weighttie.dtypes import variable_bytes
from weighttie.facts import ROOT, ModelFacts, RawLayer, RawVariable, ValueAccess, join_path
from weighttie.layers import HeldWeights, Weight, call_macs, counts_zero_macs
from weighttie.report import (
    Bytes,
    CallNode,
    Cost,
    Finding,
    GroupKind,
    LayerBytes,
    LayerInfo,
    LayerParams,
    Params,
    Report,
    SharingGroup,
    VariableInfo,
)

__all__ = ["build_report"]


@collector_paused()
def build_report(facts: ModelFacts, *, findings: bool = True) -> Report:
    """Derive uses, counts, sharing groups and (with ``findings``) findings from facts.

    ``facts.layers`` must list every parent before its children (pre-order), and may
    include a row at :data:`ROOT` for the model itself. Findings that read configs
    or values need ``facts.access``; the front end's own (``facts.findings``,
    ``facts.differing_ties``) need nothing more.
    """
    c = _Counts.of(facts)
    macs = _macs(facts.layers, c.uses, c.var_by_key)
    report = Report(
        model=replace(facts.model, calls_note=_calls_note(facts, c.uses)),
        params=c.params(),
        layers=tuple(sorted(_layer_infos(c, macs), key=lambda r: r.path)),
        variables=tuple(sorted(_variable_infos(c), key=lambda v: v.path)),
        groups=tuple(_groups(c)),
        ties=tuple(sorted(facts.ties, key=lambda t: (t.target, t.source))),
        cost=Cost(
            bytes=_bytes(c.nbytes, {} if c.per_use is None else c.var_uses, list(c.holders)),
            macs=macs.total,
            uncounted=macs.uncounted,
        ),
    )
    if not findings:
        return report
    found = [*facts.findings, *_differing_ties(facts, c.var_path)]
    if facts.access is not None:
        models = {row.path for row in facts.layers if row.is_model}
        derived = _derived_findings(report, facts.access, c.var_path, models)
        found += _without_unclear_copies(derived, facts.unclear_copies)
    if found:
        report = replace(report, findings=tuple(sorted(found, key=lambda f: (f.kind, f.layers))))
    return report


@dataclass(frozen=True)
class _Counts:
    """What every part of a report is counted from, derived once from the facts."""

    facts: ModelFacts
    rows: dict[str, RawLayer]
    var_by_key: dict[Hashable, RawVariable]
    uses: dict[str, int | None]  # runs of each row in one forward pass
    holders: dict[Hashable, list[str]]  # the rows holding each variable
    reads: dict[str, dict[Hashable, int | None]]  # what each row's runs read, per pass
    readers: dict[Hashable, list[str]]  # the rows reading each variable
    var_path: dict[Hashable, str]
    size: dict[Hashable, int]
    var_uses: dict[Hashable, int | None]
    nbytes: dict[Hashable, int | None]
    owned: dict[str, list[Hashable]]  # the variables each row is counted under
    per_use: int | None

    @classmethod
    def of(cls, facts: ModelFacts) -> _Counts:
        layers = facts.layers
        var_by_key = {v.key: v for v in facts.variables}
        uses = _uses(layers)
        holders = _holders(layers)
        reads = _reads(layers, uses, holders)
        readers = _readers(reads)
        size = {key: math.prod(var_by_key[key].shape) for key in holders}
        var_uses = {key: _sum(reads[p][key] for p in readers.get(key, ())) for key in holders}
        owned: dict[str, list[Hashable]] = defaultdict(list)
        for key, paths in holders.items():
            owned[_owner(paths, var_by_key[key], uses)].append(key)
        # A row of unknown uses may run a layer held elsewhere (a custom layer calling
        # the embedding a graph layer holds): then no total that counts uses is known.
        some_unknown = any(u is None for u in uses.values())
        return cls(
            facts=facts,
            rows={row.path: row for row in layers},
            var_by_key=var_by_key,
            uses=uses,
            holders=holders,
            reads=reads,
            readers=readers,
            var_path=_variable_paths(holders, var_by_key, uses),
            size=size,
            var_uses=var_uses,
            nbytes={key: variable_bytes(size[key], var_by_key[key].dtype) for key in holders},
            owned=owned,
            per_use=None if some_unknown else _sum(_product(size[k], var_uses[k]) for k in holders),
        )

    def params(self) -> Params:
        unique = sum(self.size.values())
        trainable = sum(self.size[k] for k in self.holders if self.var_by_key[k].trainable)
        return Params(
            unique=unique,
            per_use=self.per_use,
            duplicated=None if self.per_use is None else self.per_use - unique,
            trainable_unique=trainable,
            non_trainable_unique=unique - trainable,
        )


def _inside(layers: Sequence[RawLayer]) -> dict[str, set[Hashable]]:
    """The variables held by each row and every row inside it."""
    inside: dict[str, set[Hashable]] = {}
    for row in reversed(layers):  # children before parents
        inside.setdefault(row.path, set()).update(row.variables)
        if row.parent is not None and row.path != ROOT:
            inside.setdefault(row.parent, set()).update(inside[row.path])
    return inside


def _layer_infos(c: _Counts, macs: _Macs) -> list[LayerInfo]:
    """One row per layer occurrence, in model order (``order``)."""
    inside = _inside(c.facts.layers)
    infos: list[LayerInfo] = []
    for row in c.facts.layers:
        held_keys = list(dict.fromkeys(row.variables))
        if row.path == ROOT and not held_keys:
            continue
        reads, uses = c.reads[row.path], c.uses[row.path]
        infos.append(
            LayerInfo(
                name=row.name,
                path=row.path,
                class_name=row.class_name,
                uses=uses,
                params=LayerParams(
                    held=sum(c.size[k] for k in held_keys),
                    unique=sum(c.size[k] for k in c.owned[row.path]),
                    per_use=_read_total(c.size, reads, uses),
                    inside=sum(c.size[k] for k in inside[row.path]),
                ),
                variables=tuple(sorted(c.var_path[k] for k in held_keys)),
                nodes=macs.nodes.get(row.path, row.nodes),
                order=len(infos),  # facts list layers in model order
                bytes=LayerBytes(
                    held=_sum(c.nbytes[k] for k in held_keys),
                    unique=_sum(c.nbytes[k] for k in c.owned[row.path]),
                    per_use=_read_total(c.nbytes, reads, uses),
                ),
                macs=macs.rows.get(row.path),
                parent=row.parent,
            )
        )
    return infos


def _variable_infos(c: _Counts) -> list[VariableInfo]:
    return [
        VariableInfo(
            path=c.var_path[key],
            shape=c.var_by_key[key].shape,
            dtype=c.var_by_key[key].dtype,
            trainable=c.var_by_key[key].trainable,
            size=c.size[key],
            layers=tuple(sorted(paths)),
            uses=c.var_uses[key],
            read_by=tuple(sorted(c.readers.get(key, ()))),
            name=c.var_by_key[key].name,
            bytes=c.nbytes[key],
        )
        for key, paths in c.holders.items()
    ]


def _groups(c: _Counts) -> list[SharingGroup]:
    """Every sharing group, sorted by layers then kind, with its bytes."""
    calls = {row.path: row.runs for row in c.facts.layers}
    groups = _call_groups(
        c.facts.layers, c.rows, calls, c.uses, c.size, c.var_path
    ) + _cross_layer_groups(c.rows, c.holders, c.reads, c.readers, c.uses, c.size, c.var_path)
    groups.sort(key=lambda g: (g.layers, g.kind.value))
    key_of = {path: key for key, path in c.var_path.items()}
    return [
        replace(g, bytes=_bytes(c.nbytes, c.var_uses, [key_of[p] for p in g.variables]))
        for g in groups
    ]


# -- cost ---------------------------------------------------------------------------


def _sum(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any term is unknown."""
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _product(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def _bytes(
    nbytes: dict[Hashable, int | None],
    var_uses: dict[Hashable, int | None],
    keys: Sequence[Hashable],
) -> Bytes:
    """Bytes of ``keys`` stored once and at every use (unknown for a key without uses)."""
    return Bytes(
        unique=_sum(nbytes[k] for k in keys),
        per_use=_sum(_product(nbytes[k], var_uses.get(k)) for k in keys),
    )


@dataclass
class _Macs:
    """MACs as :func:`build_report` attaches them: per call, per row, in total."""

    nodes: dict[str, tuple[CallNode, ...]]  # rows with calls, each call's macs filled
    rows: dict[str, int | None]  # per forward pass
    total: int | None
    uncounted: int


def _macs(
    layers: Sequence[RawLayer],
    uses: dict[str, int | None],
    var_by_key: dict[Hashable, RawVariable],
) -> _Macs:
    """MACs of every call in the graph; a call's sublayers (an LSTM's cell) count in it.

    A row with calls whose children have calls too is a graph container (a nested
    functional model): each of its calls costs the sum of its inner calls. Any
    other row with calls is costed by :func:`weighttie.layers.call_macs` over its
    own and its sublayers' variables. The total counts each leaf call × the uses
    of its parent, so a tower called twice counts twice. A layer outside any
    graph call (a subclassed model's) computes an unknown number of times:
    it is uncounted, unless its class counts 0 or it only contains others.
    """
    children: dict[str | None, list[RawLayer]] = defaultdict(list)
    for row in layers:
        if row.path != ROOT:
            children[row.parent or ROOT].append(row)
    held: dict[str, HeldWeights] = {}
    for row in reversed(layers):  # children before parents
        held[row.path] = HeldWeights(
            class_name=row.class_name,
            own=tuple(
                Weight(var_by_key[k].name, var_by_key[k].shape)
                for k in dict.fromkeys(row.variables)
            ),
            sublayers={c.name: held[c.path] for c in children.get(row.path, ())},
        )

    nodes: dict[str, tuple[CallNode, ...]] = {}
    per_run: dict[str, int | None] = {}  # one run of each row's calls together
    leaves: list[RawLayer] = []
    for row in reversed(layers):
        if row.nodes is None:
            continue
        inner = [c for c in children.get(row.path, ()) if c.nodes is not None]
        if inner:  # a graph container: every call runs the whole inner graph once
            cost = _sum(per_run[c.path] for c in inner)
            filled = tuple(replace(n, macs=cost) for n in row.nodes)
        else:
            leaves.append(row)
            filled = tuple(
                replace(
                    n,
                    macs=call_macs(row.class_name, held[row.path], n.input_shapes, n.output_shapes),
                )
                for n in row.nodes
            )
        nodes[row.path] = filled
        per_run[row.path] = _sum(n.macs for n in filled)

    rows: dict[str, int | None] = {}
    for row in layers:
        if row.nodes is not None:
            base = 1 if row.parent is None else uses.get(row.parent or ROOT)
            rows[row.path] = _product(per_run[row.path], base)

    total, uncounted = 0, 0
    for row in leaves:
        if uses.get(row.path) == 0:
            continue
        value = rows[row.path]
        if value is None:
            uncounted += 1
        else:
            total += value
    uncounted += _outside_calls(layers, uses, children)
    return _Macs(
        nodes=nodes,
        rows=rows,
        total=None if not total and uncounted else total,  # "at least 0" says nothing
        uncounted=uncounted,
    )


def _outside_calls(
    layers: Sequence[RawLayer],
    uses: dict[str, int | None],
    children: dict[str | None, list[RawLayer]],
) -> int:
    """Layers that compute outside every graph call (a subclassed model's), uncounted:
    not a sublayer of a costed call, not of a class that computes nothing, and not a
    mere container of others."""
    uncounted = 0
    covered = {row.path for row in layers if row.nodes is not None}
    for row in layers:
        if row.path == ROOT or row.nodes is not None or uses.get(row.path) == 0:
            continue
        if row.parent in covered:
            covered.add(row.path)  # a sublayer of a costed call: its cost is in that call
            continue
        if counts_zero_macs(row.class_name):
            continue
        if row.variables or not children.get(row.path):
            uncounted += 1
    return uncounted


#: Why calls are unknown, where a front end did not say.
CALLS_NOTE = "how often some layers run is unknown; --load on a .keras file counts it"


def _calls_note(facts: ModelFacts, uses: dict[str, int | None]) -> str | None:
    """Why some rows' uses are unknown (the front end's sentence), or None when none is."""
    if all(u is not None for u in uses.values()):
        return None
    return facts.calls_note or CALLS_NOTE


def _differing_ties(facts: ModelFacts, var_path: dict[Hashable, str]) -> list[Finding]:
    """A ``broken-tie`` finding for each declared tie whose saved copies differ."""
    from weighttie.findings import differing_tie

    return [
        differing_tie(
            tie.source,
            tie.target,
            [(var_path[t], var_path[s]) for t, s in tie.copies],
            tie.params,
        )
        for tie in facts.differing_ties
    ]


def _derived_findings(
    report: Report, access: ValueAccess, var_path: dict[Hashable, str], models: set[str]
) -> list[Finding]:
    """``broken-tie`` and ``twin-branches``, reading configs and values through ``access``."""
    from weighttie.findings import find_findings

    key_of = {path: key for key, path in var_path.items()}
    read = access.chunks
    chunks = None if read is None else (lambda path: read(key_of[path]))
    found = find_findings(report, fingerprint=access.fingerprint, chunks=chunks, models=models)
    return list(found)


def _without_unclear_copies(found: list[Finding], unclear: frozenset[str]) -> list[Finding]:
    """The findings not made of copies the file cannot tell from one variable: those
    whose every layer is a row of ``ModelFacts.unclear_copies`` or holds one."""
    if not unclear:
        return found

    def covered(path: str) -> bool:
        return any(p == path or p.startswith(path + "/") for p in unclear)

    return [f for f in found if not all(covered(p) for p in f.layers)]


def _uses(layers: Sequence[RawLayer]) -> dict[str, int | None]:
    """How many times each row runs in one forward pass: its runs × its parent's uses."""
    uses: dict[str, int | None] = {ROOT: 1}
    for row in layers:
        base = 1 if row.parent is None else uses[row.parent]
        uses[row.path] = _product(row.runs, base) if row.path != ROOT else 1
    return uses


def _first_holder(paths: list[str], uses: dict[str, int | None]) -> str:
    """The holder a variable is named after and counted under: the smallest path among
    those that run (a head holding the embedding it reads, never running it, is not)."""
    return min(paths, key=lambda p: (uses.get(p) == 0, p))


def _owner(paths: list[str], variable: RawVariable, uses: dict[str, int | None]) -> str:
    """The holder a variable is named after: the one its source names, else the first."""
    owner = variable.owner
    return owner if owner is not None and owner in paths else _first_holder(paths, uses)


def _holders(layers: Sequence[RawLayer]) -> dict[Hashable, list[str]]:
    """The rows holding each variable directly, in row order (a row holds a variable once)."""
    holders: dict[Hashable, list[str]] = defaultdict(list)
    for row in layers:
        for key in dict.fromkeys(row.variables):
            holders[key].append(row.path)
    return holders


def _reads(
    layers: Sequence[RawLayer], uses: dict[str, int | None], holders: dict[Hashable, list[str]]
) -> dict[str, dict[Hashable, int | None]]:
    """How many times each row's runs read each variable in one forward pass.

    A row that states its reads (``RawLayer.reads``, per run of its parent) reads
    those, times its parent's uses; any other reads every variable it holds at each
    of its runs. Variables no row holds are not counted (``count_params`` does not
    count them either).
    """
    result: dict[str, dict[Hashable, int | None]] = {}
    for row in layers:
        if row.reads is None:
            result[row.path] = {key: uses[row.path] for key in dict.fromkeys(row.variables)}
            continue
        base = 1 if row.parent is None else uses[row.parent]
        result[row.path] = {key: _product(n, base) for key, n in row.reads if key in holders}
    return result


def _read_total(
    amount: dict[Hashable, int] | dict[Hashable, int | None],
    reads: dict[Hashable, int | None],
    uses: int | None,
) -> int | None:
    """Σ amount × reads over what one row reads; unknown where the row's uses are."""
    if uses is None:
        return None
    return _sum(_product(amount[k], n) for k, n in reads.items())


def _readers(reads: dict[str, dict[Hashable, int | None]]) -> dict[Hashable, list[str]]:
    """The rows whose runs read each variable (or may: an unknown count), in row order."""
    readers: dict[Hashable, list[str]] = defaultdict(list)
    for path, counts in reads.items():
        for key, n in counts.items():
            if n != 0:
                readers[key].append(path)
    return readers


def _variable_paths(
    holders: dict[Hashable, list[str]],
    var_by_key: dict[Hashable, RawVariable],
    uses: dict[str, int | None],
) -> dict[Hashable, str]:
    """Name each variable after its first holder (:func:`_first_holder`) and its own name."""
    taken: set[str] = set()
    result: dict[Hashable, str] = {}
    owners = {key: _owner(paths, var_by_key[key], uses) for key, paths in holders.items()}
    # Visit in a deterministic order: by owner path, then by holding order.
    for key in sorted(holders, key=lambda k: owners[k]):
        candidate = join_path(owners[key], var_by_key[key].name)
        path, n = candidate, 1
        while path in taken:
            n += 1
            path = f"{candidate}#{n}"
        taken.add(path)
        result[key] = path
    return result


def _subtree_variables(
    start: str, children: dict[str, list[str]], rows: dict[str, RawLayer]
) -> set[Hashable]:
    found: set[Hashable] = set()
    stack = [start]
    while stack:
        path = stack.pop()
        found.update(rows[path].variables)
        stack.extend(children.get(path, ()))
    return found


def _call_groups(
    layers: Sequence[RawLayer],
    rows: dict[str, RawLayer],
    calls: dict[str, int | None],
    uses: dict[str, int | None],
    size: dict[Hashable, int],
    var_path: dict[Hashable, str],
) -> list[SharingGroup]:
    """One group per layer object called more than once (shared-layer / shared-model).

    Where some occurrence's calls are unknown, a layer whose known calls are 2 or
    more is a group of unknown ``calls`` and ``duplicated``; one with fewer is none
    (not known to be shared: the report's totals say unknown).
    """
    children: dict[str, list[str]] = defaultdict(list)
    by_identity: dict[Hashable, list[RawLayer]] = defaultdict(list)
    for row in layers:
        if row.path == ROOT:
            continue
        children[row.parent or ROOT].append(row.path)
        by_identity[row.identity].append(row)

    groups = []
    for occurrences in by_identity.values():
        known_calls = sum(calls[r.path] or 0 for r in occurrences)
        if known_calls < 2:
            continue
        total_calls = _sum(calls[r.path] for r in occurrences)
        occurrences = [r for r in occurrences if calls[r.path] != 0]
        keys = _subtree_variables(occurrences[0].path, children, rows)
        if not keys:
            continue  # a weightless layer (Concatenate, Activation) shares nothing
        params = sum(size[k] for k in keys)
        bases = [uses[r.parent or ROOT] for r in occurrences]
        run = _sum(uses[r.path] for r in occurrences)
        base = None if None in bases else max(b for b in bases if b is not None)
        groups.append(
            SharingGroup(
                kind=GroupKind.SHARED_MODEL if occurrences[0].is_model else GroupKind.SHARED_LAYER,
                layers=tuple(sorted(r.path for r in occurrences)),
                variables=tuple(sorted(var_path[k] for k in keys)),
                params=params,
                calls=total_calls,
                duplicated=None if run is None or base is None else params * (run - base),
            )
        )
    return groups


def _cross_layer_groups(
    rows: dict[str, RawLayer],
    holders: dict[Hashable, list[str]],
    reads: dict[str, dict[Hashable, int | None]],
    readers: dict[Hashable, list[str]],
    uses: dict[str, int | None],
    size: dict[Hashable, int],
    var_path: dict[Hashable, str],
) -> list[SharingGroup]:
    """One group per set of distinct layers linked by variables they hold or read.

    A variable held by two layer objects (``tied``), or read by two, one of which does
    not hold it (``read-shared``: a head computing with ``emb.embeddings`` without
    calling ``emb``), links them; a layer reading a variable only it uses shares
    nothing, whoever holds it. The graph has a node
    per layer object and per such variable; its connected components are the
    groups (a→b on the kernel, b→c on the bias: one group). A component where some
    layer reads a variable it does not hold is ``read-shared``, else ``tied``.

    networkx is imported only when some variable links two layers: importing it
    costs a third of a second, more than the static reader's whole budget.
    """
    linked: dict[Hashable, set[Hashable]] = {}
    readers_only: set[Hashable] = set()  # variables some layer reads without holding
    for key, paths in holders.items():
        held_by = {rows[p].identity for p in paths}
        read_by = {rows[p].identity for p in readers.get(key, ())}
        if len(held_by) >= 2 or len(read_by) >= 2:
            linked[key] = held_by | read_by
            if read_by - held_by:
                readers_only.add(key)
    if not linked:
        return []
    import networkx as nx

    graph = nx.Graph()
    for key, identities in linked.items():
        for ident in identities:
            graph.add_edge(("variable", key), ("layer", ident))

    groups = []
    for component in nx.connected_components(graph):
        keys = [node[1] for node in component if node[0] == "variable"]
        reading = any(key in readers_only for key in keys)
        # Rows that only hold a layer run elsewhere (uses 0, no reads) are not listed.
        paths = sorted(
            {p for k in keys for p in holders[k] if uses[p] != 0}
            | {p for k in keys for p in readers.get(k, ())}
        )
        duplicated: int | None = 0
        for key in keys:
            per_identity: dict[Hashable, int] = defaultdict(int)
            for p in readers.get(key, ()):
                n = reads[p][key]
                if n is None:
                    duplicated = None
                    break
                per_identity[rows[p].identity] += n
            if duplicated is not None and per_identity:
                duplicated += size[key] * (sum(per_identity.values()) - max(per_identity.values()))
        identities = {node[1] for node in component if node[0] == "layer"}
        if reading:
            identities = {rows[p].identity for k in keys for p in readers.get(k, ())}
        groups.append(
            SharingGroup(
                kind=GroupKind.READ_SHARED if reading else GroupKind.TIED,
                layers=tuple(paths),
                variables=tuple(sorted(var_path[k] for k in keys)),
                params=sum(size[k] for k in keys),
                calls=len(identities),
                duplicated=duplicated,
            )
        )
    return groups

"""Findings: sharing that probably should be there and is not.

* ``broken-tie``: a tie a file declares whose saved copies hold different values
  (the tie cannot be bound: :func:`differing_tie`); and distinct variables in the
  same role (holding class and variable name) of distinct layers, with identical
  shape, dtype and values (a tie lost in a plain-Keras reload, or weights copied
  instead of shared). Copies that are all parts of one layer that is not a model
  (Gemma's key and value kernels in one attention layer) are not one. Values are
  hashed only for candidates that already match in shape and dtype, first a
  64 kB sample, then in full only where the samples collide, so big models stay
  fast. Patterned tensors (zero biases, unit gammas, an LSTM's unit-forget bias
  at initialization: a few distinct values, each repeated) are never evidence of
  a copy and are skipped.
* ``twin-branches``: nested models or layers with the same structure (layer classes
  and configs apart from names, variable shapes, wiring) holding separate variables,
  known to be parallel: they diverge in a functional graph and neither feeds the
  other. Typically a siamese model whose tower was built twice instead of called
  twice; a transformer's stack of blocks, in series, is not.

Both front ends supply what the Report does not hold: a config fingerprint per
layer path, and the bytes of a variable's values. This module imports no Keras.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from weighttie.dtypes import dtype_width
from weighttie.report import Finding, FindingKind, LayerInfo, Report

__all__ = ["FindingKind", "config_fingerprint", "differing_tie", "find_findings"]

#: Bytes hashed first; a full hash is computed only when two samples collide.
SAMPLE_BYTES = 64 * 1024
#: The first look at two candidates' values: random or trained tensors differ here.
PREFIX_BYTES = 256

#: Statistics a layer derives from its inputs: copies of them prove nothing that the
#: layer's own weights (gamma, beta) would not, and they are half of every BN layer.
_DERIVED = frozenset({"moving_mean", "moving_variance"})

#: ``chunks(variable_path)`` yields the variable's values as successive byte chunks.
Chunks = Callable[[str], Iterable[bytes]]
#: ``fingerprint(layer_path)`` is a hash of the layer's config without its name.
Fingerprint = Callable[[str], str | None]


_IGNORED_KEYS = frozenset({"name", "shared_object_id", "layers", "input_layers", "output_layers"})


def config_fingerprint(config: Any) -> str:
    """A hash of a layer config that ignores names (and Keras's serialization ids)."""

    def clean(value: Any, top: bool) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v, False)
                for k, v in value.items()
                if not (k in _IGNORED_KEYS and (top or k == "shared_object_id"))
            }
        if isinstance(value, list | tuple):
            return [clean(v, False) for v in value]
        return value

    text = json.dumps(clean(config, True), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_findings(
    report: Report,
    *,
    fingerprint: Fingerprint,
    chunks: Chunks | None,
    models: Collection[str] = (),
) -> tuple[Finding, ...]:
    """All findings of a report; ``chunks`` None skips ``broken-tie`` (no values).

    ``models`` are the paths of the layers that are models (the report's root always
    is): copies inside one layer that is not a model are parts of that layer, not a
    broken tie.
    """
    found = _twin_branches(report, fingerprint)
    if chunks is not None:
        found += _broken_ties(report, chunks, frozenset(models))
    return tuple(sorted(found, key=lambda f: (f.kind, f.layers)))


# -- broken ties ------------------------------------------------------------------


def _digest(chunks: Iterable[bytes], limit: int | None, width: int) -> tuple[str, bool, bool]:
    """Hash of the first ``limit`` bytes (all when None), whether they were patterned
    (:func:`_patterned`, reading elements ``width`` bytes wide), and whether that was
    the whole tensor.

    Stops reading at ``limit``: the chunks come from a generator that streams the file.
    """
    h = hashlib.blake2b(digest_size=16)
    distinct: set[bytes] | None = set()  # None once there are too many to be a pattern
    seen = 0
    complete = True
    for chunk in chunks:
        if limit is not None and seen + len(chunk) > limit:
            chunk = chunk[: limit - seen]
            complete = False
        if distinct is not None and chunk:
            distinct = _add_distinct(distinct, chunk, width)
        h.update(chunk)
        seen += len(chunk)
        if not complete:
            break
    patterned = distinct is not None and (
        len(distinct) == 1 or len(distinct) * _REPEATS * width <= seen
    )
    return h.hexdigest(), patterned, complete


#: A constant tensor, or one of at most this many distinct elements, each repeated
#: at least ``_REPEATS`` times on average, is *patterned*: what a deterministic initializer
#: writes (zeros, ones, an LSTM bias of zeros with a block of ones for the forget
#: gate). Every fresh layer of a kind holds the same one, so two equal copies of it
#: prove nothing; random or trained tensors have about as many distinct elements
#: as elements.
_PATTERN_VALUES = 16
_REPEATS = 4


def _add_distinct(distinct: set[bytes], chunk: bytes, width: int) -> set[bytes] | None:
    """``distinct`` with the ``width``-byte elements of ``chunk`` added; None past the cap."""
    if len(chunk) % width:
        width = 1
    first = chunk[:width]
    if chunk == first * (len(chunk) // width):  # one value throughout (zeros, ones): no NumPy
        distinct.add(bytes(first))
        return distinct if len(distinct) <= _PATTERN_VALUES else None
    import numpy as np

    view = np.frombuffer(chunk, dtype=f"V{width}")
    for value in np.unique(view[: _PATTERN_VALUES * 64]):  # a cheap first look
        distinct.add(value.tobytes())
        if len(distinct) > _PATTERN_VALUES:
            return None
    for value in np.unique(view):
        distinct.add(value.tobytes())
        if len(distinct) > _PATTERN_VALUES:
            return None
    return distinct


def _element_width(dtype: str) -> int:
    """Bytes per element of ``dtype`` (1 when its width is not known)."""
    width = dtype_width(dtype)
    return width if width in (1, 2, 4, 8, 16) else 1


def _common_ancestor(paths: Iterable[str]) -> str:
    """The deepest layer path containing every path (a path contains itself)."""
    split = [p.split("/") if p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return "/".join(common)


def _parts_of_one_layer(report: Report, group: list[str], models: frozenset[str]) -> bool:
    """Whether every copy belongs to one layer that is not a model (held by it or its
    sublayers, as ``layer.weights`` lists them): Gemma's key and value kernels inside
    one attention layer, equal at initialization, are two parts of it, not a tie."""
    holders = {p for path in group for p in report.variable(path).layers}
    ancestor = _common_ancestor(holders)
    return ancestor != "" and ancestor not in models


def _prefix(chunks: Iterable[bytes], size: int) -> bytes:
    """The first ``size`` bytes of a stream (stops reading there)."""
    out = b""
    for chunk in chunks:
        out += chunk[: size - len(out)]
        if len(out) >= size:
            break
    return out


def _same_prefix(paths: list[str], chunks: Chunks) -> list[tuple[bytes, list[str]]]:
    """``paths`` split by their first :data:`PREFIX_BYTES` bytes, groups of two or more only,
    each with those bytes (all of each tensor when fewer): random or trained tensors differ
    there, so most candidates cost one small read."""
    by_prefix: dict[bytes, list[str]] = defaultdict(list)
    for path in paths:
        by_prefix[_prefix(chunks(path), PREFIX_BYTES)].append(path)
    return [(prefix, group) for prefix, group in by_prefix.items() if len(group) > 1]


def _identical(paths: list[str], chunks: Chunks, width: int) -> list[list[str]]:
    """The groups of ``paths`` (one shape, dtype and role) holding identical, unpatterned
    values: a first bytes' look, then a sample's hash, then the whole tensors."""
    identical: list[list[str]] = []
    for prefix, candidates in _same_prefix(paths, chunks):
        if len(prefix) < PREFIX_BYTES:  # the whole tensors, read already: equal
            if not _digest((prefix,), None, width)[1]:  # and not patterned
                identical.append(sorted(candidates))
            continue
        samples: dict[str, list[str]] = defaultdict(list)
        whole: dict[str, tuple[str, bool]] = {}  # tensors the sample already covered
        for path in candidates:
            digest, patterned, complete = _digest(chunks(path), SAMPLE_BYTES, width)
            samples[digest].append(path)
            if complete:
                whole[path] = (digest, patterned)
        for same_sample in samples.values():
            if len(same_sample) < 2:
                continue
            # Only here are whole tensors read; a patterned one (all zeros, all ones,
            # an LSTM's initial bias) is equal to every other of its kind and proves
            # nothing.
            full: dict[str, list[str]] = defaultdict(list)
            for path in same_sample:
                digest, patterned = whole.get(path) or _digest(chunks(path), None, width)[:2]
                if not patterned:
                    full[digest].append(path)
            identical += [sorted(group) for group in full.values() if len(group) > 1]
    return identical


def _broken_ties(report: Report, chunks: Chunks, models: frozenset[str]) -> list[Finding]:
    # Candidates share shape, dtype and role (holder class, variable name): values are
    # read only between them, and no further than their first differing bytes.
    by_spec: dict[tuple[tuple[int, ...], str, tuple[str, str]], list[str]] = defaultdict(list)
    for v in report.variables:
        if v.name in _DERIVED:
            continue
        if v.size > 1 and any(report.layer(p).uses != 0 for p in v.layers):
            role = (report.layer(v.layers[0]).class_name, v.name)  # EinsumDense, kernel
            by_spec[(v.shape, v.dtype, role)].append(v.path)
    identical = [
        same
        for (_, dtype, _), paths in by_spec.items()
        if len(paths) > 1
        for same in _identical(paths, chunks, _element_width(dtype))
        if not _parts_of_one_layer(report, same, models)
    ]

    # One finding per set of holding layers: same/kernel + same/bias vs valid/…
    variables = {v.path: v for v in report.variables}
    by_layers: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for group in identical:
        holders = tuple(sorted({p for path in group for p in variables[path].layers}))
        by_layers[holders].append(group)
    findings = []
    for holders, groups in sorted(by_layers.items()):
        saved = sum(variables[g[0]].size * (len(g) - 1) for g in groups)
        names = "; ".join(" = ".join(g) for g in sorted(groups))
        findings.append(
            Finding(
                kind=FindingKind.BROKEN_TIE,
                layers=holders,
                params=saved,
                message=f"separate variables hold identical values ({names}): a tie lost in "
                "a plain-Keras reload, or weights copied instead of shared; "
                "weighttie.load_model or tie_weights binds them",
            )
        )
    return findings


def differing_tie(
    source: str, target: str, copies: Sequence[tuple[str, str]], params: int
) -> Finding:
    """The ``broken-tie`` finding of a declared tie whose saved copies hold different values.

    ``copies`` pairs each of the target's variables with the source's, by report
    path; ``params`` is what binding the tie would share.
    """
    names = "; ".join(f"{t} != {s}" for t, s in copies)
    return Finding(
        kind=FindingKind.BROKEN_TIE,
        layers=tuple(sorted({source, target})),
        params=params,
        message=f"the file ties {target} to {source}, but their saved copies hold different "
        f"values ({names}): the tie is not bound, and weighttie.load_model refuses the file; "
        "tie the layers again (tie_weights, keep= the values to share) and save the model",
    )


# -- twin branches ------------------------------------------------------------------


def _children(report: Report) -> dict[str, list[LayerInfo]]:
    """Each layer's sublayers in a name-free order: graph depth, class, variable count, path."""
    children: dict[str, list[LayerInfo]] = defaultdict(list)
    for row in report.layers:
        if row.parent is not None:
            children[row.parent].append(row)
    for siblings in children.values():
        depth = _graph_depths(siblings)
        siblings.sort(key=lambda r: (depth[r.path], r.class_name, len(r.variables), r.path))
    return children


def _graph_depths(siblings: list[LayerInfo]) -> dict[str, int]:
    """Longest path from the graph's inputs to each sibling (iterative: graphs can be deep)."""
    by_path = {r.path: r for r in siblings}
    parents = {
        r.path: sorted(
            {ref.layer for n in r.nodes or () for ref in n.inbound if ref.layer in by_path}
        )
        for r in siblings
    }
    depth: dict[str, int] = {}
    for start in by_path:
        stack = [(start, False)]
        on_path: set[str] = set()
        while stack:
            path, done = stack.pop()
            if done:
                on_path.discard(path)
                depth[path] = 1 + max(
                    (depth.get(p, 0) for p in parents[path] if p not in on_path), default=-1
                )
                continue
            if path in depth or path in on_path:
                continue
            on_path.add(path)
            stack.append((path, True))
            stack.extend((p, False) for p in parents[path] if p not in depth)
    return depth


def _signature(
    row: LayerInfo,
    children: dict[str, list[LayerInfo]],
    shapes: dict[str, tuple[tuple[int, ...], str]],
) -> Iterator[Any]:
    """The structure of a subtree with names replaced by positions."""
    rows = _subtree(row, children)
    index = {r.path: i for i, r in enumerate(rows)}
    for r in rows:
        yield (
            r.class_name,
            tuple(shapes[v] for v in r.variables),
            None
            if r.nodes is None or r is row
            else tuple(
                (
                    tuple(
                        (index.get(ref.layer, -1), ref.node_index, ref.tensor_index)
                        for ref in n.inbound
                    ),
                    n.input_shapes,
                )
                for n in r.nodes
            ),
        )


def _subtree(row: LayerInfo, children: dict[str, list[LayerInfo]]) -> list[LayerInfo]:
    """A subtree's rows in name-free pre-order (children in :func:`_children` order)."""
    rows, stack = [], [row]
    while stack:
        current = stack.pop()
        rows.append(current)
        stack.extend(reversed(children.get(current.path, [])))
    return rows


def _subtree_paths(row: LayerInfo, children: dict[str, list[LayerInfo]]) -> list[str]:
    """Paths of a subtree in the same order as :func:`_signature` lists it."""
    return [r.path for r in _subtree(row, children)]


def _twin_branches(report: Report, fingerprint: Fingerprint) -> list[Finding]:
    children = _children(report)
    shapes = {v.path: (v.shape, v.dtype) for v in report.variables}
    sizes = {v.path: v.size for v in report.variables}
    candidates: dict[tuple[Any, ...], list[LayerInfo]] = defaultdict(list)
    for row in report.layers:
        if row.path and children.get(row.path) and row.uses != 0:
            candidates[tuple(_signature(row, children, shapes))].append(row)

    by_path = {r.path: r for r in report.layers}
    # feeders[x]: the siblings whose outputs a call of x takes (its parent's graph)
    feeders = {
        r.path: {
            ref.layer
            for n in r.nodes or ()
            for ref in n.inbound
            if ref.layer in by_path and _parent(ref.layer, by_path) == _parent(r.path, by_path)
        }
        for r in report.layers
        if r.path
    }
    findings: list[Finding] = []
    claimed: set[str] = set()
    for rows in sorted(candidates.values(), key=lambda rs: min(r.path.count("/") for r in rs)):
        rows = [r for r in rows if not any(r.path.startswith(c + "/") for c in claimed)]
        if len(rows) < 2:
            continue
        subtrees = {r.path: _subtree_paths(r, children) for r in rows}
        held = {
            r.path: {v for p in subtrees[r.path] for v in report.layer(p).variables} for r in rows
        }
        if not all(held.values()):
            continue  # weightless twins: nothing to share
        # Twins must hold separate variables and have equal configs, layer by layer.
        by_config: dict[tuple[Any, ...], list[LayerInfo]] = defaultdict(list)
        for r in rows:
            prints = tuple(fingerprint(p) for p in subtrees[r.path])
            by_config[prints].append(r)
        for prints, twins in by_config.items():
            if len(twins) < 2 or None in prints:
                continue
            variables = [held[t.path] for t in twins]
            if any(a & b for i, a in enumerate(variables) for b in variables[i + 1 :]):
                continue  # they already share: not twins but one branch
            for parallel in _parallel_sets(twins, by_path, feeders):
                params = sum(sizes[v] for v in held[parallel[0].path])
                paths = tuple(sorted(t.path for t in parallel))
                claimed.update(paths)
                findings.append(
                    Finding(
                        kind=FindingKind.TWIN_BRANCHES,
                        layers=paths,
                        params=params * (len(parallel) - 1),
                        message=f"{' and '.join(paths)} have the same structure and configs "
                        f"but separate variables ({params:,} parameters each): build the branch "
                        "once and call it on each input to share it",
                    )
                )
    return findings


def _parent(path: str, by_path: dict[str, LayerInfo]) -> str:
    """The path holding ``path`` ("" for the model and its direct layers)."""
    row = by_path.get(path)
    return row.parent or "" if row is not None else ""


def _branch_roots(a: str, b: str, by_path: dict[str, LayerInfo]) -> tuple[str, str] | None:
    """The ancestors-or-selves of ``a`` and ``b`` that are siblings under their nearest
    common ancestor (``block_0/attn`` and ``block_1/attn`` → ``block_0``, ``block_1``)."""
    ancestors_a = [a]
    while ancestors_a[-1]:
        ancestors_a.append(_parent(ancestors_a[-1], by_path))
    common = set(ancestors_a)
    below_b = b
    while _parent(below_b, by_path) not in common and below_b:
        below_b = _parent(below_b, by_path)
    if not below_b or below_b in common:
        return None  # one is inside the other
    lca = _parent(below_b, by_path)
    below_a = next((p for p in ancestors_a if _parent(p, by_path) == lca), None)
    return None if below_a is None else (below_a, below_b)


def _feeds(source: str, target: str, feeders: dict[str, set[str]]) -> bool:
    """Whether ``source``'s output reaches ``target`` through their parent's graph."""
    stack, seen = [target], {target}
    while stack:
        for p in feeders.get(stack.pop(), ()):
            if p == source:
                return True
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return False


def _in_parallel(
    a: str, b: str, by_path: dict[str, LayerInfo], feeders: dict[str, set[str]]
) -> bool:
    """Whether two branches are known to be parallel: they diverge in a functional graph
    (both called in it) and neither feeds the other. Inside a subclassed model or a
    layer's own sublayers the wiring is unknown, so they are not known to be parallel."""
    roots = _branch_roots(a, b, by_path)
    if roots is None:
        return False
    ra, rb = roots
    if by_path[ra].nodes is None or by_path[rb].nodes is None:
        return False
    return not _feeds(ra, rb, feeders) and not _feeds(rb, ra, feeders)


def _parallel_sets(
    twins: list[LayerInfo], by_path: dict[str, LayerInfo], feeders: dict[str, set[str]]
) -> list[list[LayerInfo]]:
    """Twins split into sets of mutually parallel branches (in path order), two or more each:
    a stack of blocks in series (transformer_layer_0 → transformer_layer_1) gives none."""
    sets: list[list[LayerInfo]] = []
    for twin in sorted(twins, key=lambda t: t.path):
        for members in sets:
            if all(_in_parallel(m.path, twin.path, by_path, feeders) for m in members):
                members.append(twin)
                break
        else:
            sets.append([twin])
    return [members for members in sets if len(members) > 1]

"""Findings: sharing that probably should be there and is not.

* ``broken-tie``: a tie a file declares whose saved copies hold different values
  (the tie cannot be bound: :func:`differing_tie`); and distinct variables with
  identical shape, dtype and values (a tie
  lost in a plain-Keras reload, or weights copied instead of shared). Values are
  hashed only for candidates that already match in shape and dtype, first a
  64 kB sample, then in full only where the samples collide, so big models stay
  fast. Constant tensors (zero biases, unit gammas at initialization) are never
  evidence of a copy and are skipped.
* ``twin-branches``: nested models with the same structure (layer classes and
  configs apart from names, variable shapes, wiring) holding separate variables:
  typically a siamese model whose tower was built twice instead of called twice.

Both front ends supply what the Report does not hold: a config fingerprint per
layer path, and the bytes of a variable's values. This module imports no Keras.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from weighttie.report import Finding, FindingKind, LayerInfo, Report

__all__ = ["FindingKind", "config_fingerprint", "differing_tie", "find_findings"]

#: Bytes hashed first; a full hash is computed only when two samples collide.
SAMPLE_BYTES = 64 * 1024

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
    report: Report, *, fingerprint: Fingerprint, chunks: Chunks | None
) -> tuple[Finding, ...]:
    """All findings of a report; ``chunks`` None skips ``broken-tie`` (no values)."""
    found = _twin_branches(report, fingerprint)
    if chunks is not None:
        found += _broken_ties(report, chunks)
    return tuple(sorted(found, key=lambda f: (f.kind, f.layers)))


# -- broken ties ------------------------------------------------------------------


def _digest(chunks: Iterable[bytes], limit: int | None) -> tuple[str, bool, bool]:
    """Hash of the first ``limit`` bytes (all when None), whether they were all one value,
    and whether that was the whole tensor.

    Stops reading at ``limit``: the chunks come from a generator that streams the file.
    """
    h = hashlib.blake2b(digest_size=16)
    first: bytes | None = None
    constant = True
    seen = 0
    complete = True
    for chunk in chunks:
        if limit is not None and seen + len(chunk) > limit:
            chunk = chunk[: limit - seen]
            complete = False
        if constant and chunk:
            if first is None:
                first = chunk[:16]
            constant = _is_constant(chunk, first)
        h.update(chunk)
        seen += len(chunk)
        if not complete:
            break
    return h.hexdigest(), constant, complete


def _is_constant(chunk: bytes, first: bytes) -> bool:
    """Whether ``chunk`` repeats one element (judged by its first 1, 2, 4 or 8 bytes)."""
    for width in (8, 4, 2, 1):
        if len(first) >= width and len(chunk) % width == 0:
            unit = first[:width]
            return chunk == unit * (len(chunk) // width)
    return False


def _broken_ties(report: Report, chunks: Chunks) -> list[Finding]:
    by_spec: dict[tuple[tuple[int, ...], str], list[str]] = defaultdict(list)
    for v in report.variables:
        if v.path.rsplit("/", 1)[-1] in _DERIVED:
            continue
        if v.size > 1 and any(report.layer(p).uses > 0 for p in v.layers):
            by_spec[(v.shape, v.dtype)].append(v.path)
    identical: list[list[str]] = []
    for paths in by_spec.values():
        if len(paths) < 2:
            continue
        samples: dict[str, list[str]] = defaultdict(list)
        whole: dict[str, tuple[str, bool]] = {}  # tensors the sample already covered
        for path in paths:
            digest, constant, complete = _digest(chunks(path), SAMPLE_BYTES)
            samples[digest].append(path)
            if complete:
                whole[path] = (digest, constant)
        for candidates in samples.values():
            if len(candidates) < 2:
                continue
            # Only here are whole tensors read; a constant one (all zeros, all ones)
            # is equal to every other of its kind and proves nothing.
            full: dict[str, list[str]] = defaultdict(list)
            for path in candidates:
                digest, constant = whole.get(path) or _digest(chunks(path), None)[:2]
                if not constant:
                    full[digest].append(path)
            identical += [sorted(group) for group in full.values() if len(group) > 1]

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
        if row.path:
            children[row.path.rpartition("/")[0]].append(row)
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
        if row.path and children.get(row.path) and row.uses > 0:
            candidates[tuple(_signature(row, children, shapes))].append(row)

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
            params = sum(sizes[v] for v in variables[0])
            paths = tuple(sorted(t.path for t in twins))
            claimed.update(paths)
            findings.append(
                Finding(
                    kind=FindingKind.TWIN_BRANCHES,
                    layers=paths,
                    params=params * (len(twins) - 1),
                    message=f"{' and '.join(paths)} have the same structure and configs but "
                    f"separate variables ({params:,} parameters each): build the branch once and "
                    "call it on each input to share it",
                )
            )
    return findings

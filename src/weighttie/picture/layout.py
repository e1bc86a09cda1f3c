"""Where each call of a Report goes in a picture: a layered layout in integer pixels.

Reads only the Report; knows neither SVG nor HTML (:mod:`weighttie.picture`
draws what is placed here) and imports no Keras. What is placed:

- a **call item** for each call (``CallNode``) of a layer that holds no other layer;
- a **frame** for each layer that has calls *and* holds other layers (a nested
  model, an LSTM holding its cell …): one item of its parent's graph, with the
  layer's own calls side by side in a header row and the layers it holds laid out
  inside. A frame is drawn once however often it is called: the report describes
  the inner graph once (its layers have one set of calls and one set of
  variables), so one frame is one set of weights, and its calls in the header are
  the sharing. Edges from outside enter a frame at the call they feed, and leave
  from its bottom edge under the call that produced them;
- a **fold** for each run of at least :data:`FOLD_MIN` identical blocks in a chain
  (see :func:`layout`): one more frame whose body is the run;
- a **chip** for each layer with unknown calls (``nodes is None``: layers of a
  subclassed model, a sublayer such as an LSTM's cell) or with no calls, in rows
  below the graph of the frame (or model) that holds it. Chips are not calls.

How: each frame's contents are laid out on their own (deepest frames first) and
the frame becomes one item of its parent's graph. Within one graph, cycles (a
nested model whose second call consumes its first call's output; a hostile
report) are broken by reversing back edges of a depth-first search; items go into
bands by topological generation (networkx); a long edge gets a slot in each band
it crosses (within a budget; beyond it, it is drawn as one curve); barycenter
sweeps order each band; and x positions follow the edges' ends, band by band, as
a weighted isotonic regression (pool adjacent violators) that keeps items apart.

Only the vertical positions depend on which frames are open:
:func:`geometry` computes them, and the page's script computes them the same way
when a frame is opened or closed, so everything is in integers.

Example:
    >>> scene = layout(report)                      # doctest: +SKIP
    >>> g = geometry(scene, lambda frame: True)     # every frame open  # doctest: +SKIP
    >>> g.height(scene.root.items[0])               # doctest: +SKIP
    56
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import networkx as nx

from weighttie.report import CallNode, LayerInfo, Report, Shape

__all__ = [
    "BAND_GAP",
    "BODY_GAP",
    "CALL_TOP",
    "FOLD_MIN",
    "GAP",
    "HEADER_H",
    "NODE_H",
    "NODE_W",
    "PAD",
    "Container",
    "Edge",
    "Geometry",
    "Item",
    "ItemKind",
    "Scene",
    "edge_path",
    "geometry",
    "layout",
]

NODE_W = 220  #: width of a call item or chip
NODE_H = 56  #: height of a call item or chip
GAP = 20  #: horizontal space between items of a band
BAND_GAP = 40  #: vertical space between bands, where edges bend
PAD = 12  #: a frame's inner margin
CALL_TOP = 8  #: top of a frame's row of calls
TITLE_H = 22  #: a frame's title line, under its calls
HEADER_H = CALL_TOP + NODE_H + TITLE_H  #: height of a closed frame
BODY_GAP = 26  #: space between an open frame's title and its body, where its inputs enter
LOOP_W = 28  #: room right of a frame for an edge from one of its calls to another
DUMMY_W = 4  #: a long edge's slot in a band it crosses
DUMMY_GAP = 6  #: space next to a slot
MAX_FRAME_DEPTH = 64  #: frames nest at most this deep; deeper layers are drawn flat
SWEEPS = 4  #: barycenter and placement sweeps (down and up) per graph
FOLD_MIN = 3  #: a run of at least this many identical blocks in a chain is folded
_AUTO_SUFFIX = re.compile(r"_[0-9]+(?=/|$)")  # Keras's numbering of names it makes up
_LOOSE = 1e-3  #: how strongly an item with no neighbour in a band keeps its place


#: The least width of a frame for its rows (one row, or a fold's blocks).
MinWidth = Callable[[list[LayerInfo]], int]


class ItemKind(StrEnum):
    """What an item of a graph is."""

    CALL = "call"
    FRAME = "frame"
    CHIP = "chip"


@dataclass(eq=False)
class Item:
    """One box of a graph: a call, a frame (with its own graph inside) or a chip.

    ``x`` is the left edge in the coordinates of the graph that holds the item;
    ``band`` its row. Frames are numbered (``number``) for the page's script.
    """

    kind: ItemKind
    row: LayerInfo
    call: CallNode | None = None
    inner: Container | None = None
    width: int = NODE_W
    extra: int = 0  # room kept free on the right (a loop edge)
    band: int = 0
    x: int = 0
    number: int = -1
    feeds: list[tuple[int, int, Item]] = field(default_factory=list)
    fold: list[Item] = field(default_factory=list)  # a fold: the run of blocks it holds

    def call_port(self, position: int) -> int:
        """The x offset, from the left edge, of this item's ``position``-th call."""
        if self.kind is ItemKind.FRAME:
            return PAD + position * (NODE_W + GAP) + NODE_W // 2
        return self.width // 2


@dataclass(eq=False)
class Edge:
    """One input of one call: from a call's output to the call that consumes it.

    ``route`` holds the x of each point the edge passes, from ``start`` (in band
    ``start_band``) to ``end`` (in band ``end_band``), in layering direction: for
    a ``back`` edge (a broken cycle) ``start`` is the consumer. A ``loop`` runs
    from a frame's bottom back to its own header; its route is
    ``[out x, in x, right x]``.
    """

    source_row: LayerInfo
    source_call: CallNode
    target_row: LayerInfo
    target_call: CallNode
    tensor_index: int
    input_position: int
    shape: Shape | None
    start: Item
    end: Item
    start_port: int
    end_port: int
    back: bool = False
    loop: bool = False
    route: list[int] = field(default_factory=list)
    start_band: int = 0
    end_band: int = 0


@dataclass(eq=False)
class Container:
    """One graph: the model's own (``row`` None) or the inside of a frame."""

    row: LayerInfo | None
    items: list[Item] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    bands: int = 0
    width: int = 0


@dataclass(eq=False)
class Scene:
    """A laid-out report: ``containers`` deepest first, the model's own graph last."""

    root: Container
    containers: list[Container]
    frames: list[Item]
    children: dict[str, list[str]]
    calls: int


# -- who holds whom -------------------------------------------------------------------


class _Tree:
    """Parents, children, frames and each layer's holder (its nearest frame, or "")."""

    def __init__(self, report: Report) -> None:
        self.rows: dict[str, LayerInfo] = {row.path: row for row in report.layers}
        parents = {path: row.parent for path, row in self.rows.items()}
        self.children: dict[str, list[str]] = {}
        for path in sorted(parents):
            parent = parents[path]
            if parent is not None:
                self.children.setdefault(parent, []).append(path)
        self.frames: dict[str, int] = {}  # frame path -> nesting depth
        self.holder: dict[str, str] = {}
        for path in sorted(self.rows, key=lambda p: (len(p), p)):  # parents first
            parent = parents[path]
            holder = "" if not parent else parent if parent in self.frames else self.holder[parent]
            self.holder[path] = holder
            depth = self.frames.get(holder, 0) + 1
            row = self.rows[path]
            if path and row.nodes and path in self.children and depth <= MAX_FRAME_DEPTH:
                self.frames[path] = depth

    def lift(self, path: str, container: str) -> str | None:
        """The path of the item of ``container``'s graph that holds layer ``path``."""
        while True:
            holder = self.holder[path]
            if holder == container:
                return path
            if holder == "":
                return None
            path = holder


# -- building graphs -----------------------------------------------------------------


class _Builder:
    """Builds the items and edges of every graph, deepest frames first."""

    def __init__(self, report: Report, min_width: MinWidth | None) -> None:
        self.min_width: MinWidth = min_width or (lambda rows: NODE_W)
        self.tree = _Tree(report)
        self.folds: list[Item] = []
        self.fold_containers: list[Container] = []
        self.signatures: dict[str, tuple[object, ...]] = {}
        self.calls: dict[tuple[str, int], tuple[LayerInfo, CallNode, int]] = {}
        for row in report.layers:
            for position, node in enumerate(row.nodes or ()):
                self.calls[(row.path, node.index)] = (row, node, position)
        self.call_items: dict[tuple[str, int], Item] = {}
        self.frame_items: dict[str, Item] = {}
        self.inner: dict[str, Container] = {}
        members: dict[str, list[str]] = {}
        for path in sorted(self.tree.rows):
            members.setdefault(self.tree.holder[path], []).append(path)
        self.members = members

    def scene(self) -> Scene:
        order = sorted(self.tree.frames, key=lambda p: (-self.tree.frames[p], p))
        containers = []
        for path in [*order, ""]:
            container = self.container(path)
            containers += self.fold_containers
            self.fold_containers = []
            containers.append(container)
            if path:
                self.inner[path] = container
        frames = [self.frame_items[path] for path in sorted(self.frame_items)] + self.folds
        for number, frame in enumerate(frames):
            frame.number = number
        calls = sum(len(row.nodes or ()) for row in self.tree.rows.values())
        return Scene(containers[-1], containers, frames, self.tree.children, calls)

    def container(self, path: str) -> Container:
        container = Container(self.tree.rows.get(path) if path else None)
        for member in self.members.get(path, []):
            container.items.extend(self.items_of(self.tree.rows[member]))
        for item in container.items:
            if item.kind is ItemKind.CALL:
                assert item.call is not None
                container.edges.extend(self.edges_into(item, item.call, path))
            elif item.kind is ItemKind.FRAME:
                for node in item.row.nodes or ():
                    container.edges.extend(self.edges_into(item, node, path))
        for run in self.runs(container):
            self.fold(container, run)
        _arrange(container)
        return container

    # -- folds: runs of identical blocks --

    def signature(self, row: LayerInfo) -> tuple[object, ...]:
        """What makes two blocks the same: class, calls, and every layer inside them
        (path below the block, class, parameters held, whether its calls are known).

        Keras numbers the names it makes up (``dropout``, ``dropout_1`` …) across a
        model, so a trailing ``_N`` of each name is ignored."""
        if row.path not in self.signatures:
            inside, stack = [], list(self.tree.children.get(row.path, []))
            while stack:
                sub = self.tree.rows[stack.pop()]
                rel = _AUTO_SUFFIX.sub("", sub.path[len(row.path) :])
                inside.append((rel, sub.class_name, sub.params.held, sub.nodes is None))
                stack.extend(self.tree.children.get(sub.path, []))
            self.signatures[row.path] = (row.class_name, len(row.nodes or ()), *sorted(inside))
        return self.signatures[row.path]

    def runs(self, container: Container) -> list[list[Item]]:
        """Chains of identical one-call blocks (frames), each feeding only the next."""
        frames = [i for i in container.items if i.kind is ItemKind.FRAME and not i.fold]
        ends: dict[int, set[int]] = {}
        for edge in container.edges:
            ends.setdefault(id(edge.start), set()).add(id(edge.end))
        by_id = {id(i): i for i in container.items}
        following: dict[int, Item] = {}
        for item in frames:
            targets = ends.get(id(item), set())
            if len(item.row.nodes or ()) != 1 or len(targets) != 1:
                continue
            after = by_id[next(iter(targets))]
            same = after.kind is ItemKind.FRAME and not after.fold and after is not item
            if same and self.signature(after.row) == self.signature(item.row):
                following[id(item)] = after
        followed = {id(after) for after in following.values()}
        runs = []
        for item in frames:
            if id(item) in following and id(item) not in followed:
                run = [item]
                while id(run[-1]) in following and len(run) <= len(frames):
                    run.append(following[id(run[-1])])
                if len(run) >= FOLD_MIN:
                    runs.append(run)
        return runs

    def fold(self, container: Container, run: list[Item]) -> None:
        """Replace ``run`` in ``container`` by one fold: a closed frame holding the run."""
        members = {id(i) for i in run}
        body = Container(run[0].row)
        body.items = run
        body.edges = [e for e in container.edges if id(e.start) in members and id(e.end) in members]
        _arrange(body)
        width = max(2 * PAD + body.width, 2 * PAD + NODE_W, self.min_width([i.row for i in run]))
        fold = Item(ItemKind.FRAME, run[0].row, inner=body, width=width, fold=run)
        fold.feeds = _feeds(fold, body)
        kept, seen = [], set()
        for edge in container.edges:
            inside = (id(edge.start) in members, id(edge.end) in members)
            if all(inside):
                continue
            if inside[1]:
                edge.end, edge.end_port = fold, fold.call_port(0)
                key = (id(edge.start), edge.start_port, id(edge.source_call))
                if key in seen:  # one input (a mask) fed to every block: one edge
                    continue
                seen.add(key)
            elif inside[0]:
                edge.start, edge.start_port = fold, fold.call_port(0)
            kept.append(edge)
        container.edges = kept
        at = container.items.index(run[0])
        container.items = [i for i in container.items if id(i) not in members]
        container.items.insert(at, fold)
        self.folds.append(fold)
        self.fold_containers.append(body)

    def items_of(self, row: LayerInfo) -> list[Item]:
        if row.path in self.tree.frames:
            inner = self.inner[row.path]
            calls_width = len(row.nodes or ()) * (NODE_W + GAP) - GAP
            width = 2 * PAD + max(inner.width, calls_width, NODE_W)
            width = max(width, self.min_width([row]))
            item = Item(ItemKind.FRAME, row, inner=inner, width=width)
            item.feeds = _feeds(item, inner)
            self.frame_items[row.path] = item
            return [item]
        if row.nodes:
            items = [Item(ItemKind.CALL, row, call=node) for node in row.nodes]
            for item, node in zip(items, row.nodes, strict=True):
                self.call_items[(row.path, node.index)] = item
            return items
        return [Item(ItemKind.CHIP, row)]

    def edges_into(self, item: Item, node: CallNode, container: str) -> list[Edge]:
        edges = []
        position = _position(item, node)
        for k, ref in enumerate(node.inbound):
            found = self.calls.get((ref.layer, ref.node_index))
            if found is None:
                continue  # a reference to a call the report does not have: nothing to draw
            source_row, source_call, source_position = found
            lifted = self.tree.lift(source_row.path, container)
            if lifted is None:
                continue  # from outside this frame: Keras graphs have none
            if lifted in self.frame_items:
                source = self.frame_items[lifted]
                port = (
                    source.call_port(source_position)
                    if lifted == source_row.path
                    else source.width // 2
                )
            else:
                source = self.call_items[(source_row.path, source_call.index)]
                port = source.call_port(0)
            shapes = source_call.output_shapes
            shape = shapes[ref.tensor_index] if 0 <= ref.tensor_index < len(shapes) else None
            edges.append(
                Edge(
                    source_row,
                    source_call,
                    item.row,
                    node,
                    ref.tensor_index,
                    k,
                    shape,
                    start=source,
                    end=item,
                    start_port=port,
                    end_port=item.call_port(position),
                )
            )
        return edges


def _feeds(frame: Item, inner: Container) -> list[tuple[int, int, Item]]:
    """Where a frame's calls hand their inputs to its body: (call position, x in, item).

    Each call of the frame feeds every item of the first band of its body (its
    input layers); a body with no graph (an RNN's cell, calls unknown) feeds
    its first chip. x is in the frame's coordinates.
    """
    graph = [i for i in inner.items if i.kind is not ItemKind.CHIP]
    first = min((i.band for i in graph), default=0)
    firsts = [i for i in graph if i.band == first]
    if not firsts and inner.items:  # the chip drawn first
        firsts = [min(inner.items, key=lambda i: (i.band, i.x))]
    return [
        (position, PAD + target.x + target.call_port(0), target)
        for position in range(len(frame.row.nodes or ()))
        for target in firsts
    ]


def _position(item: Item, node: CallNode) -> int:
    if item.kind is not ItemKind.FRAME:
        return 0
    for position, candidate in enumerate(item.row.nodes or ()):
        if candidate is node:
            return position
    return 0


# -- one graph: bands, order, x ------------------------------------------------------


def _arrange(container: Container) -> None:
    """Place the items and route the edges of one graph (x and band; y comes later)."""
    graph_items = [i for i in container.items if i.kind is not ItemKind.CHIP]
    chips = [i for i in container.items if i.kind is ItemKind.CHIP]
    index = {id(item): n for n, item in enumerate(graph_items)}
    pairs = []
    for edge in container.edges:
        u, v = index[id(edge.start)], index[id(edge.end)]
        if u == v:
            edge.loop = True
            edge.start.extra = LOOP_W
        pairs.append((u, v))
    bands = _bands(len(graph_items), pairs, container.edges)
    for item, band in zip(graph_items, bands, strict=True):
        item.band = band
    layers = _Layers(graph_items, container.edges)
    layers.order()
    layers.place()
    width = layers.commit()
    container.bands = (max(bands) + 1) if bands else 0
    container.width, container.bands = _chip_rows(chips, container.bands, width)


def _bands(n: int, pairs: list[tuple[int, int]], edges: list[Edge]) -> list[int]:
    """Each item's band: its topological generation after back edges are reversed.

    Marks the reversed edges ``back`` and swaps their ends, so every edge that is
    not a loop runs downwards.
    """
    succ: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(pairs):
        if u != v:
            succ[u].append((v, e))
    back = _back_edges(n, succ)
    graph: nx.DiGraph[int] = nx.DiGraph()
    graph.add_nodes_from(range(n))
    for e, (u, v) in enumerate(pairs):
        if u == v:
            continue
        if e in back:
            edge = edges[e]
            edge.back = True
            edge.start, edge.end = edge.end, edge.start
            edge.start_port, edge.end_port = edge.end_port, edge.start_port
            u, v = v, u
        graph.add_edge(u, v)
    bands = [0] * n
    for level, generation in enumerate(nx.topological_generations(graph)):
        for node in generation:
            bands[node] = level
    return bands


def _back_edges(n: int, succ: list[list[tuple[int, int]]]) -> set[int]:
    """Edges that close a cycle in an iterative depth-first search (in item order)."""
    state = [0] * n  # 0 unseen, 1 on the stack, 2 done
    back: set[int] = set()
    for start in range(n):
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, 0)]
        while stack:
            u, i = stack[-1]
            if i == len(succ[u]):
                state[u] = 2
                stack.pop()
                continue
            stack[-1] = (u, i + 1)
            v, e = succ[u][i]
            if state[v] == 1:
                back.add(e)
            elif state[v] == 0:
                state[v] = 1
                stack.append((v, 0))
    return back


@dataclass
class _Segment:
    """A piece of an edge between two neighbouring bands (slot ends included)."""

    upper: int
    upper_port: int
    lower: int
    lower_port: int


class _Layers:
    """Items, slots of long edges, and the segments between bands, as integer ids."""

    def __init__(self, items: list[Item], edges: list[Edge]) -> None:
        self.items = items
        n = len(items)
        self.width = [item.width + item.extra for item in items]
        self.band = [item.band for item in items]
        self.real = [True] * n
        self.segments: list[_Segment] = []
        index = {id(item): k for k, item in enumerate(items)}
        self.routes: list[tuple[Edge, list[int]]] = []  # edge, slot ids
        budget = max(2000, 4 * n)
        chains: dict[tuple[int, int, int, int], list[int]] = {}
        spans = [(e.end.band - e.start.band, k) for k, e in enumerate(edges) if not e.loop]
        for span, k in sorted(spans):
            edge = edges[k]
            u, v = index[id(edge.start)], index[id(edge.end)]
            key = (u, edge.start_port, v, edge.end_port)
            if key not in chains:
                slots: list[int] = []
                if 1 < span <= budget:
                    budget -= span - 1
                    slots = [self.slot(self.band[u] + j) for j in range(1, span)]
                    ends = [(u, edge.start_port), *((s, DUMMY_W // 2) for s in slots)]
                    ends.append((v, edge.end_port))
                    for (a, pa), (b, pb) in itertools.pairwise(ends):
                        self.segments.append(_Segment(a, pa, b, pb))
                elif span == 1:
                    self.segments.append(_Segment(u, edge.start_port, v, edge.end_port))
                chains[key] = slots
            self.routes.append((edge, chains[key]))
        self.routes += [(edge, []) for edge in edges if edge.loop]
        self.x = [0.0] * len(self.width)
        self.up: list[list[_Segment]] = [[] for _ in self.width]
        self.down: list[list[_Segment]] = [[] for _ in self.width]
        for s in self.segments:
            self.up[s.lower].append(s)
            self.down[s.upper].append(s)

    def slot(self, band: int) -> int:
        self.width.append(DUMMY_W)
        self.band.append(band)
        self.real.append(False)
        return len(self.width) - 1

    # -- order within bands --

    def order(self) -> None:
        """Start from a depth-first order, then barycenter sweeps down and up."""
        count = max(self.band, default=-1) + 1
        self.layers: list[list[int]] = [[] for _ in range(count)]
        seen = [False] * len(self.width)
        for start in range(len(self.width)):
            if seen[start]:
                continue
            seen[start] = True
            stack = [start]
            while stack:
                u = stack.pop()
                self.layers[self.band[u]].append(u)
                for s in reversed(self.down[u]):
                    if not seen[s.lower]:
                        seen[s.lower] = True
                        stack.append(s.lower)
        self.pos = [0] * len(self.width)
        self.renumber()
        for _ in range(SWEEPS):
            for b in range(1, count):
                self.reorder(b, self.up, upper=True)
            for b in range(count - 2, -1, -1):
                self.reorder(b, self.down, upper=False)

    def renumber(self) -> None:
        for layer in self.layers:
            for p, v in enumerate(layer):
                self.pos[v] = p

    def reorder(self, b: int, neighbours: list[list[_Segment]], *, upper: bool) -> None:
        layer = self.layers[b]
        keyed = []
        slots = []
        for p, v in enumerate(layer):
            ends = [s.upper if upper else s.lower for s in neighbours[v]]
            if ends:
                keyed.append((sum(self.pos[w] for w in ends) / len(ends), p, v))
                slots.append(p)
        keyed.sort()
        for p, (_, _, v) in zip(slots, keyed, strict=True):
            layer[p] = v
            self.pos[v] = p

    # -- x positions --

    def gap(self, a: int, b: int) -> int:
        return GAP if self.real[a] and self.real[b] else DUMMY_GAP

    def place(self) -> None:
        """Pack each band, then pull items towards their edges' other ends."""
        for layer in self.layers:
            x = 0.0
            for k, v in enumerate(layer):
                if k:
                    x += self.width[layer[k - 1]] + self.gap(layer[k - 1], v)
                self.x[v] = x
            shift = (x + (self.width[layer[-1]] if layer else 0)) / 2
            for v in layer:
                self.x[v] -= shift
        count = len(self.layers)
        for _ in range(SWEEPS):
            for b in range(1, count):
                self.align(b, use_up=True, use_down=False)
            for b in range(count - 2, -1, -1):
                self.align(b, use_up=False, use_down=True)
        for b in range(count):
            self.align(b, use_up=True, use_down=True)

    def align(self, b: int, *, use_up: bool, use_down: bool) -> None:
        layer = self.layers[b]
        targets, weights = [], []
        for v in layer:
            total, n = 0.0, 0
            if use_up:
                for s in self.up[v]:
                    total += self.x[s.upper] + s.upper_port - s.lower_port
                    n += 1
            if use_down:
                for s in self.down[v]:
                    total += self.x[s.lower] + s.lower_port - s.upper_port
                    n += 1
            targets.append(total / n if n else self.x[v])
            weights.append(float(n) if n else _LOOSE)
        offsets = [0.0]
        for a, c in itertools.pairwise(layer):
            offsets.append(offsets[-1] + self.width[a] + self.gap(a, c))
        fitted = _isotonic([t - o for t, o in zip(targets, offsets, strict=True)], weights)
        for v, y, o in zip(layer, fitted, offsets, strict=True):
            self.x[v] = y + o

    def commit(self) -> int:
        """Round to integers, keep items apart, shift to x >= 0; set routes. Returns the width."""
        xs = [round(x) for x in self.x]
        for layer in self.layers:
            for a, c in itertools.pairwise(layer):
                xs[c] = max(xs[c], xs[a] + self.width[a] + self.gap(a, c))
        left = min(xs, default=0)
        xs = [x - left for x in xs]
        for item, x in zip(self.items, xs, strict=False):
            item.x = x
        for edge, slots in self.routes:
            edge.start_band, edge.end_band = edge.start.band, edge.end.band
            out, into = edge.start.x + edge.start_port, edge.end.x + edge.end_port
            if edge.loop:
                edge.route = [out, into, edge.start.x + edge.start.width + LOOP_W // 2]
            else:
                edge.route = [out, *(xs[s] + DUMMY_W // 2 for s in slots), into]
        return max((x + w for x, w in zip(xs, self.width, strict=True)), default=0)


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators).

    Example:
        >>> _isotonic([3.0, 1.0, 2.0], [1.0, 1.0, 1.0])
        [2.0, 2.0, 2.0]
    """
    blocks: list[list[float]] = []  # [weight, weighted sum, count]
    for t, w in zip(targets, weights, strict=True):
        blocks.append([w, w * t, 1])
        while len(blocks) > 1 and blocks[-2][1] * blocks[-1][0] > blocks[-1][1] * blocks[-2][0]:
            w2, s2, n2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += n2
    fitted: list[float] = []
    for w, s, n in blocks:
        fitted.extend([s / w] * int(n))
    return fitted


def _chip_rows(chips: list[Item], bands: int, width: int) -> tuple[int, int]:
    """Put chips in rows below the graph; return the graph's width and band count."""
    if not chips:
        return width, bands
    chips.sort(key=lambda chip: chip.row.order)  # as model.summary() lists them
    per_row = max(4, (width + GAP) // (NODE_W + GAP))
    for k, chip in enumerate(chips):
        chip.band = bands + k // per_row
        chip.x = (k % per_row) * (NODE_W + GAP)
    rows = (len(chips) + per_row - 1) // per_row
    used = min(len(chips), per_row) * (NODE_W + GAP) - GAP
    return max(width, used), bands + rows


def layout(report: Report, min_width: MinWidth | None = None) -> Scene:
    """Lay out ``report``'s calls, frames and chips (x and bands; see :func:`geometry`).

    ``min_width(rows)``: the least width of the frame of ``rows`` (room for its
    title): one row for a frame, the blocks of a fold. A run of at least
    :data:`FOLD_MIN` identical one-call blocks (frames of one class and the same
    layers inside), each feeding only the next, becomes one **fold**: a frame
    (``Item.fold`` lists the blocks) whose body is the run; edges into any block
    of the run enter the fold, edges out of the last leave it.

    Example:
        >>> scene = layout(report)                         # doctest: +SKIP
        >>> scene.calls == sum(len(r.nodes or ()) for r in report.layers)  # doctest: +SKIP
        True
    """
    return _Builder(report, min_width).scene()


# -- vertical positions ------------------------------------------------------------------


@dataclass
class Geometry:
    """Vertical positions for one choice of open frames.

    ``tops[c]`` / ``band_heights[c]``: each band of graph ``c`` (by ``id``);
    ``content_height[c]``: the height of its graph.
    """

    opened: set[int]
    tops: dict[int, list[int]] = field(default_factory=dict)
    band_heights: dict[int, list[int]] = field(default_factory=dict)
    content_height: dict[int, int] = field(default_factory=dict)

    def height(self, item: Item) -> int:
        """An item's height: a frame is taller when open."""
        if item.kind is not ItemKind.FRAME:
            return NODE_H
        assert item.inner is not None
        if id(item) not in self.opened:
            return HEADER_H
        return HEADER_H + BODY_GAP + self.content_height[id(item.inner)] + PAD

    def top(self, item: Item, container: Container) -> int:
        """An item's top in its graph's coordinates."""
        return self.tops[id(container)][item.band]


def geometry(scene: Scene, is_open: Callable[[Item], bool]) -> Geometry:
    """Band tops and heights of every graph when the frames ``is_open`` accepts are open.

    Each band is as tall as its tallest item; items hang from the band's top.
    """
    g = Geometry({id(frame) for frame in scene.frames if is_open(frame)})
    for container in scene.containers:  # deepest first
        heights = [0] * container.bands
        for item in container.items:
            heights[item.band] = max(heights[item.band], g.height(item))
        tops, y = [], 0
        for h in heights:
            tops.append(y)
            y += h + BAND_GAP
        g.tops[id(container)] = tops
        g.band_heights[id(container)] = heights
        g.content_height[id(container)] = y - BAND_GAP if heights else 0
    return g


def edge_path(edge: Edge, container: Container, g: Geometry) -> str:
    """The SVG path of ``edge`` in ``container`` (the page's script computes the same)."""
    tops, heights = g.tops[id(container)], g.band_heights[id(container)]
    xs = edge.route
    if edge.loop:
        top = tops[edge.start_band]
        yb, yt = top + g.height(edge.start), top
        out, into, right = xs
        return (
            f"M{out},{yb}C{out},{yb + 24} {right},{yb + 24} {right},{(yb + yt) // 2}"
            f"C{right},{yt - 24} {into},{yt - 24} {into},{yt}"
        )
    bs, bt = edge.start_band, edge.end_band
    y = tops[bs] + g.height(edge.start)
    yb = tops[bs] + heights[bs]
    d = f"M{xs[0]},{y}"
    if yb != y:
        d += f"V{yb}"
    last = len(xs) - 1
    for j in range(1, last + 1):
        band = bt if j == last else bs + j
        yt = tops[band]
        middle = yb + (yt - yb) // 2
        d += f"C{xs[j - 1]},{middle} {xs[j]},{middle} {xs[j]},{yt}"
        if j < last:
            yb = tops[band] + heights[band]
            d += f"V{yb}"
    return d

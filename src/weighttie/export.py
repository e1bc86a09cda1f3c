"""The variable-identity graph of a Report, for networkx and graph tools.

Reads only the Report (no Keras): nodes for layers, variables and sharing groups,
edges for containment, holding and membership; written as GraphML or node-link
JSON.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weighttie.errors import WeighttieError
from weighttie.escape import to_xml_safe
from weighttie.files import check_output_path, write_output
from weighttie.report import Report

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["check_graph_path", "to_networkx", "write_graph"]


def to_networkx(report: Report) -> nx.DiGraph:
    """Return the report's variable-identity graph.

    Nodes are ``layer:<path>``, ``variable:<path>`` and ``group:<n>``; edges are
    ``contains`` (parent layer → sublayer), ``holds`` (layer → variable) and
    ``member`` (group → layer). Attribute values are strings, integers or booleans
    so that GraphML can carry them; a count the report does not know is -1.

    Example:
        >>> graph = to_networkx(report)                       # doctest: +SKIP
        >>> sorted(graph.successors("layer:lstm/lstm_cell"))  # doctest: +SKIP
        ['variable:lstm/lstm_cell/bias', ...]
    """
    import networkx as nx

    graph = nx.DiGraph(name=report.model.name, schema="weighttie.graph/1")
    paths = {row.path for row in report.layers}
    for row in report.layers:
        graph.add_node(
            f"layer:{row.path}",
            kind="layer",
            path=row.path,
            name=row.name,
            class_name=row.class_name,
            uses=-1 if row.uses is None else row.uses,
            params_held=row.params.held,
            calls=-1 if row.nodes is None else len(row.nodes),
        )
    for row in report.layers:
        if row.parent is not None and row.parent in paths:
            graph.add_edge(f"layer:{row.parent}", f"layer:{row.path}", kind="contains")
    for v in report.variables:
        graph.add_node(
            f"variable:{v.path}",
            kind="variable",
            path=v.path,
            shape=json.dumps(list(v.shape)),
            dtype=v.dtype,
            size=v.size,
            trainable=v.trainable,
            uses=-1 if v.uses is None else v.uses,
        )
        for holder in v.layers:
            graph.add_edge(f"layer:{holder}", f"variable:{v.path}", kind="holds")
    for n, group in enumerate(report.groups):
        node = f"group:{n}"
        graph.add_node(
            node,
            kind="group",
            group_kind=group.kind.value,
            params=group.params,
            calls=-1 if group.calls is None else group.calls,
            duplicated=-1 if group.duplicated is None else group.duplicated,
        )
        for layer in group.layers:
            graph.add_edge(node, f"layer:{layer}", kind="member")
    return graph


def check_graph_path(path: str | os.PathLike[str]) -> str:
    """Return the graph format a path asks for (``graphml`` or ``json``), checking the
    path can be written, before any work.

    Raises:
        WeighttieError: the extension is neither.
        OutputError: the path is a directory or a special file, or its directory is missing.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".graphml", ".json"):
        raise WeighttieError(
            f"a graph file name must end in .graphml or .json; received: {Path(path).name!r}"
        )
    check_output_path(path)
    return suffix[1:]


def write_graph(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the variable-identity graph: ``.graphml`` as GraphML, ``.json`` as node-link JSON.

    The file is written whole or not at all (:func:`weighttie.files.write_output`).
    Node-link JSON carries every name exactly. GraphML carries names through
    :func:`weighttie.escape.to_xml_safe` (a backslash doubled, characters XML 1.0
    cannot carry as ``\\uXXXX``); :func:`weighttie.escape.from_xml_safe` reads them back.

    Example:
        >>> write_graph(report, "sharing.graphml")                       # doctest: +SKIP
        >>> nx.relabel_nodes(nx.read_graphml("sharing.graphml"), from_xml_safe)  # doctest: +SKIP

    Raises:
        WeighttieError: the extension is neither.
        OutputError: the file cannot be written.
    """
    fmt = check_graph_path(path)
    graph = to_networkx(report)
    write_output(path, _graphml(graph) if fmt == "graphml" else _node_link_json(graph))


def _graphml(graph: nx.DiGraph) -> bytes:
    """GraphML from networkx's ElementTree writer (the same bytes with or without lxml)."""
    import networkx as nx

    buffer = io.BytesIO()
    nx.write_graphml_xml(_xml_safe(graph), buffer)
    return buffer.getvalue()


def _xml_safe(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy of ``graph`` whose ids and string values XML 1.0 can carry, in the same order."""
    import networkx as nx

    def values(attrs: dict[str, Any]) -> dict[str, Any]:
        return {k: to_xml_safe(v) if isinstance(v, str) else v for k, v in attrs.items()}

    safe = nx.DiGraph(**values(graph.graph))
    safe.add_nodes_from((to_xml_safe(n), values(attrs)) for n, attrs in graph.nodes(data=True))
    safe.add_edges_from(
        (to_xml_safe(u), to_xml_safe(v), values(attrs)) for u, v, attrs in graph.edges(data=True)
    )
    return safe


def _node_link_json(graph: nx.DiGraph) -> str:
    """Node-link JSON; ASCII, so every name is exact and every control character escaped."""
    import networkx as nx

    data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
    return json.dumps(data, indent=2, sort_keys=True) + "\n"

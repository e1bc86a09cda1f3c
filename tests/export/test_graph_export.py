"""The variable-identity graph: networkx object, GraphML and node-link JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

import weighttie
from support import zoo
from weighttie.export import check_graph_path
from weighttie.files import OutputError


def test_graph_links_layers_to_the_variables_they_hold() -> None:
    report = weighttie.analyze(zoo.tied_embeddings())
    graph = weighttie.to_networkx(report)
    holders = sorted(graph.predecessors("variable:embedding/embeddings"))
    assert holders == ["layer:embedding", "layer:logits", "layer:logits/embedding"]
    assert graph.nodes["variable:embedding/embeddings"]["uses"] == 2
    (group,) = [n for n, d in graph.nodes(data=True) if d["kind"] == "group"]
    assert graph.nodes[group]["group_kind"] == "tied"
    assert sorted(graph.successors(group)) == ["layer:embedding", "layer:logits"]
    assert graph.has_edge("layer:logits", "layer:logits/embedding")
    assert graph.edges["layer:logits", "layer:logits/embedding"]["kind"] == "contains"


def test_graphml_file_reads_back(tmp_path: Path) -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    path = tmp_path / "g.graphml"
    weighttie.write_graph(report, path)
    graph = nx.read_graphml(path)
    assert graph.nodes["layer:lstm"]["uses"] == 2
    assert graph.nodes["variable:lstm/lstm_cell/kernel"]["shape"] == "[6, 32]"
    variables = [n for n, d in graph.nodes(data=True) if d["kind"] == "variable"]
    assert len(variables) == len(report.variables)


def test_node_link_json_reads_back(tmp_path: Path) -> None:
    report = weighttie.analyze(zoo.nested_twice())
    path = tmp_path / "g.json"
    weighttie.write_graph(report, path)
    graph = nx.node_link_graph(json.loads(path.read_text()), edges="edges")
    assert graph.nodes["layer:outer/inner/dense"]["uses"] == 4


def test_unknown_graph_extension_is_an_error(tmp_path: Path) -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    with pytest.raises(
        weighttie.WeighttieError,
        match=r"^a graph file name must end in \.graphml or \.json; received: 'g\.png'$",
    ):
        weighttie.write_graph(report, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_graph_is_written_through_a_symlink_keeping_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "real.graphml"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.graphml"
    link.symlink_to(target)
    weighttie.write_graph(weighttie.analyze(zoo.siamese_lstm()), link)
    assert link.is_symlink()
    assert nx.read_graphml(target).nodes["layer:lstm"]["uses"] == 2
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.graphml", "real.graphml"]


def test_a_directory_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "g.graphml").mkdir()
    with pytest.raises(
        OutputError, match="it is a directory; expected a regular file, a terminal or a pipe"
    ):
        check_graph_path(tmp_path / "g.graphml")
    assert check_graph_path(tmp_path / "G.JSON") == "json"

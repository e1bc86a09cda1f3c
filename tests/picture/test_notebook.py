"""A notebook shows the same picture: a real Jupyter kernel runs a cell
whose value is a Report, and the cell's HTML output is the picture's fragment."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import zoo
from weighttie.picture import to_html
from weighttie.static import read_report

nbformat = pytest.importorskip("nbformat", reason="the test extras bring nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extras bring nbclient")
pytest.importorskip("ipykernel", reason="the test extras bring ipykernel")


def test_a_report_is_drawn_inline_in_a_notebook(tmp_path: Path) -> None:
    path = tmp_path / "siamese.keras"
    zoo.siamese_tower().save(path)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(f"import weighttie\nweighttie.read_report({str(path)!r})")
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    (output,) = notebook.cells[0].outputs
    assert output["output_type"] == "execute_result"
    html = output["data"]["text/html"]
    assert html == to_html(read_report(path), fragment=True)
    assert html.count('class="call') >= sum(len(r.nodes or ()) for r in read_report(path).layers)

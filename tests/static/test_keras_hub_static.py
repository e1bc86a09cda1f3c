"""keras_hub files read statically: counts equal Keras's own, call facts unknown, no Keras needed.

keras_hub models are subclasses of Functional whose config is constructor arguments,
not a graph: the weights file is the only map of their layers. Every family is built
tiny from constructor arguments (nothing is downloaded), as backbone and as task
model, and Keras's ``count_params()`` is the oracle.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import weighttie
from weighttie.render import render
from weighttie.report import Report
from weighttie.spec import check, load_spec
from weighttie.static import read_report

keras_hub = pytest.importorskip("keras_hub")

from support.hub_zoo import FAMILIES, VOCABULARY, backbone_and_task  # noqa: E402


def _size(variables: list[Any]) -> int:
    return sum(math.prod(v.shape) for v in variables)


class Saved:
    """One model saved as .keras, and what Keras itself says about it."""

    def __init__(self, model: keras.Model, path: Path) -> None:
        model.save(path)
        self.path = path
        self.class_name = type(model).__name__
        self.count_params = model.count_params()
        self.trainable = _size(model.trainable_weights)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    """Every family's backbone and task model, saved once (``gpt2-backbone``, ``gpt2-task``)."""
    directory = tmp_path_factory.mktemp("hub")
    files = {}
    for name in FAMILIES:
        backbone, task = backbone_and_task(name)
        files[f"{name}-backbone"] = Saved(backbone, directory / f"{name}_backbone.keras")
        files[f"{name}-task"] = Saved(task, directory / f"{name}_task.keras")
    return files


KINDS = [f"{name}-{kind}" for name in FAMILIES for kind in ("backbone", "task")]


@pytest.mark.parametrize("name", KINDS)
def test_static_counts_equal_keras_count_params(saved: dict[str, Saved], name: str) -> None:
    file = saved[name]
    report = read_report(file.path)
    assert report.model.source == "static"
    assert report.model.class_name == file.class_name
    assert report.params.unique == file.count_params
    assert report.params.trainable_unique == file.trainable
    assert report.params.non_trainable_unique == file.count_params - file.trainable
    assert sum(row.params.unique for row in report.layers) == report.params.unique
    # the file states no calls: every count that depends on them is unknown, not 0 or 1
    assert report.params.per_use is None and report.params.duplicated is None
    assert {row.uses for row in report.layers} == {None}
    assert {row.params.per_use for row in report.layers} == {None}
    assert {v.uses for v in report.variables} == {None}
    assert "not a graph" in report.model.notes[0]
    # no false finding (Gemma's equal key/value kernels are parts of one layer;
    # blocks in series are not twins), and the cost that needs calls is unknown
    assert report.findings == ()
    assert report.cost.macs is None and report.cost.bytes.per_use is None
    assert report.cost.bytes.unique == 4 * file.count_params  # float32 weights


def test_task_model_holds_its_backbone_and_names_known_classes(saved: dict[str, Saved]) -> None:
    report = read_report(saved["gpt2-task"].path)
    # the class the task config names (its name may carry a suffix: Keras counts names)
    (backbone,) = [r.path for r in report.layers if r.class_name == "GPT2Backbone"]
    assert report.layer(backbone).name.startswith("gpt2_backbone")
    embedding = report.layer(f"{backbone}/token_embedding")
    assert embedding.class_name == "ReversibleEmbedding"
    assert embedding.variables == (f"{backbone}/token_embedding/embeddings",)
    assert report.variable(f"{backbone}/token_embedding/embeddings").shape == (VOCABULARY, 8)
    # a sublayer kept as an attribute: its class is not in the file
    query = report.layer(f"{backbone}/transformer_layer_0/self_attention/query")
    assert query.class_name == "?" and query.variables[0].endswith("/query/0")


def test_config_stated_tie_is_a_note(saved: dict[str, Saved]) -> None:
    notes = read_report(saved["t5-task"].path).model.notes
    assert (
        "the config of T5Backbone (its backbone) declares tie_embedding_weights=true: tied "
        "weights are stored once, so the weights file shows neither the tie nor which calls "
        "share them"
    ) in notes


def test_frozen_backbone_is_not_trainable(tmp_path: Path) -> None:
    backbone, task = backbone_and_task("gpt2")
    backbone.trainable = False
    task.save(tmp_path / "frozen.keras")
    report = read_report(tmp_path / "frozen.keras")
    assert report.params.trainable_unique == _size(task.trainable_weights) == 0
    assert report.params.non_trainable_unique == task.count_params()


def test_optimizer_variables_are_never_layers(tmp_path: Path) -> None:
    """A compiled, trained plain Keras model saves ``optimizer/vars/...`` beside its layers."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(np.zeros((4, 4)), np.zeros((4, 3)), verbose=0)
    model.save(tmp_path / "compiled.keras")
    report = read_report(tmp_path / "compiled.keras")
    assert report.params.unique == model.count_params()
    assert report.params.trainable_unique == _size(model.trainable_weights)
    assert not any("adam" in row.path or "optimizer" in row.path for row in report.layers)
    assert report.params.per_use == model.count_params()  # a graph: calls known


def test_json_round_trip_keeps_unknown_as_null(saved: dict[str, Saved]) -> None:
    report = read_report(saved["bert-task"].path)
    doc = json.loads(report.to_json())
    assert doc["params"]["per_use"] is None and doc["params"]["duplicated"] is None
    assert {row["uses"] for row in doc["layers"]} == {None}
    assert doc["model"]["notes"] == list(report.model.notes)
    assert Report.from_json(report.to_json()) == report


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_human_output_says_unknown_and_prints_the_notes(saved: dict[str, Saved], fmt: str) -> None:
    text = render(read_report(saved["opt-backbone"].path), fmt)
    assert "unknown per use, unknown duplicated" in text
    assert "calls are unknown (see the notes)" in text
    note = "Note: OPTBackbone's config holds constructor arguments"
    if fmt == "html":
        assert '<p class="note">' + note.replace("'", "&#x27;") in text
        assert ">unknown</td>" in text  # the uses and per-use cells
    else:
        assert ("- " if fmt == "markdown" else "") + note in text


def test_per_use_check_fails_clearly_when_unknown(saved: dict[str, Saved], tmp_path: Path) -> None:
    report = read_report(saved["gpt2-backbone"].path)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'schema = "weighttie.spec/1"\n[params]\nunique = {report.params.unique}\n'
        "max_per_use = 10000\n"
    )
    results = {r.name: r.failure for r in check(report, load_spec(spec))}
    assert results[f"params.unique == {report.params.unique:,}"] is None
    failure = results["params.per_use <= 10,000"]
    assert failure is not None and failure.startswith("unknown: this static report cannot tell")


# -- without Keras -------------------------------------------------------------------

#: A sitecustomize that makes Keras, TensorFlow, keras_hub, JAX and torch look not
#: installed: the path finder no longer finds them (``find_spec`` is None, ``import``
#: raises ModuleNotFoundError), as on a machine without them.
NO_KERAS = "keras tensorflow tf_keras keras_hub jax torch"
BLOCKER = textwrap.dedent(
    """
    import sys
    from importlib.machinery import PathFinder

    BLOCKED = set(BLOCKED_NAMES.split())

    class NotInstalled(PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [NotInstalled if f is PathFinder else f for f in sys.meta_path]
    """
)


def run_without_keras(
    tmp_path: Path, *args: str, blocked: str = NO_KERAS
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter that cannot import Keras or any backend."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(f"BLOCKED_NAMES = {blocked!r}\n{BLOCKER}")
    src = Path(weighttie.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(src)])}
    code = "import sys; from weighttie.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_blocker_really_blocks(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(f"BLOCKED_NAMES = {NO_KERAS!r}\n{BLOCKER}")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    for name in ("keras", "tensorflow", "keras_hub"):
        done = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 1, name
        assert f"ModuleNotFoundError: No module named '{name}'" in done.stderr


@pytest.mark.parametrize("name", KINDS)
def test_cli_reports_without_keras(saved: dict[str, Saved], tmp_path: Path, name: str) -> None:
    file = saved[name]
    done = run_without_keras(tmp_path, "report", str(file.path), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"]["source"] == "static"
    assert doc["params"]["unique"] == file.count_params
    assert doc["params"]["trainable_unique"] == file.trainable
    assert doc["params"]["per_use"] is None
    assert done.stderr == ""
    assert any("--load" in note for note in doc["model"]["notes"])


def test_cli_with_keras_but_without_keras_hub(saved: dict[str, Saved], tmp_path: Path) -> None:
    """Keras cannot load the file (its class is missing): the static report, with right counts."""
    file = saved["bert-task"]
    done = run_without_keras(
        tmp_path,
        "report",
        str(file.path),
        "-o",
        str(tmp_path / "r.json"),
        "--format",
        "json",
        blocked="keras_hub",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["params"]["unique"] == file.count_params  # not + 2: the optimizer is no layer
    assert doc["model"]["source"] == "static"
    assert done.stderr == ""


def test_graph_export_carries_unknown_counts_as_minus_one(
    saved: dict[str, Saved], tmp_path: Path
) -> None:
    import networkx as nx

    from weighttie.export import write_graph

    write_graph(read_report(saved["gemma-task"].path), tmp_path / "g.graphml")
    graph = nx.read_graphml(tmp_path / "g.graphml")
    layers = [attrs for _, attrs in graph.nodes(data=True) if attrs["kind"] == "layer"]
    assert layers and {attrs["uses"] for attrs in layers} == {-1}


def test_load_without_keras_is_one_clear_line(saved: dict[str, Saved], tmp_path: Path) -> None:
    done = run_without_keras(tmp_path, "report", str(saved["gpt2-task"].path), "--load")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("weighttie: error: --load reads the model through Keras, ")
    assert "(no module keras)" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["snapshot", "check", "diff"])
def test_other_commands_without_keras(
    saved: dict[str, Saved], tmp_path: Path, command: str
) -> None:
    path = str(saved["bert-task"].path)
    spec = tmp_path / "spec.toml"
    assert run_without_keras(tmp_path, "snapshot", path, "-o", str(spec)).returncode == 0
    args = {"snapshot": [path], "check": [path, "--spec", str(spec)], "diff": [path, path]}
    done = run_without_keras(tmp_path, command, *args[command])
    # diff: calls unknown on both sides, so not everything is compared: exit 1 (docs/cli.md)
    assert done.returncode == (1 if command == "diff" else 0), done.stderr
    assert "internal error" not in done.stderr


# -- every family keras_hub builds offline -----------------------------------------

#: In the default run: ViT nests blocks whose names repeat (``transformer_block_1`` under
#: ``vit_encoder``, once dropped); Whisper pairs an encoder and a decoder and freezes its
#: encoder position embedding in its constructor, where no config the file holds says so
#: (once counted trainable); HGNetV2 keeps BatchNormalization layers in blocks kept as
#: attributes and in lists (``stages_list``), whose moving statistics were once counted
#: trainable. The rest run under ``pytest -m families``.
EVERY_RUN = {"vit", "whisper", "hgnetv2"}


def _every_family() -> list[Any]:
    from support import hub_families

    cases = []
    for variant in hub_families.VARIANTS:
        marks = () if variant in EVERY_RUN else (pytest.mark.families,)
        cases.append(pytest.param(variant, None, id=variant, marks=marks))
        for task_class in hub_families.tasks(variant):
            cases.append(
                pytest.param(
                    variant,
                    task_class.__name__,
                    id=f"{variant}-{task_class.__name__}",
                    marks=(pytest.mark.families,),
                )
            )
    return cases


@pytest.mark.parametrize(("variant", "task_name"), _every_family())
def test_every_family_keeps_every_weight_and_keras_trainable_split(
    variant: str, task_name: str | None, tmp_path: Path
) -> None:
    from support import hub_families

    model = hub_families.backbone(variant)
    if task_name is not None:
        if task_name == "PARSeqCausalLM":
            pytest.skip("PARSeqCausalLM needs its preprocessor (a tokenizer) to build")
        model = hub_families.task(getattr(keras_hub.models, task_name), model)
    path = tmp_path / "m.keras"
    model.save(path)
    report = read_report(path)
    assert report.params.unique == model.count_params()
    # no weight dropped: the shapes the file yields are Keras's, each variable once
    assert sorted(v.shape for v in report.variables) == sorted(
        tuple(w.shape) for w in {id(w): w for w in model.weights}.values()
    )
    assert report.params.trainable_unique == _size(model.trainable_weights)


def test_a_task_own_non_trainable_variable_is_not_trainable(tmp_path: Path) -> None:
    """Gemma4's assistant task with ordered embeddings holds a variable of its own,
    ``token_ordering``, created non-trainable: saved in the file's root ``vars``."""
    from support import hub_families

    model = hub_families.gemma4_assistant()
    model.save(tmp_path / "assistant.keras")
    report = read_report(tmp_path / "assistant.keras")
    assert report.params.trainable_unique == _size(model.trainable_weights)
    assert report.variable("token_ordering").trainable is False

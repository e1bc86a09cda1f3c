"""Transformers from keras_hub, built offline from constructor arguments at tiny sizes.

GPT-2, BERT, OPT, T5 and Gemma, each as backbone and as task model. Keras is the
oracle: ``count_params()`` for the counts, and an eager forward pass on real data,
counting the token embedding's calls, for its uses. The token embedding runs twice
in GPT-2 and Gemma (ReversibleEmbedding with ``reverse=True`` in the task model's
graph), in OPT (once inside the backbone's TokenAndPositionEmbedding, once in the
task model's graph) and in BERT's MaskedLM (once in the backbone's graph, once
inside MaskedLMHead's call), and three times in T5Seq2SeqLM. None of these models
has a finding: its transformer blocks are in series (not twin branches), and
Gemma's key and value kernels, equal at initialization, are parts of one
attention layer (not a broken tie).

Skipped where keras_hub is not installed (the JAX and torch test environments).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import weighttie
from weighttie import _keras
from weighttie.cli import main

keras_hub = pytest.importorskip("keras_hub")

from support import hub_zoo  # noqa: E402
from walk.test_analyze import _eager_calls as eager_calls  # noqa: E402

#: Every family's backbone and task model (``gpt2``, ``gpt2_causal_lm`` …).
MODELS: dict[str, Callable[[], Any]] = {
    name: build
    for family, task in (
        ("gpt2", "gpt2_causal_lm"),
        ("bert", "bert_masked_lm"),
        ("opt", "opt_causal_lm"),
        ("t5", "t5_seq2seq_lm"),
        ("gemma", "gemma_causal_lm"),
    )
    for name, build in (
        (family, lambda family=family: hub_zoo.backbone(family)),
        (task, lambda family=family: hub_zoo.task(family)),
    )
}


def _token_embedding(model: Any) -> Any:
    backbone = getattr(model, "backbone", model)
    return backbone.token_embedding


def _eager_calls(model: Any, layer: Any) -> int:
    """How many times ``layer`` runs when ``model`` runs eagerly on real (tiny) data."""
    data = keras.tree.map_structure(
        lambda t: np.ones([4 if d is None else d for d in t.shape], dtype=t.dtype), model.input
    )
    return eager_calls(model, layer, data)


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """Each model with its live report and its embedding's eager call count, built once."""
    result = {}
    for name, build in MODELS.items():
        keras.utils.set_random_seed(12)
        model = build()
        report = weighttie.analyze(model)
        result[name] = (model, report, _eager_calls(model, _token_embedding(model)))
    return result


@pytest.mark.parametrize("name", list(MODELS))
def test_counts_agree_with_keras(name: str, built) -> None:
    model, report, _ = built[name]
    assert report.params.unique == model.count_params()
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert report.params.trainable_unique == trainable


@pytest.mark.parametrize("name", list(MODELS))
def test_the_token_embedding_is_used_as_often_as_it_runs(name: str, built) -> None:
    model, report, runs = built[name]
    (embedding,) = [v for v in report.variables if v.path.endswith("token_embedding/embeddings")]
    assert embedding.size == int(np.prod(_token_embedding(model).embeddings.shape))
    assert embedding.uses == runs
    groups = [g for g in report.groups if embedding.path in g.variables]
    if runs < 2:
        assert groups == []
        return
    (group,) = groups
    assert group.kind == weighttie.GroupKind.SHARED_LAYER
    assert group.calls == runs
    assert group.duplicated == embedding.size * (runs - 1)
    assert report.params.duplicated == group.duplicated  # nothing else is shared


def test_task_models_run_their_embedding_twice_or_more(built) -> None:
    """The headline: the tied embedding is counted where it really runs."""
    runs = {name: built[name][2] for name in MODELS}
    assert {name: n for name, n in runs.items() if n > 1} == {
        "gpt2_causal_lm": 2,
        "bert_masked_lm": 2,
        "opt_causal_lm": 2,
        "t5": 2,
        "t5_seq2seq_lm": 3,
        "gemma_causal_lm": 2,
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_the_symbolic_pass_leaves_the_model_as_it_was(name: str, built) -> None:
    from _keras.test_keras_internals import layer_state

    model = built[name][0]
    before = layer_state(model)
    _keras.trace_model(model)
    assert layer_state(model) == before


@pytest.mark.parametrize("name", list(MODELS))
def test_no_finding(name: str, built) -> None:
    _, report, _ = built[name]
    assert report.findings == ()


@pytest.mark.parametrize(
    "name", ["gpt2_causal_lm", "bert_masked_lm", "opt_causal_lm", "t5_seq2seq_lm", "gemma"]
)
def test_load_agrees_with_live(
    name: str, built, tmp_path_factory: pytest.TempPathFactory, capsys
) -> None:
    """``weighttie report --load FILE`` on the saved model gives the live report's counts."""
    model, report, _ = built[name]
    path = tmp_path_factory.mktemp("hub") / f"{name}.keras"
    model.save(path)
    assert main(["report", "--load", str(path), "--format", "json"]) == 0
    loaded = weighttie.Report.from_json(capsys.readouterr().out)
    assert loaded.params == report.params
    assert loaded.groups == report.groups
    assert loaded.findings == ()

    def rows(r: weighttie.Report) -> list[tuple[str, int, int]]:
        # auto-named sublayers (dropout_2) get new numbers in a new process: compare in order
        return [
            (x.class_name, x.uses, x.params.held) for x in sorted(r.layers, key=lambda x: x.order)
        ]

    assert rows(loaded) == rows(report)


def test_load_without_keras_hub_is_one_clear_line(built, tmp_path: Path) -> None:
    """keras_hub not installed: ``--load`` says that the file needs it, in one line, and
    gives the static report (it was exit 2 before --load was traced)."""
    import subprocess
    import sys

    path = tmp_path / "opt.keras"
    built["opt_causal_lm"][0].save(path)
    script = (
        "import sys; sys.modules['keras_hub'] = None\n"
        "from weighttie.cli import main\n"
        f"sys.exit(main(['report', '--load', {str(path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("weighttie:")]
    assert errors == [
        f"weighttie: warning: --load could not build {str(path)!r} without weight values (it "
        "holds keras_hub classes (OPTBackbone, OPTCausalLM), and keras_hub cannot be imported "
        "here: pip install keras-hub); this is the static report"
    ]
    assert "source: static" in done.stdout
    assert "Traceback" not in done.stderr

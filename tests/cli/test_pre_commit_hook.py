"""The pre-commit hook ``weighttie-check`` (weighttie.pre_commit_hook) on real saved models.

``main(argv)`` is called as pre-commit calls the hook's entry, with the changed
files; one test runs it as its own process (``python -m``), as pre-commit does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support import REPO
from weighttie.front_door import report_of
from weighttie.pre_commit_hook import main, spec_of
from weighttie.spec import snapshot


@pytest.fixture
def guarded(tmp_path: Path, tower_files: dict[str, Path]) -> Path:
    """``models/siamese.keras`` with its spec ``models/siamese.weighttie.toml`` beside it."""
    folder = tmp_path / "models"
    folder.mkdir()
    model = folder / "siamese.keras"
    shutil.copyfile(tower_files["siamese"], model)
    (folder / "siamese.weighttie.toml").write_text(snapshot(report_of(model)), encoding="utf-8")
    return model


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_spec_of_a_model_is_beside_it() -> None:
    assert spec_of("models/siamese.keras") == "models/siamese.weighttie.toml"
    assert spec_of("legacy.v2.h5") == "legacy.v2.weighttie.toml"


def test_a_model_that_matches_its_spec_passes(
    guarded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, guarded)
    spec = spec_of(str(guarded))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"weighttie check {guarded} --spec {spec}",
        f"12 passed, 0 failed ('siamese_tower' against {spec})",
    ]


def test_a_changed_model_exits_1_with_the_checks_output(
    guarded: Path, tower_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copyfile(tower_files["twins"], guarded)  # the tower now built twice
    code, out, err = run(capsys, guarded)
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == f"weighttie check {guarded} --spec {spec_of(str(guarded))}"
    assert "FAIL shared-model group [tower]: no layer matches 'tower'" in lines
    assert lines[-1].startswith("6 passed, 6 failed ('twin_towers' against ")


def test_a_changed_spec_checks_the_model_beside_it_once(
    guarded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Path(spec_of(str(guarded)))
    spec.write_text(spec.read_text().replace("unique = 185", "unique = 184"), encoding="utf-8")
    code, out, err = run(capsys, spec, guarded)
    assert (code, err) == (1, "")
    assert out.count("weighttie check") == 1
    assert "FAIL params.unique == 184: found 185" in out.splitlines()


def test_models_without_a_spec_are_skipped_with_one_line_each(
    tmp_path: Path, tower_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "scratch.keras"
    shutil.copyfile(tower_files["twins"], model)
    lone_spec = tmp_path / "gone.weighttie.toml"
    lone_spec.write_text('schema = "weighttie.spec/1"\n', encoding="utf-8")
    code, out, err = run(capsys, model, lone_spec)
    assert (code, out) == (0, "")
    assert err.splitlines() == [
        f"weighttie-pre-commit: skipped {str(model)!r}: no spec 'scratch.weighttie.toml' beside "
        f"it (write one with: weighttie snapshot {model} -o {spec_of(str(model))})",
        f"weighttie-pre-commit: skipped {str(lone_spec)!r}: no model 'gone.keras' or 'gone.h5' "
        "beside it",
    ]


def test_no_files_is_nothing_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys) == (0, "", "")


def test_a_corrupt_model_is_one_line_and_exit_2(
    guarded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guarded.write_bytes(b"PK\x03\x04 not really a zip")
    code, out, err = run(capsys, guarded)
    assert code == 2
    assert out == f"weighttie check {guarded} --spec {spec_of(str(guarded))}\n"
    assert len(err.splitlines()) == 1
    assert err.startswith("weighttie: error: ") and str(guarded) in err


def test_an_invalid_spec_is_one_line_and_exit_2(
    guarded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(spec_of(str(guarded))).write_text("schema = [unclosed\n", encoding="utf-8")
    code, _, err = run(capsys, guarded)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("weighttie: error: ")


def test_the_worst_exit_code_wins(
    guarded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5")
    (tmp_path / "broken.weighttie.toml").write_text('schema = "weighttie.spec/1"\n')
    code, out, err = run(capsys, broken, guarded)
    assert code == 2
    assert "12 passed, 0 failed" in out  # the good model is still checked
    assert len(err.splitlines()) == 1


def test_a_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.keras"
    code, out, err = run(capsys, missing)
    assert (code, out) == (2, "")
    assert err == (
        f"weighttie-pre-commit: error: no such file {str(missing)!r}; expected the changed "
        "files pre-commit passes (.keras / .h5 models, .weighttie.toml specs)\n"
    )


def test_an_unknown_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--frobnicate"])
    assert exit_.value.code == 2
    _, err = capsys.readouterr()
    assert err == (
        "weighttie-pre-commit: error: unrecognized arguments: --frobnicate (see --help)\n"
    )


def test_the_hook_as_its_own_process_never_prints_a_traceback(
    guarded: Path, tower_files: dict[str, Path], tmp_path: Path
) -> None:
    def hook(*files: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        command = [sys.executable, "-m", "weighttie.pre_commit_hook", *map(str, files)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    assert hook(guarded).returncode == 0
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"\x00" * 64)
    shutil.copyfile(spec_of(str(guarded)), spec_of(str(corrupt)))
    done = hook(corrupt)
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("weighttie")] == [
        line for line in done.stderr.splitlines() if line.strip()
    ]
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr + done.stdout


def test_the_hook_manifest_runs_the_console_script_on_models_and_specs() -> None:
    """.pre-commit-hooks.yaml, read as pre-commit reads it: a list of hooks."""
    yaml = pytest.importorskip("yaml")  # PyYAML comes with the test extras (huggingface_hub)

    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "weighttie-check"
    assert hook["language"] == "python"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert scripts[hook["entry"]] == "weighttie.pre_commit_hook:run"
    files = re.compile(hook["files"])
    for name in ("m.keras", "dir/m.h5", "m.weighttie.toml"):
        assert files.search(name), name
    for name in ("m.keras.bak", "weighttie.toml", "m.toml", "README.md"):
        assert not files.search(name), name

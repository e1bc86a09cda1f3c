"""The pytest plugin (weighttie.pytest_plugin): real pytest runs through ``pytester``.

Each test writes a small test module into ``pytester.path`` that calls the
``weighttie_snapshot`` fixture on a real saved model (or a live one), runs pytest
on it with ``-p weighttie.pytest_plugin`` (installed, the ``pytest11`` entry point
loads it), and asserts on the outcome, the snapshot files and the output.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from support import REPO
from weighttie.front_door import report_of
from weighttie.pytest_plugin import snapshot_path
from weighttie.render import render_check
from weighttie.spec import check, load_spec, snapshot

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "weighttie.pytest_plugin")


def _error_lines(*lines: str) -> list[str]:
    """Patterns of the ``E   <line>`` lines pytest prints for a failure, each line literal."""
    return [rf"E\s+{re.escape(line)}$" for line in lines]


def _model_test(
    pytester: pytest.Pytester, tower_files: dict[str, Path], name: str = "siamese"
) -> Path:
    """``m.keras`` (a copy of ``tower_files[name]``) and ``test_arch.py``, which snapshots it."""
    shutil.copyfile(tower_files[name], pytester.path / "m.keras")
    pytester.makepyfile(
        test_arch="""
        def test_model(weighttie_snapshot):
            weighttie_snapshot("m.keras")
        """
    )
    return pytester.path / "weighttie_snapshots" / "test_arch" / "test_model.toml"


def test_a_missing_snapshot_fails_with_the_command_that_writes_it(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    stored = _model_test(pytester, tower_files)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        _error_lines(
            "AssertionError: no weighttie snapshot weighttie_snapshots/test_arch/test_model.toml "
            "for this test; create it with: pytest --weighttie-update test_arch.py::test_model"
        )
    )
    assert not stored.exists()


def test_update_writes_the_snapshot_then_the_test_passes(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    stored = _model_test(pytester, tower_files)
    result = pytester.runpytest(*PLUGIN, "--weighttie-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*weighttie snapshots*",
            "wrote 1 snapshot (1 new, 0 refreshed):",
            "  new        weighttie_snapshots/test_arch/test_model.toml",
        ]
    )
    # the very spec `weighttie snapshot m.keras` writes
    assert stored.read_text(encoding="utf-8") == snapshot(report_of(pytester.path / "m.keras"))

    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
    again = pytester.runpytest(*PLUGIN, "--weighttie-update")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["wrote no snapshot: every snapshot checked holds"])


def test_a_changed_model_fails_with_the_difference_as_check_prints_it(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    stored = _model_test(pytester, tower_files)
    pytester.runpytest(*PLUGIN, "--weighttie-update").assert_outcomes(passed=1)
    shutil.copyfile(tower_files["twins"], pytester.path / "m.keras")  # the tower built twice

    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    report = report_of(pytester.path / "m.keras")
    expected = render_check(
        report,
        check(report, load_spec(stored)),
        "weighttie_snapshots/test_arch/test_model.toml",
    )
    assert "FAIL shared-model group [tower]" in expected  # the regression is named
    lines = ["AssertionError: model 'twin_towers' does not match its snapshot:"]
    lines += expected.splitlines()
    lines.append(
        "if the change is intended, refresh the snapshot and review its diff: "
        "pytest --weighttie-update test_arch.py::test_model"
    )
    result.stdout.re_match_lines(_error_lines(*lines), consecutive=True)

    refresh = pytester.runpytest(*PLUGIN, "--weighttie-update")
    refresh.assert_outcomes(passed=1)
    refresh.stdout.fnmatch_lines(["wrote 1 snapshot (0 new, 1 refreshed):"])
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_a_hand_added_budget_that_holds_is_kept_by_update(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    stored = _model_test(pytester, tower_files)
    pytester.runpytest(*PLUGIN, "--weighttie-update").assert_outcomes(passed=1)
    edited = stored.read_text(encoding="utf-8") + "\n[cost]\nmax_bytes_unique = 100000000\n"
    stored.write_text(edited, encoding="utf-8")
    result = pytester.runpytest(*PLUGIN, "--weighttie-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["wrote no snapshot: every snapshot checked holds"])
    assert stored.read_text(encoding="utf-8") == edited


def test_parametrized_names_map_to_safe_file_names(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    shutil.copyfile(tower_files["siamese"], pytester.path / "siamese.keras")
    shutil.copyfile(tower_files["twins"], pytester.path / "twins.keras")
    pytester.makepyfile(
        test_zoo="""
        import pytest

        @pytest.mark.parametrize("path", ["siamese.keras", "twins.keras"],
                                 ids=["siamese/v2", "twin towers"])
        def test_model(weighttie_snapshot, path):
            weighttie_snapshot(path)

        class TestNamed:
            def test_two_snapshots(self, weighttie_snapshot):
                weighttie_snapshot("siamese.keras")
                weighttie_snapshot("twins.keras", name="twins")
        """
    )
    missing = pytester.runpytest(*PLUGIN)
    missing.assert_outcomes(failed=3)
    missing.stdout.re_match_lines(
        _error_lines(
            "AssertionError: no weighttie snapshot "
            "weighttie_snapshots/test_zoo/test_model[twin_towers].toml for this test; create it "
            "with: pytest --weighttie-update 'test_zoo.py::test_model[twin towers]'"
        )
    )
    pytester.runpytest(*PLUGIN, "--weighttie-update").assert_outcomes(passed=3)
    folder = pytester.path / "weighttie_snapshots" / "test_zoo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "TestNamed.test_two_snapshots.toml",
        "TestNamed.test_two_snapshots.twins.toml",
        "test_model[siamese_v2].toml",
        "test_model[twin_towers].toml",
    ]
    assert "model 'twin_towers'" in (folder / "test_model[twin_towers].toml").read_text()
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=3)


def test_ids_that_map_to_one_file_fail_instead_of_sharing_it(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    shutil.copyfile(tower_files["siamese"], pytester.path / "m.keras")
    pytester.makepyfile(
        test_clash="""
        import pytest

        @pytest.mark.parametrize("v", ["a/b", "a b"])
        def test_model(weighttie_snapshot, v):
            weighttie_snapshot("m.keras")
        """
    )
    result = pytester.runpytest(*PLUGIN, "--weighttie-update")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        _error_lines(
            "Failed: tests test_clash.py::test_model[a/b] and test_clash.py::test_model[a b] "
            "map to one snapshot file, weighttie_snapshots/test_clash/test_model[a_b].toml; "
            "give them distinct ids (pytest.param(..., id=...)) or pass name='…'"
        )
    )


def test_a_second_call_without_a_name_fails(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    shutil.copyfile(tower_files["siamese"], pytester.path / "m.keras")
    pytester.makepyfile(
        test_twice="""
        def test_model(weighttie_snapshot):
            weighttie_snapshot("m.keras")
            weighttie_snapshot("m.keras")
        """
    )
    result = pytester.runpytest(*PLUGIN, "--weighttie-update")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        _error_lines(
            "Failed: weighttie_snapshot was already called in this test for "
            "weighttie_snapshots/test_twice/test_model.toml; pass name='…' to keep a second "
            "snapshot"
        )
    )


def test_a_live_model_is_snapshotted_and_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_live="""
        import keras
        import pytest

        @pytest.mark.parametrize("shared", [True, False])
        def test_model(weighttie_snapshot, shared):
            dense = keras.layers.Dense(4, name="dense")
            a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
            other = dense if shared else keras.layers.Dense(4, name="other")
            out = keras.layers.Concatenate(name="merge")([dense(a), other(b)])
            weighttie_snapshot(keras.Model([a, b], out, name="live"))
        """
    )
    pytester.runpytest(*PLUGIN, "--weighttie-update").assert_outcomes(passed=2)
    stored = pytester.path / "weighttie_snapshots" / "test_live" / "test_model[True].toml"
    assert 'kind = "shared-layer"' in stored.read_text(encoding="utf-8")
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=2)
    # the unshared model against the shared one's snapshot: the group is missing
    (pytester.path / "weighttie_snapshots" / "test_live" / "test_model[False].toml").write_text(
        stored.read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        _error_lines(
            "FAIL shared-layer group [dense]: expected a shared-layer group of [dense]; "
            "found those layers share no weights"
        )
    )


def test_an_unreadable_model_fails_with_one_message(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    (pytester.path / "broken.keras").write_bytes(b"not a zip archive")
    pytester.makepyfile(
        test_bad="""
        def test_missing(weighttie_snapshot):
            weighttie_snapshot("no_such.keras")

        def test_broken(weighttie_snapshot):
            weighttie_snapshot("broken.keras")

        def test_unbuilt(weighttie_snapshot):
            import keras

            weighttie_snapshot(keras.Sequential([keras.layers.Dense(2)], name="unbuilt"))
        """
    )
    for flags in ((), ("--weighttie-update",)):
        result = pytester.runpytest(*PLUGIN, *flags)
        result.assert_outcomes(failed=3)
        result.stdout.fnmatch_lines(["E *MissingFileError: *no_such.keras*"])
        result.stdout.fnmatch_lines(["E *FileFormatError: *broken.keras*"])
        result.stdout.fnmatch_lines(["E *ModelNotBuiltError: *unbuilt*"])
        # the error comes out of the test's own line, not weighttie's insides
        assert "front_door.py" not in result.stdout.str()
        assert not (pytester.path / "weighttie_snapshots").exists()


def test_an_invalid_snapshot_fails_naming_it(
    pytester: pytest.Pytester, tower_files: dict[str, Path]
) -> None:
    stored = _model_test(pytester, tower_files)
    stored.parent.mkdir(parents=True)
    stored.write_text('schema = "weighttie.spec/1"\nexact_group = true\n', encoding="utf-8")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *SpecError: *exact_group*"])
    # --weighttie-update replaces a snapshot it cannot read
    pytester.runpytest(*PLUGIN, "--weighttie-update").assert_outcomes(passed=1)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_the_option_is_listed_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines(["weighttie snapshots:", "  --weighttie-update*"])


def test_snapshot_path_is_beside_the_test_file() -> None:
    test_file = Path("tests/test_arch.py")
    assert snapshot_path(test_file, "test_tower[siamese/v2]").as_posix() == (
        "tests/weighttie_snapshots/test_arch/test_tower[siamese_v2].toml"
    )
    assert snapshot_path(test_file, "test_x", "second").name == "test_x.second.toml"
    long_a, long_b = snapshot_path(test_file, "t" * 300 + "a"), snapshot_path(test_file, "t" * 301)
    assert long_a != long_b  # distinct names stay distinct when cut
    assert len(long_a.name) == len("t" * 200 + "-") + 12 + len(".toml")


def test_the_pytest11_entry_point_names_the_plugin_module() -> None:
    """The entry point registers only once installed; pyproject.toml is what installs it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    entry_points = project["entry-points"]["pytest11"]
    assert entry_points == {"weighttie.pytest_plugin": "weighttie.pytest_plugin"}
    module = importlib.import_module(entry_points["weighttie.pytest_plugin"])
    assert callable(module.weighttie_snapshot)
    assert callable(module.pytest_addoption)


def test_pytest_loads_the_plugin_from_the_declared_entry_point(
    pytester: pytest.Pytester, tower_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``-p``: pytest finds the plugin through the ``pytest11`` entry point, as installed.

    A distribution's metadata on the path (a ``.dist-info`` folder holding the entry
    points pyproject.toml declares) is what ``pip install`` writes; pytest reads it
    through importlib.metadata. ``-p weighttie.pytest_plugin`` as well loads it once.
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"]["pytest11"]
    dist_info = pytester.mkdir("site") / "weighttie_entry_points-0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: weighttie-entry-points\nVersion: 0.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{name} = {value}\n" for name, value in declared.items()),
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", f"{dist_info.parent}{os.pathsep}{REPO / 'src'}")
    stored = _model_test(pytester, tower_files)

    missing = pytester.runpytest_subprocess()
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["E * create it with: pytest --weighttie-update *"])
    pytester.runpytest_subprocess("--weighttie-update").assert_outcomes(passed=1)
    assert stored.exists()
    pytester.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=1)

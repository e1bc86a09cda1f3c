"""The pytest plugin: a model's sharing checked against a spec committed beside its test.

Installing weighttie registers this module with pytest (the ``pytest11`` entry
point ``weighttie.pytest_plugin``, named as the module, so ``pytest -p
weighttie.pytest_plugin`` loads it where weighttie is only on the path, and ``-p
no:weighttie.pytest_plugin`` turns it off). It adds one fixture and one option:

* ``weighttie_snapshot(model)`` checks the report of ``model`` (a live Keras
  model, a path to a model file or folder or a JSON report, or a Report) against
  ``weighttie_snapshots/<test module>/<test name>.toml`` beside the test file: a
  ``weighttie.spec/1`` spec, as ``weighttie snapshot`` writes it, checked as
  ``weighttie check`` checks it;
* ``pytest --weighttie-update`` writes the snapshots that are missing or no
  longer hold, keeps those that hold (a budget added by hand stays), and lists
  what it wrote at the end of the run.

Example:
    >>> def test_architecture(weighttie_snapshot):        # doctest: +SKIP
    ...     weighttie_snapshot(build_siamese())           # or "models/siamese.keras"

The plugin imports nothing of weighttie's readers, nor Keras, until the fixture
is called; Keras only when the fixture is given a live model.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import pytest

if TYPE_CHECKING:
    from weighttie.report import Report

__all__ = ["SnapshotCheck", "snapshot_path"]

#: The folder beside a test file that holds its snapshots, one subfolder per test module.
SNAPSHOT_DIR = "weighttie_snapshots"
#: The option that writes snapshots instead of failing.
UPDATE_OPTION = "--weighttie-update"

# Characters kept in a snapshot's file name: letters, digits and ``_.-[]``, which
# every common file system and a shell (quoted) take; anything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]")
# File systems allow 255 bytes a name; a longer test id keeps its start and a hash.
_MAX_STEM = 200


@dataclass
class _Session:
    """What one pytest run knows about snapshots: who uses which file, what was written."""

    update: bool
    owners: dict[Path, str] = field(default_factory=dict)  # snapshot file -> test node id
    written: list[tuple[Path, str]] = field(default_factory=list)  # (file, "new" | "refreshed")


_SESSION = pytest.StashKey[_Session]()
_P = ParamSpec("_P")
_T = TypeVar("_T")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("weighttie", "weighttie snapshots")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="write the weighttie_snapshot specs that are missing or no longer hold "
        "(weighttie_snapshots/ beside each test file) instead of failing",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = _Session(update=bool(config.getoption(UPDATE_OPTION)))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None or not session.update:
        return
    terminalreporter.section("weighttie snapshots")
    if not session.written:
        terminalreporter.write_line("wrote no snapshot: every snapshot checked holds")
        return
    new = sum(1 for _, status in session.written if status == "new")
    count = len(session.written)
    terminalreporter.write_line(
        f"wrote {count} snapshot{'s' if count != 1 else ''} ({new} new, {count - new} refreshed):"
    )
    for path, status in session.written:
        terminalreporter.write_line(f"  {status:<9}  {_shown(path, config)}")


@pytest.fixture
def weighttie_snapshot(request: pytest.FixtureRequest) -> SnapshotCheck:
    """Check a model against ``weighttie_snapshots/<module>/<test>.toml`` beside the test.

    Call it with a live Keras model, a model file or folder, a JSON report or a
    Report; ``name=`` keeps a second snapshot in one test. Fails with the failing
    expectations, one per line, as ``weighttie check`` prints them; a missing
    snapshot fails with the command that writes it (``pytest --weighttie-update``).
    """
    return SnapshotCheck(request.node, request.config)


def snapshot_path(test_file: Path, test_name: str, name: str | None = None) -> Path:
    """Where the snapshot of a test lives: ``weighttie_snapshots/<module>/<test>.toml``.

    ``test_name`` is the test's name within its module (``TestClass.test_x[id]``);
    characters other than letters, digits and ``_.-[]`` become ``_``, and a name
    too long for a file system keeps its first 200 characters and a hash of the rest.

    Example:
        >>> snapshot_path(Path("tests/test_arch.py"), "test_tower[siamese/v2]").as_posix()
        'tests/weighttie_snapshots/test_arch/test_tower[siamese_v2].toml'
    """
    stem = test_name if name is None else f"{test_name}.{name}"
    safe = _UNSAFE.sub("_", stem)
    if len(safe) > _MAX_STEM:
        digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe[:_MAX_STEM]}-{digest}"
    return test_file.parent / SNAPSHOT_DIR / test_file.stem / f"{safe}.toml"


class SnapshotCheck:
    """The ``weighttie_snapshot`` fixture's value: call it with a model or a path."""

    def __init__(self, node: pytest.Item, config: pytest.Config) -> None:
        self._node = node
        self._config = config
        self._session = config.stash[_SESSION]
        self._claimed: set[Path] = set()

    def __repr__(self) -> str:  # shown among a failing test's arguments
        path = snapshot_path(self._node.path, _test_name(self._node))
        return f"<weighttie_snapshot {_shown(path, self._config)}>"

    def __call__(self, model: object, *, name: str | None = None) -> None:
        """Check ``model``'s report against this test's snapshot (or write it with the option).

        Raises:
            AssertionError: the snapshot is missing, or an expectation of it fails.
            WeighttieError: the model or the snapshot cannot be read (an unbuilt
                model, a missing file, an invalid spec), shown as one message.
        """
        __tracebackhide__ = True
        path = self._claim(name)
        report = _clean(_report, model)
        if self._session.update:
            self._write(path, report)
            return
        if not path.exists():
            raise AssertionError(
                f"no weighttie snapshot {_shown(path, self._config)} for this test; "
                f"create it with: {self._update_command()}"
            )
        failed, text = _clean(_check, report, path, _shown(path, self._config))
        if failed:
            raise AssertionError(
                f"model {report.model.name!r} does not match its snapshot:\n{text}"
                "if the change is intended, refresh the snapshot and review its diff: "
                f"{self._update_command()}"
            )

    def _claim(self, name: str | None) -> Path:
        """This test's snapshot file; a file another test or call already uses fails the test."""
        __tracebackhide__ = True
        path = snapshot_path(self._node.path, _test_name(self._node), name)
        shown = _shown(path, self._config)
        if path in self._claimed:
            pytest.fail(
                f"weighttie_snapshot was already called in this test for {shown}; "
                "pass name='…' to keep a second snapshot"
            )
        owner = self._session.owners.setdefault(path, self._node.nodeid)
        if owner != self._node.nodeid:
            pytest.fail(
                f"tests {owner} and {self._node.nodeid} map to one snapshot file, {shown}; "
                "give them distinct ids (pytest.param(..., id=...)) or pass name='…'"
            )
        self._claimed.add(path)
        return path

    def _write(self, path: Path, report: Report) -> None:
        """Write the snapshot when it is missing, unreadable or no longer holds."""
        __tracebackhide__ = True
        from weighttie.errors import WeighttieError
        from weighttie.files import write_output
        from weighttie.spec import snapshot

        status = "new"
        if path.exists():
            try:
                failed, _ = _check(report, path, str(path))
            except WeighttieError:  # not a readable spec: written anew
                failed = True
            if not failed:
                return
            status = "refreshed"
        text = _clean(snapshot, report)
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean(write_output, path, text)
        self._session.written.append((path, status))

    def _update_command(self) -> str:
        """``pytest --weighttie-update <this test>``, the test named from where pytest ran."""
        _, _, rest = self._node.nodeid.partition("::")
        here = self._config.invocation_params.dir
        target = Path(os.path.relpath(self._node.path, here)).as_posix()
        if rest:
            target += f"::{rest}"
        return f"pytest {UPDATE_OPTION} {shlex.quote(target)}"


def _test_name(node: pytest.Item) -> str:
    """The test's name within its module: ``TestClass.test_x[id]`` (classes joined by dots)."""
    classes = [n.name for n in node.listchain() if isinstance(n, pytest.Class)]
    return ".".join([*classes, node.name])


def _shown(path: Path, config: pytest.Config) -> str:
    """A path as a user reads it: relative to the directory pytest ran from, when inside it."""
    try:
        return path.relative_to(config.invocation_params.dir).as_posix()
    except ValueError:
        return str(path)


def _report(model: object) -> Report:
    from weighttie.front_door import report_of

    return report_of(model)


def _check(report: Report, path: Path, label: str) -> tuple[bool, str]:
    """``(any expectation failed, check's text)`` of ``report`` against the spec at ``path``."""
    from weighttie.render import render_check
    from weighttie.spec import check, load_spec

    results = check(report, load_spec(path))
    return any(r.failure for r in results), render_check(report, results, label)


def _clean(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call ``function``; a WeighttieError comes out as itself, without weighttie's frames."""
    __tracebackhide__ = True
    from weighttie.errors import WeighttieError

    try:
        return function(*args, **kwargs)
    except WeighttieError as exc:
        raise exc.with_traceback(None) from None

"""Spec files and JSON reports are read boundedly: size, nesting, special files.

Regression tests: ``check`` and ``diff`` read a spec or a JSON report whole (a
3 GiB sparse file peaked at 6 GB), deep nesting ended in ``internal error:
RecursionError``, and a TOML dotted key of a million parts kept the parser busy for
minutes (tomllib's time grows with the square of a key's length). Each refusal is
one line naming what was expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import weighttie
from support import zoo
from support.static_process import PEAK_KIB
from weighttie.errors import FileFormatError, LimitError, ReportFormatError
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import Report
from weighttie.report_json import read_report_json
from weighttie.spec import SpecError, check, load_spec, snapshot

GIB = 1024**3


def sparse(path: Path, size: int = 3 * GIB) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: costs nothing on disk
    return path


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.strip() == text, text
    return text


@pytest.fixture(scope="module")
def report() -> Report:
    return weighttie.analyze(zoo.siamese_tower())


# -- size --------------------------------------------------------------------------------


def test_a_sparse_giant_spec_is_refused_before_reading(tmp_path: Path) -> None:
    path = sparse(tmp_path / "spec.toml")
    with pytest.raises(LimitError) as info:
        load_spec(path)
    assert info.value.limit == "spec_bytes"
    assert one_line(info.value) == (
        f"{str(path)!r} holds 3,221,225,472 bytes, more than the "
        f"{DEFAULT_LIMITS.spec_bytes:,} weighttie reads from a spec file"
    )


def test_a_sparse_giant_report_is_refused_before_reading(tmp_path: Path) -> None:
    path = sparse(tmp_path / "report.json")
    with pytest.raises(LimitError) as info:
        read_report_json(path)
    assert info.value.limit == "report_bytes"
    assert "3,221,225,472 bytes, more than the 268,435,456" in one_line(info.value)


def test_the_size_limits_are_exact(tmp_path: Path, report: Report) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(snapshot(report))
    size = spec.stat().st_size
    assert all(r.passed for r in check(report, load_spec(spec, limits=Limits(spec_bytes=size))))
    with pytest.raises(LimitError, match=f"more than the {size - 1:,} weighttie reads"):
        load_spec(spec, limits=Limits(spec_bytes=size - 1))

    saved = tmp_path / "report.json"
    saved.write_text(report.to_json())
    size = saved.stat().st_size
    assert read_report_json(saved, limits=Limits(report_bytes=size)) == report
    with pytest.raises(
        LimitError, match=f"more than the {size - 1:,} weighttie reads from a JSON report"
    ):
        read_report_json(saved, limits=Limits(report_bytes=size - 1))


# -- special files -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    with pytest.raises(FileFormatError, match=r"is a FIFO \(named pipe\); expected a spec file"):
        load_spec(fifo)
    report_fifo = tmp_path / "report.json"
    os.mkfifo(report_fifo)
    with pytest.raises(FileFormatError, match=r"is a FIFO \(named pipe\); expected a JSON report"):
        read_report_json(report_fifo)


def test_a_directory_or_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="is a directory; expected a spec file"):
        load_spec(tmp_path)
    with pytest.raises(FileFormatError, match="is a directory; expected a JSON report"):
        read_report_json(tmp_path)
    with pytest.raises(SpecError, match=r"no spec file at .*; write one with `weighttie snapshot"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(weighttie.MissingFileError, match="no such JSON report"):
        read_report_json(tmp_path / "missing.json")


# -- nesting: TOML -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000 + "]" * 100_000,
        "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
    ],
    ids=["arrays", "inline tables"],
)
def test_toml_nested_past_the_parser_is_one_clear_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert one_line(info.value) == (
        f"{str(path)!r} nests arrays or inline tables too deeply to read; a spec nests 4 levels"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a = " + "[" * 150 + "]" * 150, "nests tables and arrays more than 100 levels deep"),
        ("a" + ".a" * 400_000 + " = 1", "has a dotted key or table name of more than 100 parts"),
        ("[" + "a . " * 200_000 + "a]", "has a dotted key or table name of more than 100 parts"),
        ("a" + '."k"' * 200 + " = 1", "has a dotted key or table name of more than 100 parts"),
    ],
    ids=["arrays", "dotted key", "table name, spaced", "quoted parts"],
)
def test_toml_nested_past_limits_depth_is_refused(text: str, found: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(LimitError) as info:
        load_spec(path)
    assert info.value.limit == "depth"
    assert one_line(info.value) == (
        f"{str(path)!r} {found}; weighttie reads specs nested at most 100 levels deep"
    )


def test_limits_depth_is_exact(tmp_path: Path, report: Report) -> None:
    """A snapshot nests 4 levels: the document, [[group]], a group, its layers."""
    path = tmp_path / "spec.toml"
    path.write_text(snapshot(report))
    load_spec(path, limits=Limits(depth=4))
    with pytest.raises(LimitError, match="more than 3 levels deep"):
        load_spec(path, limits=Limits(depth=3))


def test_dots_and_brackets_in_strings_and_comments_are_not_nesting(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    deep_name = "a." * 300 + "b"
    path.write_text(
        f"# {'x.' * 300}[[[[\n"
        "[[not_shared]]\n"
        f'layers = ["{deep_name}", \'{"[" * 200}\', """\n{"]." * 300}"""]\n'
    )
    spec = load_spec(path)
    assert spec.not_shared == ((deep_name, "[" * 200, "]." * 300),)


def test_a_non_string_finding_kind_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text("[findings]\nforbid = [[1]]\n")
    with pytest.raises(SpecError, match=r"findings\.forbid must list finding kinds"):
        load_spec(path)


def test_a_spec_that_is_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_bytes(b'schema = "\xff"\n')
    with pytest.raises(SpecError, match="is not valid TOML: 'utf-8' codec can't decode"):
        load_spec(path)


# -- nesting and junk: JSON reports ------------------------------------------------------------


def test_json_nested_past_the_parser_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReportFormatError) as info:
        read_report_json(path)
    assert one_line(info.value) == (
        f"{str(path)!r}: report nests arrays or objects too deeply to be a weighttie.report/3 "
        "report (which nests 7 levels)"
    )


def test_deep_nesting_in_a_field_is_a_type_error_and_in_an_unknown_key_ignored(
    tmp_path: Path, report: Report
) -> None:
    doc = report.to_dict()
    doc["model"]["file"] = json.loads("[" * 500 + "]" * 500)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ReportFormatError, match="TypeError: expected a string, got"):
        read_report_json(path)
    doc = report.to_dict()
    doc["future_key"] = json.loads("[" * 500 + "]" * 500)
    path.write_text(json.dumps(doc))
    assert read_report_json(path) == report  # readers ignore keys they do not know


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"schema": "\xff"}', "not valid JSON: 'utf-8' codec can't decode"),
        (b'{"schema": ' + b"1" * 5000 + b"}", "not valid JSON: Exceeds the limit"),
        (b"", "not valid JSON: Expecting value"),
    ],
    ids=["not utf-8", "a 5000-digit integer", "empty"],
)
def test_junk_reports_are_report_format_errors(data: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(data)
    with pytest.raises(ReportFormatError, match=message) as info:
        read_report_json(path)
    assert one_line(info.value).startswith(f"{str(path)!r}: report is not valid JSON: ")


# -- time and memory (pytest -m budget) --------------------------------------------------------

PEAK = (
    "import sys, time\n"
    + PEAK_KIB
    + """
from weighttie.report_json import read_report_json
from weighttie.spec import load_spec
start = time.perf_counter()
try:
    (load_spec if sys.argv[1].endswith(".toml") else read_report_json)(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc, file=sys.stderr)
print(time.perf_counter() - start, peak_kib())
"""
)


def _refusal_cost(path: Path) -> tuple[str, float, float]:
    """(error, seconds, peak RSS in MB) of reading ``path`` in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=120
    )
    seconds, peak_kib = result.stdout.split()
    if int(peak_kib) < 0:
        pytest.skip("peak memory is not measurable here (no /proc, no resource module)")
    return result.stderr.strip().splitlines()[-1], float(seconds), int(peak_kib) / 1024


@pytest.mark.budget
@pytest.mark.parametrize("name", ["spec.toml", "report.json"])
def test_a_sparse_giant_costs_no_memory_and_no_time(name: str, tmp_path: Path) -> None:
    error, seconds, peak_mb = _refusal_cost(sparse(tmp_path / name))
    assert error.startswith("LimitError ")
    assert seconds < 0.5
    assert peak_mb < 100


@pytest.mark.budget
def test_a_dotted_key_of_half_a_million_parts_is_refused_fast(tmp_path: Path) -> None:
    """Parsed, this 1 MiB key (just under the spec size limit) would take tomllib an hour."""
    path = tmp_path / "spec.toml"
    path.write_text("a" + ".a" * (512 * 1024 - 8) + " = 1")
    assert path.stat().st_size <= DEFAULT_LIMITS.spec_bytes
    start = time.perf_counter()
    error, seconds, peak_mb = _refusal_cost(path)
    assert error.startswith("LimitError ") and "more than 100 parts" in error
    assert seconds < 3, f"{seconds:.1f} s (whole process {time.perf_counter() - start:.1f} s)"
    assert peak_mb < 150

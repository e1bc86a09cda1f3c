"""The ``weighttie`` command line: a thin shell over the library.

Exit codes: 0 success, 1 a check or diff found a violation, 2 bad input or usage.
Results go to stdout (or ``-o FILE``), messages to stderr, one line each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from weighttie.errors import WeighttieError

if TYPE_CHECKING:
    from weighttie.report import Report

__all__ = ["main"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2

_EPILOG = """\
examples:
  weighttie report siamese.keras
  weighttie report siamese.keras --format json -o report.json
  weighttie report siamese.keras --graph sharing.graphml
  weighttie report siamese.keras --load          # through Keras instead of the file alone

exit codes: 0 success, 1 a check or diff found a violation, 2 bad input or usage.
docs: docs/cli.md
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    from weighttie import __version__
    from weighttie.render import Format

    parser = _Parser(
        prog="weighttie",
        description="Inspect and verify weight sharing in Keras 3 models.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"weighttie {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    report = commands.add_parser(
        "report",
        help="show sharing groups, per-call shapes and parameter counts of a model file",
        description="Show which weights a model shares, by whom, per-call shapes and "
        "unique / per-use / duplicated parameter counts.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("path", metavar="PATH", help="a .keras archive or a Keras .h5 file")
    report.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in Format],
        default=Format.TABLE.value,
        help="output format (default: table)",
    )
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    report.add_argument(
        "--graph",
        metavar="FILE",
        help="also write the variable-identity graph (.graphml or node-link .json)",
    )
    report.add_argument(
        "--load",
        action="store_true",
        help="load the model through Keras instead of reading the file statically",
    )
    report.add_argument(
        "--unsafe",
        action="store_true",
        help="with --load: allow code from the file to run (Lambda layers); only for "
        "files you trust",
    )
    return parser


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a failure never leaves a half-written file."""
    target = Path(path)
    if target.is_dir():
        raise WeighttieError(f"-o expects a file path; {path!r} is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise WeighttieError(f"cannot write {path!r}: directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _emit(text: str, output: str | None) -> None:
    if output:
        _write_atomic(output, text)
    else:
        sys.stdout.write(text)


def _cmd_report(args: argparse.Namespace) -> int:
    from weighttie.graph import check_graph_path, write_graph
    from weighttie.render import render

    if args.graph:
        check_graph_path(args.graph)
    report = _report_for(args.path, load=args.load, unsafe=args.unsafe)
    _emit(render(report, args.format), args.output)
    if args.graph:
        write_graph(report, args.graph)
    return EXIT_OK


def _note(message: str) -> None:
    print(f"weighttie: note: {message}", file=sys.stderr)


def _report_for(path: str, *, load: bool, unsafe: bool) -> Report:
    """The report of a model file: static unless asked to load (or the file needs it)."""
    from weighttie.static import MODEL_CLASSES, read_report

    if load:
        return _loaded_report(path, unsafe=unsafe)
    report = read_report(path)
    if report.model.class_name in MODEL_CLASSES:
        return report
    # A subclassed model: the file has no graph, only its weights. Loading is safe
    # (safe_mode never runs code from the file) but needs the class registered.
    try:
        loaded = _loaded_report(path, unsafe=False)
    except WeighttieError:
        _note(
            f"{report.model.class_name} is a subclassed model and its class is not "
            "available here: layer classes, calls and the trainable split are not in "
            "the file (static report)"
        )
        return report
    _note(
        f"{report.model.class_name} is a subclassed model: its file has no graph, "
        "so it was loaded through Keras (safe mode)"
    )
    return loaded


def _loaded_report(path: str, *, unsafe: bool) -> Report:
    from dataclasses import replace

    from weighttie.ties import load_model
    from weighttie.walk import analyze

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one line per error: Keras's warnings stay out
        model = load_model(path, unsafe=unsafe, compile=False)
    report = analyze(model)
    return replace(report, model=replace(report.model, source="loaded", file=str(path)))


_COMMANDS = {"report": _cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except WeighttieError as exc:
        print(f"weighttie: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("weighttie: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in weighttie: still one line, never a traceback
        if os.environ.get("WEIGHTTIE_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"weighttie: internal error: {type(exc).__name__}: {first} "
            "(set WEIGHTTIE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

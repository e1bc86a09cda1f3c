"""The ``weighttie`` command line: a thin shell over the library.

Exit codes: 0 success, 1 a check or diff found a violation, 2 bad input or usage.
Results go to stdout (or ``-o FILE``), messages to stderr, one line each.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from weighttie.backend_logs import quiet_backend_logs
from weighttie.errors import LimitError, WeighttieError, first_line
from weighttie.escape import printable
from weighttie.progress import status, status_terminal

if TYPE_CHECKING:
    from weighttie.limits import Limits
    from weighttie.report import Report

__all__ = ["main", "run"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2

_EPILOG = """\
examples:
  weighttie report siamese.keras
  weighttie report siamese.keras --format json -o report.json
  weighttie report siamese.keras --graph sharing.graphml
  weighttie report siamese.keras --html sharing.html  # the picture, opens offline
  weighttie report siamese.keras --load          # through Keras instead of the file alone
  weighttie report gemma_preset/                  # a keras_hub preset folder, sharded or not
  weighttie report gemma_preset/ --load           # its calls, built by Keras without weights
  weighttie report llama_checkpoint/              # a Hugging Face folder (config.json, safetensors)

exit codes: 0 success, 1 a check or diff found a violation, 2 bad input or usage.
docs: docs/cli.md
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    from weighttie import __version__

    parser = _Parser(
        prog="weighttie",
        description="Inspect and verify weight sharing in Keras 3 models.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"weighttie {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    _report_command(commands)
    _check_command(commands)
    _snapshot_command(commands)
    _diff_command(commands)
    return parser


def _report_command(commands: Any) -> None:
    from weighttie.render import Format, Sort

    report = commands.add_parser(
        "report",
        help="show sharing groups, per-call shapes and parameter counts of a model file",
        description="Show which weights a model shares, by whom, per-call shapes and "
        "unique / per-use / duplicated parameter counts.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "path",
        metavar="PATH",
        help="a .keras archive, a Keras .h5 file, or a model folder (a keras_hub preset, "
        "a Hugging Face checkpoint)",
    )
    report.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in Format],
        default=Format.TABLE.value,
        help="output format (default: table)",
    )
    report.add_argument(
        "--sort",
        choices=[s.value for s in Sort],
        default=Sort.MODEL.value,
        help="layer rows in model order (as model.summary() lists them; default) or by name",
    )
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    report.add_argument(
        "--graph",
        metavar="FILE",
        help="also write the variable-identity graph (.graphml or node-link .json)",
    )
    report.add_argument(
        "--html",
        metavar="FILE",
        help="also write the picture as a self-contained HTML page (opens offline)",
    )
    report.add_argument("--svg", metavar="FILE", help="also write the picture as an SVG")
    report.add_argument(
        "--load",
        action="store_true",
        help="build the model through Keras from its config, without its weight values, "
        "and trace its calls (source: traced) instead of reading the file statically",
    )
    report.add_argument(
        "--no-findings",
        dest="findings",
        action="store_false",
        help="skip findings (no values are read: faster on very large models)",
    )
    report.add_argument(
        "--unsafe",
        action="store_true",
        help="with --load: allow code from the file to run (Lambda layers); only for "
        "files you trust",
    )
    _import_argument(report)
    _limit_arguments(report)


def _check_command(commands: Any) -> None:
    from weighttie.render import CheckFormat

    check = commands.add_parser(
        "check",
        help="check a model against a spec file (exit 1 on any violation)",
        description="Check a model's sharing against a weighttie.spec/1 TOML file: one line "
        "per violation, exit 1 when any, 0 when none.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_arguments(check)
    check.add_argument("--spec", required=True, metavar="FILE", help="the spec (TOML)")
    check.add_argument(
        "--format",
        "-f",
        choices=[CheckFormat.TEXT.value, CheckFormat.JSON.value],
        default=CheckFormat.TEXT.value,
        help="output format (default: text; JUnit XML goes to --junit)",
    )
    check.add_argument(
        "--junit", metavar="FILE", help="also write JUnit XML (one test case per expectation)"
    )
    check.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE")
    _limit_arguments(check)


def _snapshot_command(commands: Any) -> None:
    snap = commands.add_parser(
        "snapshot",
        help="print a spec describing the model as it is (commit it, check against it)",
        description="Print the weighttie.spec/1 spec the model satisfies as it is.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_arguments(snap)
    snap.add_argument("-o", "--output", metavar="FILE", help="write the spec to FILE")
    _limit_arguments(snap)


def _diff_command(commands: Any) -> None:
    from weighttie.render import DiffFormat

    compare = commands.add_parser(
        "diff",
        help="compare two models' sharing structure and counts "
        "(exit 1 when they differ or could not be compared)",
        description="Compare two models (or saved JSON reports): sharing groups added, "
        "removed or changed, ties, and parameter counts. Exit 1 when they differ, or "
        "when what depends on calls could not be compared.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("a", metavar="A", help="model file, model folder or JSON report")
    compare.add_argument("b", metavar="B", help="model file, model folder or JSON report")
    compare.add_argument(
        "--format",
        "-f",
        choices=[f.value for f in DiffFormat],
        default=DiffFormat.TEXT.value,
        help="output format (default: text)",
    )
    compare.add_argument(
        "--load", action="store_true", help="build both models through Keras (no weight values)"
    )
    compare.add_argument("--unsafe", action="store_true", help="with --load: allow Lambda code")
    _import_argument(compare)
    compare.add_argument("-o", "--output", metavar="FILE", help="write the diff to FILE")
    _limit_arguments(compare)


_LIMIT_FLAGS = {
    "layers": ("--max-layers", "layers in one model file"),
    "calls": ("--max-calls", "calls recorded in one model file"),
    "depth": ("--max-depth", "nesting of models, sublayers and documents"),
    "config_bytes": ("--max-config-bytes", "bytes of a model's JSON config"),
    "h5_objects": ("--max-h5-objects", "objects in one weights file"),
    "tensors": ("--max-tensors", "tensors in one safetensors checkpoint"),
    "spec_bytes": ("--max-spec-bytes", "bytes of a spec file"),
    "report_bytes": ("--max-report-bytes", "bytes of a JSON report"),
}


def _limit_arguments(parser: argparse.ArgumentParser) -> None:
    from weighttie.limits import DEFAULT_LIMITS

    group = parser.add_argument_group(
        "limits", "refuse inputs larger than these (docs/trust-model.md); raise one to read more"
    )
    for name, (flag, what) in _LIMIT_FLAGS.items():
        default = getattr(DEFAULT_LIMITS, name)
        group.add_argument(
            flag,
            dest=f"max_{name}",
            type=_positive_int,
            default=default,
            metavar="N",
            help=f"most {what} (default: {default:,})",
        )


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer; received {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


def _limits(args: argparse.Namespace) -> Limits:
    from weighttie.limits import Limits

    return Limits(**{name: getattr(args, f"max_{name}") for name in _LIMIT_FLAGS})


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="a .keras / .h5 model file, a model folder, or a JSON report"
    )
    parser.add_argument(
        "--load", action="store_true", help="build the model through Keras (no weight values)"
    )
    parser.add_argument("--unsafe", action="store_true", help="with --load: allow Lambda code")
    _import_argument(parser)


def _import_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="with --load: import MODULE first (repeatable), so the custom layer classes "
        "it registers are known to Keras; runs that module's code (docs/trust-model.md)",
    )


def _import_modules(args: argparse.Namespace) -> None:
    """Import the modules ``--import`` names, with the current directory on the path (as
    ``python -m`` has it), before anything is loaded."""
    if not args.imports:
        return
    if not args.load:
        raise WeighttieError(
            "--import names code to run before loading through Keras; it needs --load "
            "(the static report runs no code from anywhere)"
        )
    import importlib

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in args.imports:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any error the module raises while it runs
            raise WeighttieError(
                f"--import {name}: the module could not be imported "
                f"({type(exc).__name__}: {first_line(exc)}); expected an importable module "
                "name, e.g. mypackage.layers, from the current directory or the installed "
                "packages"
            ) from None


_CHECK_EPILOG = """\
examples:
  weighttie snapshot siamese.keras -o weighttie.toml     # commit it
  weighttie check siamese.keras --spec weighttie.toml --junit weighttie-junit.xml
  weighttie diff main/siamese.keras siamese.keras

exit codes: 0 success / no difference, 1 a violation or a difference, 2 bad input or usage.
docs: docs/ci.md, docs/cli.md
"""


def _check_outputs(*paths: str | None) -> None:
    """Check every output path before any work, so a bad one fails before anything is printed."""
    from weighttie.files import check_output_path

    for path in paths:
        if path is not None:
            check_output_path(path)


def _emit(text: str, output: str | None) -> None:
    if output:
        from weighttie.files import write_output

        write_output(output, text)
    else:
        sys.stdout.write(text)


def _cmd_report(args: argparse.Namespace) -> int:
    from weighttie.export import check_graph_path, write_graph
    from weighttie.files import write_output
    from weighttie.render import Format, render

    if args.graph:
        check_graph_path(args.graph)
    _check_outputs(args.output, args.graph, args.html, args.svg)
    report = _model_report(args.path, args, findings=args.findings)
    text = render(report, args.format, sort=args.sort)
    # Files first: a failure to write one leaves stdout untouched.
    if args.graph:
        write_graph(report, args.graph)
    for path, fmt in ((args.html, Format.HTML), (args.svg, Format.SVG)):
        if path:
            with status(f"drawing the picture of {len(report.layers):,} layers"):
                picture = render(report, fmt)
            write_output(path, picture)
    _emit(text, args.output)
    return EXIT_OK


def _model_report(path: str, args: argparse.Namespace, *, findings: bool = True) -> Report:
    """The report of a model file or a saved JSON report, by the library's one policy."""
    from weighttie.front_door import report_of
    from weighttie.traced import TracedFallbackWarning

    _import_modules(args)
    doing = f"building {path} through Keras" if args.load else f"reading {path}"
    with status(doing), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TracedFallbackWarning)
        report = report_of(
            path,
            load=args.load,
            unsafe=args.unsafe,
            findings=findings,
            limits=_limits(args),
        )
    for warning in caught:  # --load fell back to the static report: one line says so
        if issubclass(warning.category, TracedFallbackWarning):
            print(f"weighttie: warning: {printable(str(warning.message))}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return report


def _cmd_check(args: argparse.Namespace) -> int:
    from weighttie.render import CheckFormat, render_check
    from weighttie.spec import check, load_spec

    _check_outputs(args.output, args.junit)
    spec = load_spec(args.spec, limits=_limits(args))
    report = _model_report(args.model, args)
    results = check(report, spec)
    if args.junit:
        from weighttie.files import write_output

        write_output(args.junit, render_check(report, results, args.spec, CheckFormat.JUNIT))
    _emit(render_check(report, results, args.spec, args.format), args.output)
    return EXIT_VIOLATION if any(r.failure for r in results) else EXIT_OK


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from weighttie.spec import snapshot

    _check_outputs(args.output)
    report = _model_report(args.model, args)
    _emit(snapshot(report), args.output)
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace) -> int:
    from weighttie.render import render_diff
    from weighttie.spec import diff

    _check_outputs(args.output)
    a = _model_report(args.a, args)
    b = _model_report(args.b, args)
    result = diff(a, b)
    _emit(render_diff(result, args.format), args.output)
    return EXIT_OK if result.same else EXIT_VIOLATION


_COMMANDS = {
    "report": _cmd_report,
    "check": _cmd_check,
    "snapshot": _cmd_snapshot,
    "diff": _cmd_diff,
}


def _error_line(exc: WeighttieError) -> str:
    message = str(exc)
    if isinstance(exc, LimitError) and exc.limit in _LIMIT_FLAGS:
        message += f" (raise the limit with {_LIMIT_FLAGS[exc.limit][0]} N)"
    return f"weighttie: error: {printable(message)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Every message is one line on stderr: names and Keras's text are escaped, and a
    backend's C++ start-up lines are held back (:func:`quiet_backend_logs`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        # the status line goes to the terminal itself: stderr is held while the work runs
        with status_terminal(), quiet_backend_logs():
            return _COMMANDS[args.command](args)
    except WeighttieError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("weighttie: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in weighttie: still one line, never a traceback
        if os.environ.get("WEIGHTTIE_DEBUG"):
            raise
        lines = str(exc).strip().splitlines()
        first = printable(lines[0]) if lines else ""
        print(
            f"weighttie: internal error: {type(exc).__name__}: {first} "
            "(set WEIGHTTIE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


def run() -> NoReturn:
    """The console script: :func:`main`, then a fast exit.

    Tearing down numpy and h5py at interpreter exit costs tens of milliseconds
    of a static report that takes a few hundred; everything weighttie writes is
    flushed and closed by then, so the process ends at once.

    A reader that stops reading (``weighttie report m.keras | head -1``) ends the
    command as it ends ``cat`` or ``git log``: by SIGPIPE, silently, not with an
    "internal error" (Python ignores SIGPIPE and raises BrokenPipeError instead).
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()

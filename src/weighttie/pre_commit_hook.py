"""The pre-commit hook ``weighttie-check``: each changed model checked against the spec beside it.

pre-commit passes the staged files that match the hook's pattern: ``.keras`` and
``.h5`` models and ``.weighttie.toml`` specs. The spec of ``dir/NAME.keras`` (or
``dir/NAME.h5``) is ``dir/NAME.weighttie.toml``, beside it; for a changed spec, the
models beside it of the same NAME are checked. A model without a spec is skipped,
and the hook says so on stderr: not every ``.h5`` file is a guarded model.

Each pair runs ``weighttie check MODEL --spec SPEC`` (:func:`weighttie.cli.main`):
the same text, the same one-line errors. The exit code is the worst of the checks:
0 every expectation holds, 1 a violation, 2 bad input (a damaged file, an invalid
spec).

Example:
    >>> main(["models/siamese.keras"])              # doctest: +SKIP
    weighttie check models/siamese.keras --spec models/siamese.weighttie.toml
    12 passed, 0 failed ('siamese' against models/siamese.weighttie.toml)
    0
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from weighttie.escape import printable

__all__ = ["MODEL_SUFFIXES", "SPEC_SUFFIX", "main", "pairs", "run", "spec_of"]

#: What ends the name of a model's spec: ``siamese.keras`` ↔ ``siamese.weighttie.toml``.
SPEC_SUFFIX = ".weighttie.toml"
#: The model files the hook checks.
MODEL_SUFFIXES = (".keras", ".h5")

_EPILOG = """\
convention:
  models/siamese.keras (or .h5) is checked against models/siamese.weighttie.toml;
  a model without one is skipped. Write the spec once and commit it:
    weighttie snapshot models/siamese.keras -o models/siamese.weighttie.toml

exit codes: 0 every check passes (or nothing to check), 1 a violation, 2 bad input
(a file that does not exist, a damaged model, an invalid spec, an unknown option).
docs: docs/ci.md
"""

_PROG = "weighttie-pre-commit"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, as in the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def spec_of(model: str) -> str:
    """The spec beside a model file: ``dir/NAME.keras`` → ``dir/NAME.weighttie.toml``.

    Example:
        >>> spec_of("models/siamese.keras")
        'models/siamese.weighttie.toml'
    """
    stem, _ = os.path.splitext(model)
    return stem + SPEC_SUFFIX


def pairs(files: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(model, spec) to check], [why a file is skipped])``, in the order files are given.

    A model is checked once, whether it, its spec or both changed.
    """
    checks: dict[tuple[str, str], None] = {}
    skipped: list[str] = []
    for path in files:
        if path.endswith(SPEC_SUFFIX):
            stem = path[: -len(SPEC_SUFFIX)]
            models = [stem + s for s in MODEL_SUFFIXES if os.path.isfile(stem + s)]
            if not models:
                names = " or ".join(repr(os.path.basename(stem + s)) for s in MODEL_SUFFIXES)
                skipped.append(f"skipped {path!r}: no model {names} beside it")
            checks.update(dict.fromkeys((m, path) for m in models))
        elif path.endswith(MODEL_SUFFIXES):
            spec = spec_of(path)
            if os.path.isfile(spec):
                checks[(path, spec)] = None
            else:
                skipped.append(
                    f"skipped {path!r}: no spec {os.path.basename(spec)!r} beside it "
                    f"(write one with: weighttie snapshot {shlex.quote(path)} "
                    f"-o {shlex.quote(spec)})"
                )
        else:
            skipped.append(f"skipped {path!r}: neither a .keras / .h5 model nor a spec")
    return list(checks), skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Check every changed model that has a spec beside it; return the worst exit code."""
    from weighttie.cli import EXIT_BAD_INPUT, EXIT_OK
    from weighttie.cli import main as weighttie

    parser = _Parser(
        prog=_PROG,
        description="Check each changed .keras / .h5 model against the spec beside it "
        "(NAME.weighttie.toml), as `weighttie check` does.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="changed files (from pre-commit)")
    args = parser.parse_args(argv)
    missing = [path for path in args.files if not os.path.exists(path)]
    if missing:  # pre-commit passes files that exist: a path typed by hand, mistyped
        print(
            f"{_PROG}: error: no such file {printable(repr(missing[0]))}; expected the "
            "changed files pre-commit passes (.keras / .h5 models, .weighttie.toml specs)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    checks, skipped = pairs(args.files)
    for note in skipped:
        print(f"{_PROG}: {printable(note)}", file=sys.stderr, flush=True)
    code = EXIT_OK
    for model, spec in checks:
        command = f"weighttie check {shlex.quote(model)} --spec {shlex.quote(spec)}"
        print(printable(command), flush=True)
        code = max(code, weighttie(["check", model, "--spec", spec]))
        sys.stdout.flush()
    return code


def run() -> NoReturn:
    """The console script ``weighttie-pre-commit``, which the hook's entry names."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()

"""Measure the picture (weighttie.picture) on small and large real models: size and time.

For each model: the report (``weighttie.analyze``, not timed here), then
``to_svg`` and ``to_html`` timed in-process (best of 3), their sizes, and, with
``--browser``, how long headless Chromium takes to load the page (to the page's
script having run) — Chromium driven as tests/picture/test_picture_browser.py does.

Usage:
    .venv/bin/python benchmarks/picture.py [--browser] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests")]

import weighttie  # noqa: E402
from weighttie.picture import to_html, to_svg  # noqa: E402


def siamese_demo() -> Any:
    """The bundled example (`make demo`)."""
    import keras
    from siamese import build_siamese

    keras.utils.set_random_seed(0)
    return build_siamese()


def siamese_xception() -> Any:
    """keras.applications.Xception(weights=None) as a tower called on two inputs."""
    import keras

    keras.utils.set_random_seed(0)
    tower = keras.applications.Xception(
        weights=None, include_top=False, pooling="avg", input_shape=(299, 299, 3)
    )
    a = keras.Input((299, 299, 3), name="left")
    b = keras.Input((299, 299, 3), name="right")
    merged = keras.layers.Concatenate(name="merge")([tower(a), tower(b)])
    out = keras.layers.Dense(1, name="score")(merged)
    return keras.Model([a, b], out, name="siamese_xception")


def wide_20k() -> Any:
    """400 branches of 50 Dense layers, one Dense shared by every branch (benchmarks/run.py)."""
    import keras
    from keras import layers

    inp = keras.Input((4,), name="x")
    shared = layers.Dense(4, name="shared")
    outs = []
    for branch in range(400):
        x = inp
        for i in range(50):
            x = layers.Dense(4, name=f"b{branch}_d{i}")(x)
        outs.append(shared(x))
    return keras.Model(inp, layers.Concatenate(name="cat")(outs), name="wide")


def nested_20k() -> Any:
    """40 nested models of 500 Dense layers each, in a chain; one of them called twice."""
    import keras
    from keras import layers

    blocks = []
    for n in range(40):
        x = keras.Input((4,), name=f"block{n}_in")
        y = x
        for i in range(500):
            y = layers.Dense(4, name=f"block{n}_d{i}")(y)
        blocks.append(keras.Model(x, y, name=f"block{n}"))
    inp = keras.Input((4,), name="x")
    y = inp
    for block in blocks:
        y = block(y)
    y = blocks[0](y)
    return keras.Model(inp, y, name="nested")


MODELS: dict[str, Callable[[], Any]] = {
    "siamese_demo": siamese_demo,
    "siamese_xception": siamese_xception,
    "wide_20k": wide_20k,
    "nested_20k": nested_20k,
}


def best_of(fn: Callable[[], str], repeat: int = 3) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def browser_load(page: str) -> float:
    from picture.test_picture_browser import Chromium, _chromium

    executable = _chromium()
    if executable is None:
        raise SystemExit("no chromium installed")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(page, encoding="utf-8")
        chromium = Chromium(executable, Path(tmp) / "profile")
        try:
            start = time.perf_counter()
            chromium.open(path)
            chromium.evaluate("document.querySelector('.wt').dataset.ready")
            took = time.perf_counter() - start
            problems = chromium.problems()
        finally:
            chromium.close()
    if problems:
        raise SystemExit(f"the page reported problems: {problems[:3]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true", help="also time Chromium's load")
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="these models only")
    args = parser.parse_args()
    print("| model | layers | calls | `to_svg` | SVG | `to_html` | HTML |", end="")
    print(" Chromium load |" if args.browser else "")
    print("|---|---|---|---|---|---|---|" + ("---|" if args.browser else ""))
    for name in args.only or MODELS:
        report = weighttie.analyze(MODELS[name]())
        calls = sum(len(row.nodes or ()) for row in report.layers)
        svg_time, svg = best_of(lambda r=report: to_svg(r))
        html_time, page = best_of(lambda r=report: to_html(r))
        line = (
            f"| {name} | {len(report.layers):,} | {calls:,} | {svg_time:.2f} s | "
            f"{len(svg.encode()) / 1e6:.2f} MB | {html_time:.2f} s | "
            f"{len(page.encode()) / 1e6:.2f} MB |"
        )
        if args.browser:
            line += f" {browser_load(page):.2f} s |"
        print(line, flush=True)


if __name__ == "__main__":
    main()

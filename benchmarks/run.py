"""Speed and memory of weighttie's two paths; prints the tables of docs/performance.md.

Usage (from the repository root, after `make test` or `make bench`):

    .venv/bin/python benchmarks/run.py            # everything (about 10 minutes)
    .venv/bin/python benchmarks/run.py --quick    # skip the 20k-layer model and the 3 GB archive
    .venv/bin/python benchmarks/run.py --only llm # one of xception, scaling, size, limits, llm, hf

Models and archives are cached in build/bench/. Every timing is the median of
several runs of a whole process (python start-up included) unless it says
"in-process"; peak RSS is the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
PY = sys.executable
# Bytecode is written and used, as after a pip install (a user's imports are not compiles).
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
#: Reports are written here: weighttie writes regular files only (no /dev/null).
REPORT = OUT / "last-report.json"

BLOCK_BACKENDS = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "jax", "torch", "keras"}:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, _Block())
"""


def run(argv: list[str], repeat: int = 5, expect: int = 0) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MB, the child's own VmHWM) of a whole process."""
    walls, peaks = [], []
    wrapped = [PY, "-c", PEAK, *argv]
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(wrapped, capture_output=True, text=True, env=ENV)
        walls.append(time.perf_counter() - start)
        if proc.returncode != expect:
            raise SystemExit(f"{argv}: exit {proc.returncode}, expected {expect}: {proc.stderr}")
        peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(walls), max(peaks)


# Runs argv[1:] as a python program in this process (exec, not fork: the same
# process) and prints its peak RSS (VmHWM, kB) to stderr at exit, also when the
# program ends with os._exit (as the weighttie console script does).
PEAK = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as f:
        print(next(l.split()[1] for l in f if l.startswith("VmHWM")), file=sys.stderr)
    sys.stderr.flush()
atexit.register(_peak)
_exit = os._exit
def _exit_with_peak(code):
    _peak()
    _exit(code)
os._exit = _exit_with_peak
args = sys.argv[1:]
if args[0] == "-c":
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<bench>", "exec"), {"__name__": "__main__"})
elif args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__")
"""


def weighttie_static(path: Path) -> list[str]:
    code = (
        BLOCK_BACKENDS
        + "from weighttie.cli import run\nsys.argv = ['weighttie', *sys.argv[1:]]\nrun()"
    )
    return ["-c", code, "report", str(path), "--format", "json", "-o", str(REPORT)]


def weights_file(path: Path) -> Path:
    """The archive's model.weights.h5, extracted beside it (for the floor process)."""
    target = path.with_suffix(".weights.h5")
    if not target.exists():
        with zipfile.ZipFile(path) as archive:
            target.write_bytes(archive.read("model.weights.h5"))
    return target


def floor(path: Path, repeat: int = 5) -> float:
    """The floor any Python reader of the weights pays: start-up, ``import h5py`` (and
    numpy), opening the file (median wall seconds of a whole process)."""
    code = "import sys, h5py; h5py.File(sys.argv[1], 'r')"
    return run(["-c", code, str(weights_file(path))], repeat=repeat)[0]


def build_siamese_xception(path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import keras
        keras.utils.set_random_seed(0)
        tower = keras.applications.Xception(weights=None, include_top=False, pooling="avg",
                                            input_shape=(299, 299, 3))
        a = keras.Input((299, 299, 3), name="left")
        b = keras.Input((299, 299, 3), name="right")
        merged = keras.layers.Concatenate(name="merge")([tower(a), tower(b)])
        out = keras.layers.Dense(1, name="score")(merged)
        keras.Model([a, b], out, name="siamese_xception").save({str(path)!r})
        """
    )
    subprocess.run([PY, "-c", code], check=True, env=ENV)


def bench_xception() -> list[str]:
    path = OUT / "siamese_xception.keras"
    if not path.exists():
        build_siamese_xception(path)
    size = path.stat().st_size / 1e6
    floor_wall = floor(path)
    static_wall, static_rss = run(weighttie_static(path), repeat=9)
    load_code = (
        "import sys, time, keras\nt = time.perf_counter()\n"
        "keras.saving.load_model(sys.argv[1], compile=False)\n"
        "print(time.perf_counter() - t, file=sys.stderr)"
    )
    load_wall, load_rss = run(["-c", load_code, str(path)], repeat=3)
    inproc = subprocess.run(
        [PY, "-c", load_code, str(path)], env=ENV, capture_output=True, text=True, check=True
    )
    load_only = float(inproc.stderr.strip().splitlines()[-1])
    live_wall, live_rss = run(
        ["-m", "weighttie.cli", "report", str(path), "--load", "-f", "json", "-o", str(REPORT)],
        repeat=3,
    )
    return [
        f"Siamese Xception archive, {size:.0f} MB (`{path.relative_to(ROOT)}`):",
        "",
        "| what (whole process) | wall | peak RSS | ratio |",
        "|---|---|---|---|",
        f"| floor: `python -c 'import h5py; h5py.File(weights)'` | {floor_wall:.2f} s | | 1 |",
        f"| `weighttie report` static, backends unimportable | {static_wall:.2f} s | "
        f"{static_rss:.0f} MB | {static_wall / floor_wall:.2f}x the floor |",
        f"| `weighttie report --load` (Keras + TensorFlow) | {live_wall:.2f} s "
        f"| {live_rss:.0f} MB | {live_wall / static_wall:.1f}x static |",
        f"| `python -c 'import keras; keras.saving.load_model(...)'` | {load_wall:.2f} s | "
        f"{load_rss:.0f} MB | {load_wall / static_wall:.1f}x static |",
        "",
        f"`keras.saving.load_model` alone, in-process (after `import keras`): {load_only:.2f} s, "
        f"{load_only / static_wall:.1f}x the static whole process.",
    ]


SCALE_CODE = textwrap.dedent(
    """
    import sys, time, json, keras
    from keras import layers
    n, path = int(sys.argv[1]), sys.argv[2]
    sys.setrecursionlimit(100000)
    inp = keras.Input((4,), name="x")
    shared = layers.Dense(4, name="shared")
    outs, count, branch = [], 0, 0
    while count < n:
        x = inp
        for i in range(50):
            x = layers.Dense(4, name=f"b{branch}_d{i}")(x)
            count += 1
        outs.append(shared(x))
        branch += 1
    model = keras.Model(inp, layers.Concatenate(name="cat")(outs))
    import io, weighttie
    def timed(f, repeat=3):
        best = None
        for _ in range(repeat):
            t = time.perf_counter(); f(); took = time.perf_counter() - t
            best = took if best is None else min(best, took)
        return best
    summary = timed(lambda: model.summary(print_fn=lambda *a, **k: None))
    report = weighttie.analyze(model)
    live = timed(lambda: weighttie.analyze(model))
    model.save(path)
    from weighttie.static import read_report
    t = time.perf_counter()
    static = read_report(path)
    took = time.perf_counter() - t
    assert static.params == report.params and static.groups == report.groups
    nodes = sum(len(r.nodes or ()) for r in report.layers)
    print(json.dumps({"layers": len(report.layers), "nodes": nodes, "live": live,
                      "summary": summary, "static": took}))
    """
)


def bench_scaling(sizes: list[int]) -> list[str]:
    lines = [
        "Cost against model size (a wide model: branches of 50 Dense layers, one Dense shared "
        "by every branch). Static: whole processes (median wall), against the floor process "
        "on the same weights file. Live: in-process, best of three, against `model.summary()` "
        "of the same model:",
        "",
        "| layers | calls | floor | static | static above floor, per layer "
        "| live `analyze` | `summary()` | analyze / summary |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        path = OUT / f"wide{n}.keras"
        facts_path = OUT / f"wide{n}.json"
        if not path.exists() or not facts_path.exists():
            result = subprocess.run(
                [PY, "-c", SCALE_CODE, str(n), str(path)],
                env=ENV,
                capture_output=True,
                text=True,
                check=True,
            )
            facts_path.write_text(result.stdout.strip().splitlines()[-1])
        facts = json.loads(facts_path.read_text())
        floor_wall = floor(path)
        wall, _ = run(weighttie_static(path), repeat=5)
        per_layer = (wall - floor_wall) / facts["layers"] * 1000
        lines.append(
            f"| {facts['layers']:,} | {facts['nodes']:,} | {floor_wall:.2f} s | {wall:.2f} s | "
            f"{per_layer:.3f} ms | {facts['live']:.2f} s | {facts['summary']:.2f} s | "
            f"{facts['live'] / facts['summary']:.2f} |"
        )
    return lines


BIG_CODE = textwrap.dedent(
    """
    import json, sys, zipfile, h5py, numpy as np
    units, path, copies = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "copies"
    names = ["a", "b", "c"]
    layers = [{"module": "keras.layers", "class_name": "InputLayer", "name": "x",
               "config": {"name": "x", "batch_shape": [None, units], "dtype": "float32"},
               "inbound_nodes": []}]
    previous = "x"
    for name in names:
        tensor = {"class_name": "__keras_tensor__",
                  "config": {"shape": [None, units], "dtype": "float32",
                             "keras_history": [previous, 0, 0]}}
        layers.append({"module": "keras.layers", "class_name": "Dense", "name": name,
                       "config": {"name": name, "units": units, "use_bias": True},
                       "build_config": {"input_shape": [None, units]},
                       "inbound_nodes": [{"args": [tensor], "kwargs": {}}]})
        previous = name
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "config": {"name": "big", "layers": layers, "input_layers": [["x", 0, 0]],
                         "output_layers": [[previous, 0, 0]]}}
    h5_path = path + ".h5"
    with h5py.File(h5_path, "w") as h5:
        h5.create_group("vars").attrs["name"] = "big"
        for i, name in enumerate(names):
            key = "dense" if i == 0 else f"dense_{i}"
            g = h5.create_group(f"layers/{key}/vars")
            g.attrs["name"] = name
            kernel = g.create_dataset("0", shape=(units, units), dtype="float32")
            # distinct values per layer; with "copies", layers b and c hold the same
            seed = 1 if copies and i == 2 else i
            block = np.random.default_rng(seed).normal(size=(256, units)).astype("float32")
            for row in range(0, units, 256):
                kernel[row:row + 256] = block[: min(256, units - row)]
            g.create_dataset("1", data=np.zeros(units, "float32"))
        h5.create_group("layers/input_layer/vars").attrs["name"] = "x"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.write(h5_path, "model.weights.h5")
    import os
    os.remove(h5_path)
    """
)


def bench_size(big_units: int) -> list[str]:
    lines = [
        "Cost against file size: archives with the same graph (three Dense layers) and "
        "growing variables. A report reads no values except to look for copies "
        "(`broken-tie`): same-shaped variables are sampled (64 kB each) and read in full, "
        "in 1 MB chunks, only when samples collide — the last row, where two 1 GB kernels "
        "are copies of each other:",
        "",
        "| archive | size | wall | peak RSS |",
        "|---|---|---|---|",
    ]
    for units, copies in ((64, False), (big_units, False), (big_units, True)):
        name = f"dense{units}{'-copies' if copies else ''}.keras"
        path = OUT / name
        if not path.exists():
            mode = "copies" if copies else "distinct"
            subprocess.run([PY, "-c", BIG_CODE, str(units), str(path), mode], check=True, env=ENV)
        wall, rss = run(weighttie_static(path), repeat=3)
        size = path.stat().st_size
        shown = f"{size / 1e9:.2f} GB" if size > 1e8 else f"{size / 1e3:.0f} kB"
        lines.append(f"| `{name}` | {shown} | {wall:.2f} s | {rss:.0f} MB |")
    return lines


def bench_llm() -> list[str]:
    """A keras_hub preset of a 32-block decoder, 6.9 GB of weights declared in a sparse file."""
    from synthetic_llm import Decoder, write_preset

    folder = OUT / "llm-preset"
    if not (folder / "model.weights.json").exists():
        write_preset(folder)
    decoder = Decoder()
    lines = [
        f"An LLM-sized keras_hub preset: a GPT-2 config of {decoder.num_layers} blocks "
        f"(hidden {decoder.hidden_dim}, {decoder.params() / 1e9:.2f} B parameters), its "
        "weights in sharded files declared in full but written only 64 kB per variable "
        "(`benchmarks/synthetic_llm.py`):",
        "",
        "| preset | files | declared size | on disk | wall | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    dense = OUT / "llm-dense"  # every byte written: what a real model's files hold
    if not (dense / "model.weights.json").exists():
        smaller = Decoder(num_heads=8, hidden_dim=1024, intermediate_dim=4096)
        write_preset(dense, smaller, dense=True)
    for path, argv, what in (
        (folder, weighttie_static(folder), "sparse, `weighttie report`"),
        (folder, [*weighttie_static(folder), "--no-findings"], "sparse, `--no-findings`"),
        (dense, weighttie_static(dense), "dense (hidden 1024), `weighttie report`"),
    ):
        files = sorted(path.iterdir())
        size = sum(p.stat().st_size for p in files)
        disk = sum(p.stat().st_blocks * 512 for p in files)
        wall, rss = run(argv, repeat=5)
        lines.append(
            f"| {what} | {len(files)} | {size / 1e9:.2f} GB | {disk / 1e6:.0f} MB | "
            f"{wall:.2f} s | {rss:.0f} MB |"
        )
    return lines


def bench_hf() -> list[str]:
    """A 7B-sized Hugging Face checkpoint (Llama 2 7B's shapes), 13.5 GB declared, sparse."""
    from synthetic_checkpoint import Llama, write_checkpoint

    model = Llama()
    lines = [
        f"A 7B-sized Hugging Face checkpoint: Llama 2 7B's config ({model.num_hidden_layers} "
        f"blocks, hidden {model.hidden_size}, float16) as `save_pretrained` writes it, two "
        "shards and the index, declared in full but written only 64 kB per tensor "
        "(`benchmarks/synthetic_checkpoint.py`):",
        "",
        "| checkpoint (whole process, backends unimportable) | tensors | declared size "
        "| on disk | wall | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for variant, what in (
        ("untied", "Llama 2 as published (`tie_word_embeddings` false)"),
        ("tied", "tied, no `lm_head.weight` (a `tied` group)"),
        ("stored-twice", "tied, `lm_head.weight` stored too: two 262 MB copies compared in full"),
    ):
        folder = OUT / f"hf-7b-{variant}"
        if not (folder / "model.safetensors.index.json").exists():
            write_checkpoint(folder, variant)
        files = sorted(folder.iterdir())
        index = json.loads((folder / "model.safetensors.index.json").read_text())
        size = sum(p.stat().st_size for p in files)
        disk = sum(p.stat().st_blocks * 512 for p in files)
        wall, rss = run(weighttie_static(folder), repeat=5)
        lines.append(
            f"| {what} | {len(index['weight_map'])} | {size / 1e9:.2f} GB | {disk / 1e6:.0f} MB "
            f"| {wall:.2f} s | {rss:.0f} MB |"
        )
    return lines


LIMIT_CODE = textwrap.dedent(
    """
    import io, json, sys, zipfile, h5py, numpy as np
    kind, path = sys.argv[1], sys.argv[2]
    sys.path.insert(0, "tests")
    from weighttie.limits import DEFAULT_LIMITS as L

    def tensor(source):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [None, 4], "dtype": "float32",
                           "keras_history": [source, 0, 0]}}

    def entry(cls, name, config, nodes):  # as Keras 3.15 writes a layer
        dtype = {"module": "keras", "class_name": "DTypePolicy",
                 "config": {"name": "float32"}, "registered_name": None}
        return {"module": "keras.layers", "class_name": cls, "registered_name": None,
                "config": {"name": name, "trainable": True, "dtype": dtype, **config},
                "build_config": {"input_shape": [None, 4]}, "name": name,
                "inbound_nodes": [{"args": [tensor(s)], "kwargs": {}} for s in nodes]}

    layers = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
               "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"},
               "name": "x", "inbound_nodes": []}]
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        h5.create_group("vars").attrs["name"] = "limit"
        h5.create_group("layers/input_layer/vars").attrs["name"] = "x"
        if kind == "layers":  # a chain of weightless layers, up to the layers limit
            previous = "x"
            for i in range(1, L.layers):
                name = f"a{i}"
                layers.append(entry("Activation", name, {"activation": "relu"}, [previous]))
                h5.create_group(f"layers/activation_{i}/vars").attrs["name"] = name
                previous = name
        else:  # one Dense called on the input, up to the calls limit
            layers.append(entry("Dense", "d", {"units": 4}, ["x"] * (L.calls - 1)))
            group = h5.create_group("layers/dense/vars")
            group.attrs["name"] = "d"
            group.create_dataset("0", data=np.ones((4, 4), "float32"))
            group.create_dataset("1", data=np.zeros(4, "float32"))
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "config": {"name": "limit", "layers": layers}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config), zipfile.ZIP_DEFLATED)
        z.writestr("model.weights.h5", weights.getvalue())
    """
)

COST_CODE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from support import hostile
    valid = hostile.Valid(keras=Path(sys.argv[3]), h5=Path(sys.argv[3]))
    getattr(hostile, sys.argv[1])(valid, Path(sys.argv[2]).parent).rename(sys.argv[2])
    """
)


def bench_limits(previous: str | None) -> list[str]:
    """Files right at the default layers and calls limits, and the issue's two cost cases."""
    from weighttie.limits import DEFAULT_LIMITS as limits

    valid = OUT / "tiny.keras"
    if not valid.exists():
        subprocess.run([PY, "-c", BIG_CODE, "4", str(valid), "distinct"], check=True, env=ENV)
    cases = []
    for kind in ("layers", "calls"):
        path = OUT / f"at-{kind}-limit.keras"
        if not path.exists():
            subprocess.run([PY, "-c", LIMIT_CODE, kind, str(path)], check=True, env=ENV, cwd=ROOT)
        cases.append((f"`{path.name}`: at the {kind} limit", path, 0))
    for builder, what in (("many_layers", "640,000 layers"), ("many_calls", "470,000 calls")):
        path = OUT / f"{builder.replace('_', '-')}.keras"
        if not path.exists():
            subprocess.run(
                [PY, "-c", COST_CODE, builder, str(path), str(valid)], check=True, env=ENV, cwd=ROOT
            )
        cases.append((f"`{path.name}`: {what}, refused", path, 2))
    lines = [
        f"Files at the default limits ({limits.layers:,} layers, {limits.calls:,} calls) and "
        "the two small, costly files of issue 9; whole process, `weighttie report` (static, "
        "backends unimportable, findings on):",
        "",
        "| file | archive | wall | peak RSS |" + (" before: wall | peak RSS |" if previous else ""),
        "|---|---|---|---|" + ("---|---|" if previous else ""),
    ]
    for label, path, code in cases:
        wall, rss = run(weighttie_static(path), repeat=3, expect=code)
        row = f"| {label} | {path.stat().st_size / 1e6:.2f} MB | {wall:.2f} s | {rss:.0f} MB |"
        if previous:
            env_before = {**ENV, "PYTHONPATH": previous}
            before = _run_with(weighttie_static(path), env_before)
            row += f" {before[0]:.2f} s | {before[1]:.0f} MB |"
        lines.append(row)
    return lines


def _run_with(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run of a whole process under ``env``, whatever its exit code."""
    start = time.perf_counter()
    proc = subprocess.run([PY, "-c", PEAK, *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest cases")
    parser.add_argument(
        "--only",
        choices=["xception", "scaling", "size", "limits", "llm", "hf"],
        help="run one section only",
    )
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="limits: also time an older weighttie (the src/ directory of a checkout of it)",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    compileall.compile_dir(ROOT / "src", quiet=1)  # imports as after an install
    runs = {
        "xception": bench_xception,
        "scaling": lambda: bench_scaling([1000, 5000] if args.quick else [1000, 5000, 20000]),
        "size": lambda: bench_size(4096 if args.quick else 16384),
        "limits": lambda: bench_limits(args.before),
        "llm": bench_llm,
        "hf": bench_hf,
    }
    sections = [run() for name, run in runs.items() if args.only in (None, name)]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    print("\n\n".join("\n".join(s) for s in sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``--load`` without weight values (source: traced) against a real load; prints markdown.

Usage (from the repository root; the backend is the one ``KERAS_BACKEND`` names):

    .venv/bin/python benchmarks/traced.py                  # GPT-2 small and the 1.72 B preset
    .venv/bin/python benchmarks/traced.py --real-preset    # also load the preset with its
                                                           # 6.9 GB of values (about 8 GB RSS)

Every figure is a whole process (python start-up and imports included), the median
of ``--repeat`` runs, peak RSS its own high-water mark (VmHWM), as in run.py. The
models are written into build/bench/ by this script (nothing is downloaded):

* ``gpt2_small.keras``: ``GPT2CausalLM`` on ``GPT2Backbone(vocabulary_size=50257,
  num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
  max_sequence_length=1024)``, no preprocessor: 124,439,808 parameters, 498 MB;
* ``llm-preset/``: the synthetic 1.72 B-parameter GPT-2 preset of synthetic_llm.py.

Before timing, the traced report of GPT-2 small is checked against the real load's
(its symbolic pass run through the backend only): the same uses, per-use counts,
duplicated counts and groups, or the script stops.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from run import ENV, OUT, PY, REPORT, run
from synthetic_llm import Decoder, write_preset

GPT2_SMALL = {
    "vocabulary_size": 50257,
    "num_layers": 12,
    "num_heads": 12,
    "hidden_dim": 768,
    "intermediate_dim": 3072,
    "max_sequence_length": 1024,
}

BUILD_GPT2 = textwrap.dedent(
    f"""
    import sys, keras_hub
    backbone = keras_hub.models.GPT2Backbone(**{GPT2_SMALL!r})
    keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None).save(sys.argv[1])
    """
)

# The real load: what --load did before it was traced (weighttie.load_model, analyze).
# With a third argument, the check's oracle: the symbolic pass runs every call through
# the backend, as before runs on Keras tensors (weighttie._keras.keras_tensors).
REAL_FILE = textwrap.dedent(
    """
    import functools, sys, warnings, weighttie
    from weighttie import _keras
    warnings.simplefilter("ignore")
    if sys.argv[3:] == ["--through-the-backend"]:
        for name in ("trace_model", "trace_calls_of"):
            whole = functools.partial(getattr(_keras, name), keras_tensors_first=False)
            setattr(_keras, name, whole)
    model = weighttie.load_model(sys.argv[1], compile=False)
    open(sys.argv[2], "w").write(weighttie.analyze(model, findings=False).to_json())
    """
)
REAL_PRESET = textwrap.dedent(
    """
    import sys, warnings, keras_hub, weighttie
    warnings.simplefilter("ignore")
    model = keras_hub.models.Backbone.from_preset(sys.argv[1])
    open(sys.argv[2], "w").write(weighttie.analyze(model, findings=False).to_json())
    """
)
IMPORT_FLOOR = "import keras_hub"


def cli(*argv: str) -> list[str]:
    return ["-m", "weighttie.cli", *argv]


def counts(path: Path) -> dict[str, object]:
    doc = json.loads(path.read_text())
    return {
        "params": doc["params"],
        "uses": sorted(
            (row["class"], row["uses"], row["params"]["per_use"]) for row in doc["layers"]
        ),
        "groups": [(g["kind"], g["params"], g["calls"], g["duplicated"]) for g in doc["groups"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--real-preset", action="store_true", help="also load the preset's values")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    gpt2 = OUT / "gpt2_small.keras"
    if not gpt2.exists():
        subprocess.run([PY, "-c", BUILD_GPT2, str(gpt2)], check=True, env=ENV)
    preset = OUT / "llm-preset"
    if not (preset / "model.weights.json").exists():
        write_preset(preset)

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    real_json, traced_json = OUT / "real-report.json", OUT / "traced-report.json"
    oracle = [PY, "-c", REAL_FILE, str(gpt2), str(real_json), "--through-the-backend"]
    subprocess.run(oracle, check=True, env=ENV)
    subprocess.run(
        [PY, *cli("report", str(gpt2), "--load", "-f", "json", "-o", str(traced_json))],
        check=True,
        env=ENV,
    )
    if counts(real_json) != counts(traced_json):
        raise SystemExit("the traced report of GPT-2 small disagrees with the real load")

    rows: list[tuple[str, list[str]]] = [
        (f"`{IMPORT_FLOOR}` (the floor)", ["-c", IMPORT_FLOOR]),
        (
            "GPT-2 small, `weighttie report --load` (traced)",
            cli("report", str(gpt2), "--load", "-f", "json", "-o", str(REPORT)),
        ),
        (
            "GPT-2 small, real load (`load_model` + `analyze`)",
            ["-c", REAL_FILE, str(gpt2), str(real_json)],
        ),
        (
            "GPT-2 small, `weighttie report` (static)",
            cli("report", str(gpt2), "-f", "json", "-o", str(REPORT)),
        ),
        (
            f"{Decoder().params() / 1e9:.2f} B preset, `weighttie report --load` (traced)",
            cli("report", str(preset), "--load", "-f", "json", "-o", str(REPORT)),
        ),
        (
            f"{Decoder().params() / 1e9:.2f} B preset, `weighttie report` (static)",
            cli("report", str(preset), "-f", "json", "-o", str(REPORT)),
        ),
    ]
    if args.real_preset:
        rows.append(
            (
                f"{Decoder().params() / 1e9:.2f} B preset, real load (`from_preset`)",
                ["-c", REAL_PRESET, str(preset), str(real_json)],
            )
        )
    print(f"Backend: {backend}; medians of {args.repeat} whole processes.\n")
    print("| what (whole process) | wall | peak RSS |")
    print("|---|---|---|")
    for what, argv in rows:
        repeat = 1 if "real load" in what and "preset" in what else args.repeat
        wall, rss = run(argv, repeat=repeat)
        print(f"| {what} | {wall:.2f} s | {rss:,.0f} MB |", flush=True)


if __name__ == "__main__":
    main()

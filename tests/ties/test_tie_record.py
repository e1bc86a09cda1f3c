"""One pairing rule for live layers and a file's rows (tie_record.pair_variables).

Regression: the static reader paired only the target's variables, so a
file declaring a tie whose source holds a variable the target lacks was reported
as bound, while weighttie.load_model refuses it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import pytest

import weighttie
from weighttie.cli import main
from weighttie.tie_record import RECORD_KEY, file_ties


def _save_kernel_only_tie(tmp_path: Path) -> Path:
    x = keras.Input((4,), name="x")
    with_bias = keras.layers.Dense(3, name="with_bias")
    no_bias = keras.layers.Dense(3, use_bias=False, name="no_bias")
    model = keras.Model(x, [with_bias(x), no_bias(x)])
    weighttie.tie_weights(with_bias, no_bias, variables=["kernel"], keep="source")
    path = tmp_path / "tied.keras"
    model.save(path)
    return path


def _declare_every_variable(path: Path) -> Path:
    """The same file, but its tie record says: tie every variable (None)."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    config = json.loads(members["config.json"])
    for entry in config["config"]["layers"]:
        record = (entry.get("build_config") or {}).get(RECORD_KEY)
        for tie in (record or {}).get("ties", []):
            tie["variables"] = None
    members["config.json"] = json.dumps(config).encode()
    out = path.with_name("every.keras")
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out


def test_a_kernel_only_tie_is_bound_on_both_paths(tmp_path: Path) -> None:
    path = _save_kernel_only_tie(tmp_path)
    (tie,) = weighttie.read_report(path).ties
    assert (tie.source, tie.target, tie.variables, tie.bound) == (
        "with_bias",
        "no_bias",
        ("kernel",),
        True,
    )
    model = weighttie.load_model(path)
    assert model.get_layer("no_bias").kernel is model.get_layer("with_bias").kernel


def test_a_tie_the_layers_cannot_take_is_unbound_statically_and_refused_by_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _declare_every_variable(_save_kernel_only_tie(tmp_path))
    (tie,) = weighttie.read_report(path).ties
    assert tie.bound is False  # was True before the rules were one
    report = weighttie.read_report(path)
    assert report.params.unique == 4 * 3 + 3 + 4 * 3  # nothing merged
    with pytest.raises(weighttie.TieError, match="no_bias holds no variable 'bias'"):
        weighttie.load_model(path)
    assert main(["report", str(path), "--load"]) == 2
    assert "holds no variable 'bias'" in capsys.readouterr().err


def test_file_ties_reads_records_by_token_and_refuses_a_missing_source() -> None:
    entries = [
        ("a", {"build_config": {RECORD_KEY: {"version": 1, "id": "t-a", "ties": []}}}),
        (
            "b",
            {
                "build_config": {
                    RECORD_KEY: {"id": "t-b", "ties": [{"source": "t-a", "variables": ["kernel"]}]}
                }
            },
        ),
        ("c", {"build_config": {"input_shape": [None, 3]}}),
    ]
    (tie,) = file_ties(entries)
    assert (tie.source, tie.target, tie.variables) == ("a", "b", ("kernel",))
    with pytest.raises(weighttie.FileFormatError, match="not in the file"):
        file_ties([entries[1]])
    assert file_ties([entries[2]]) == []

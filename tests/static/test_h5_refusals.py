"""Weights files that reach outside themselves are refused before any value is read.

External storage, external links, dangling soft links, virtual datasets and filters
HDF5 would load as plugins make HDF5 open paths on the host: /etc/passwd read as
weight values, or a FIFO that blocks inside HDF5's C code where no Python time
budget fires. The static reader, ``check_before_load`` and every load through Keras
(``load_keras_model``, ``weighttie.load_model``) refuse them with one clear error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

import weighttie
from support.hostile import (
    KERAS_KERNEL,
    SECRET,
    Valid,
    dangling_soft_link,
    edit_legacy,
    edit_weights,
    external_file,
    external_link,
    fifo_guard,
    host_secret,
    legacy_kernel,
    looping_heap,
    make_fifo,
    plugin_filter,
    virtual_dataset,
)
from weighttie.errors import FileFormatError, MissingFileError
from weighttie.keras_loading import load_keras_model
from weighttie.model_files import check_model_file
from weighttie.static import check_before_load, read_report

SELF_CONTAINED = "weighttie reads only self-contained weights files"


def _message(path: Path, tail: str) -> str:
    where = f"{str(path)!r}: model.weights.h5" if path.suffix == ".keras" else repr(str(path))
    return f"{where} {tail.replace('{dir}', str(path.parent))}"


KERAS_CASES: dict[str, tuple[Callable[[h5py.File, Path], None], str]] = {
    "external storage, a host file": (
        external_file(host_secret, lambda h5: KERAS_KERNEL),
        f"stores dataset '{KERAS_KERNEL}' in an external file ('{{dir}}/host-secret.txt'); "
        + SELF_CONTAINED,
    ),
    "external storage, a FIFO": (
        external_file(make_fifo, lambda h5: KERAS_KERNEL),
        f"stores dataset '{KERAS_KERNEL}' in an external file ('{{dir}}/pipe'); {SELF_CONTAINED}",
    ),
    "external link to a FIFO": (
        external_link,
        f"links '{KERAS_KERNEL}' to object '/weights' of another file ('{{dir}}/pipe'); "
        + SELF_CONTAINED,
    ),
    "dangling soft link": (
        dangling_soft_link,
        "holds a soft link 'layers/dense/vars/extra' to '/elsewhere/kernel', which names no "
        f"object of the file; {SELF_CONTAINED}",
    ),
    "virtual dataset from a FIFO": (
        virtual_dataset,
        f"stores dataset '{KERAS_KERNEL}' as a virtual dataset mapped from '{{dir}}/pipe'; "
        + SELF_CONTAINED,
    ),
    "plugin filter": (
        plugin_filter,
        f"stores dataset '{KERAS_KERNEL}' through HDF5 filter 32999 (unnamed), which is not "
        "built into HDF5: reading it would load a plugin library from this machine; weighttie "
        "reads only datasets stored plain or with HDF5's built-in filters",
    ),
}


@pytest.mark.parametrize("name", sorted(KERAS_CASES))
def test_keras_weights_reaching_outside_are_refused_everywhere(
    name: str, valid: Valid, tmp_path: Path
) -> None:
    edit, tail = KERAS_CASES[name]
    path = edit_weights(edit)(valid, tmp_path)
    expected = _message(path, tail)
    with fifo_guard(tmp_path) as opened:
        for read in (
            read_report,
            lambda p: read_report(p, findings=False),
            check_before_load,
            load_keras_model,
            weighttie.load_model,
        ):
            with pytest.raises(FileFormatError) as caught:
                read(path)
            assert str(caught.value) == expected
    assert not opened, f"a FIFO was opened: {opened}"


LEGACY_CASES = {
    "external storage, a host file": (host_secret, "host-secret.txt"),
    "external storage, a FIFO": (make_fifo, "pipe"),
}


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_legacy_weights_reaching_outside_are_refused_everywhere(
    name: str, valid: Valid, tmp_path: Path
) -> None:
    target, file_name = LEGACY_CASES[name]
    path = edit_legacy(external_file(target, legacy_kernel))(valid, tmp_path)
    with h5py.File(path) as h5:
        kernel = legacy_kernel(h5)
    expected = (
        f"{str(path)!r} stores dataset {kernel!r} in an external file "
        f"('{tmp_path}/{file_name}'); {SELF_CONTAINED}"
    )
    with fifo_guard(tmp_path) as opened:
        for read in (read_report, check_before_load, load_keras_model, weighttie.load_model):
            with pytest.raises(FileFormatError) as caught:
                read(path)
            assert str(caught.value) == expected
    assert not opened, f"a FIFO was opened: {opened}"


def test_the_host_file_really_is_read_as_weights_without_the_check(
    valid: Valid, tmp_path: Path
) -> None:
    """What is refused is real: plain h5py returns the host file's bytes as the kernel."""
    path = edit_legacy(external_file(host_secret, legacy_kernel))(valid, tmp_path)
    with h5py.File(path) as h5:
        kernel = np.asarray(h5[legacy_kernel(h5)])
    assert kernel.tobytes() == (SECRET * 64)[: kernel.nbytes]


def test_a_fifo_as_the_model_path_is_never_opened(tmp_path: Path) -> None:
    for name in ("model.keras", "model.h5"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        expected = f"{str(fifo)!r} is a FIFO (named pipe); expected a .keras or .h5 model file"
        with fifo_guard(tmp_path) as opened:
            for read in (check_model_file, read_report, load_keras_model, weighttie.load_model):
                with pytest.raises(FileFormatError, match=r"is a FIFO \(named pipe\)") as caught:
                    read(fifo)
                assert str(caught.value) == expected
        assert not opened


def test_a_dangling_symlink_is_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "m.keras").symlink_to(tmp_path / "gone.keras")
    with pytest.raises(MissingFileError, match="no such file"):
        read_report(tmp_path / "m.keras")


# -- what stays accepted -------------------------------------------------------------------


def _soft_link_inside(h5: h5py.File, out: Path) -> None:
    h5["kernel_alias"] = h5py.SoftLink("/" + KERAS_KERNEL)


def _gzip_kernel(h5: h5py.File, out: Path) -> None:
    values = np.asarray(h5[KERAS_KERNEL])
    del h5[KERAS_KERNEL]
    h5.create_dataset(KERAS_KERNEL, data=values, compression="gzip", shuffle=True)


@pytest.mark.parametrize("edit", [_soft_link_inside, _gzip_kernel], ids=["soft link", "gzip"])
def test_self_contained_files_stay_readable(
    edit: Callable[[h5py.File, Path], None], valid: Valid, tmp_path: Path
) -> None:
    """A soft link to an object of the file and HDF5's built-in filters are not refused."""
    path = edit_weights(edit)(valid, tmp_path)
    assert read_report(path).params == read_report(valid.keras).params
    check_before_load(path)
    loaded = load_keras_model(path)
    original = load_keras_model(valid.keras)
    for a, b in zip(loaded.weights, original.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_heap_hdf5_would_decode_forever_is_refused_before_keras(
    valid: Valid, tmp_path: Path
) -> None:
    """A fuzzer find: HDF5 itself spins in C on this file, so the check runs in a child
    process under a hang guard (a regression fails here instead of hanging the suite)."""
    path = looping_heap(valid, tmp_path)
    code = (
        "import sys\n"
        "from weighttie.errors import FileFormatError\n"
        "from weighttie.static import check_before_load, read_report\n"
        "for read in (read_report, check_before_load):\n"
        "    try:\n"
        "        read(sys.argv[1])\n"
        "    except FileFormatError as exc:\n"
        "        print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stderr
    for line in lines:
        assert line.startswith(f"{str(path)!r}: model.weights.h5 is damaged: the global heap ")
        assert line.endswith("claiming 0 bytes, which HDF5 would decode forever")


def test_a_soft_link_through_another_soft_link_is_refused(valid: Valid, tmp_path: Path) -> None:
    """Soft links must name an object through hard links alone (Keras writes none)."""

    def chain(h5: h5py.File, out: Path) -> None:
        h5["vars_alias"] = h5py.SoftLink("/layers/dense/vars")
        h5["kernel_alias"] = h5py.SoftLink("/vars_alias/0")

    path = edit_weights(chain)(valid, tmp_path)
    with pytest.raises(FileFormatError) as caught:
        read_report(path)
    assert str(caught.value) == _message(
        path,
        "holds a soft link 'kernel_alias' to '/vars_alias/0', which names no object of the "
        f"file; {SELF_CONTAINED}",
    )

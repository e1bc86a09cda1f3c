"""`-o`, `--junit` and `--graph`: a complete file or none, written where the user means.

Regression tests: `-o` replaced a symlink instead of
writing through it, reset an existing file's mode to 0600 and could replace
special files; a 300-character name and `--graph` into a missing directory or onto
a directory gave "internal error", the latter after the report was printed.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from support import zoo
from support.cli_run import run
from weighttie.errors import OutputError
from weighttie.files import check_output_path, read_limited, regular_file, write_output


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "siamese.keras"
    zoo.siamese_tower().save(path)
    return path


def assert_one_error_line(code: int, out: str, err: str, piece: str) -> None:
    assert code == 2
    assert out == ""  # nothing was printed before the error
    assert err.count("\n") == 1 and err.startswith("weighttie: error: "), err
    assert piece in err, err


# -- writing through, keeping modes -------------------------------------------------


def test_o_writes_through_a_symlink_and_keeps_it(model_file: Path, tmp_path: Path, capsys) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    code, out, _ = run(capsys, "report", str(model_file), "-o", str(link))
    assert code == 0 and out == ""
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("Model 'siamese_tower'")


def test_o_writes_through_a_dangling_symlink(model_file: Path, tmp_path: Path, capsys) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "not-yet.txt")
    assert run(capsys, "report", str(model_file), "-o", str(link))[0] == 0
    assert link.is_symlink() and (tmp_path / "not-yet.txt").read_text().startswith("Model")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664])
def test_o_keeps_an_existing_files_mode(
    model_file: Path, tmp_path: Path, capsys, mode: int
) -> None:
    out_file = tmp_path / "report.txt"
    out_file.write_text("old\n")
    out_file.chmod(mode)
    assert run(capsys, "report", str(model_file), "-o", str(out_file))[0] == 0
    assert stat.S_IMODE(out_file.stat().st_mode) == mode
    assert out_file.read_text().startswith("Model")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_open_would_give(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_output(tmp_path / "new.txt", "text\n")
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("text\n")
    finally:
        os.umask(old)
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == expected == 0o666 & ~umask


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    write_output(tmp_path / "a.txt", "one\n")
    write_output(tmp_path / "a.txt", b"two\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "two\n"


# -- refusing what must not be replaced ---------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _socket(tmp_path: Path) -> Path:
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


SPECIAL: dict[str, Callable[[Path], Path]] = {
    "a FIFO": _fifo,  # with no process reading it
    "a socket": _socket,
    "a directory": lambda tmp: tmp,
}


@pytest.mark.parametrize("option", ["-o", "--graph-json", "--junit"])
@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_files_and_directories_are_refused_untouched(
    model_file: Path, tmp_path: Path, capsys, kind: str, option: str
) -> None:
    target = SPECIAL[kind](tmp_path / "x" if kind == "a directory" else tmp_path)
    if kind == "a directory":
        target.mkdir()
    before = target.lstat()
    if option == "--junit":
        spec = tmp_path / "spec.toml"
        spec.write_text('schema = "weighttie.spec/1"\n')
        argv = ["check", str(model_file), "--spec", str(spec), "--junit", str(target)]
    elif option == "--graph-json":
        argv = ["report", str(model_file), "--graph", str(target) + ".json"]
        target = target.rename(Path(str(target) + ".json"))
        before = target.lstat()
    else:
        argv = ["report", str(model_file), "-o", str(target)]
    code, out, err = run(capsys, *argv)
    assert_one_error_line(code, out, err, kind)
    after = target.lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)


def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(_fifo(tmp_path))
    with pytest.raises(OutputError, match="is a FIFO"):
        write_output(link, "x")
    assert link.is_symlink() and stat.S_ISFIFO(link.stat().st_mode)


@pytest.mark.parametrize("option", ["-o", "--graph"])
def test_missing_directory_fails_before_anything_is_printed(
    model_file: Path, tmp_path: Path, capsys, option: str
) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.graphml"
    code, out, err = run(capsys, "report", str(model_file), option, str(target))
    assert_one_error_line(code, out, err, "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("option", ["-o", "--graph"])
def test_a_name_too_long_is_a_clear_error(
    model_file: Path, tmp_path: Path, capsys, option: str
) -> None:
    target = tmp_path / ("x" * 300 + ".graphml")
    code, out, err = run(capsys, "report", str(model_file), option, str(target))
    assert_one_error_line(code, out, err, "File name too long")


def test_a_model_path_too_long_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "report", str(tmp_path / ("m" * 300 + ".keras")))
    assert_one_error_line(code, out, err, "cannot read")


def test_check_output_path_accepts_what_write_output_writes(tmp_path: Path) -> None:
    check_output_path(tmp_path / "fine.txt")
    with pytest.raises(OutputError, match="empty"):
        check_output_path("")


# -- reading only regular files, boundedly ------------------------------------------


def test_read_limited_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    from weighttie.errors import FileFormatError

    with pytest.raises(FileFormatError, match="is a FIFO"):
        read_limited(_fifo(tmp_path), limit=10, limit_name="spec_bytes", what="spec file")


def test_read_limited_refuses_a_sparse_giant_before_reading(tmp_path: Path) -> None:
    from weighttie.errors import LimitError

    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(3 * 1024**3)  # 3 GiB, sparse: costs nothing on disk
    with pytest.raises(LimitError, match="3,221,225,472 bytes") as info:
        read_limited(big, limit=1024, limit_name="spec_bytes", what="spec file")
    assert info.value.limit == "spec_bytes"


def test_regular_file_names_what_it_found(tmp_path: Path) -> None:
    from weighttie.errors import FileFormatError, MissingFileError

    with pytest.raises(MissingFileError, match="no such spec file"):
        regular_file(tmp_path / "missing.toml", what="spec file")
    with pytest.raises(FileFormatError, match="is a directory"):
        regular_file(tmp_path)


# -- terminals, devices and pipes: written in place, as `cat > path` would -----------------


def test_o_dev_stdout_writes_into_the_pipe(model_file: Path) -> None:
    """`-o /dev/stdout` when stdout is a pipe was refused ("No such file or directory")."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "weighttie", "report", str(model_file)]
    piped = subprocess.run([*command, "-o", "/dev/stdout"], capture_output=True, text=True)
    plain = subprocess.run(command, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == plain.stdout and piped.stdout.startswith("Model 'siamese_tower'")


def test_o_writes_to_a_character_device(model_file: Path, capsys) -> None:
    code, out, err = run(capsys, "report", str(model_file), "-o", os.devnull)
    assert (code, out, err) == (0, "", "")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # still the device, not a file


def test_o_writes_to_a_fifo_a_process_reads(model_file: Path, tmp_path: Path, capsys) -> None:
    import threading

    fifo = _fifo(tmp_path)
    received: list[bytes] = []
    ready = threading.Event()

    def read() -> None:
        with open(fifo, "rb") as reader:  # blocks until the writer opens it
            ready.set()
            received.append(reader.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    # the reader must hold the FIFO open before weighttie opens it without waiting
    opener = os.open(fifo, os.O_WRONLY)  # lets the reader's open return
    assert ready.wait(10)
    try:
        code, out, err = run(capsys, "report", str(model_file), "-o", str(fifo))
    finally:
        os.close(opener)
    thread.join(10)
    assert (code, out, err) == (0, "", "")
    assert received and received[0].decode().startswith("Model 'siamese_tower'")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_full_device_is_one_clear_error(model_file: Path, capsys) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    code, out, err = run(capsys, "report", str(model_file), "-o", "/dev/full")
    assert_one_error_line(code, out, err, "the device is full")

"""Reading and writing the user's files without surprises.

Reading: only regular files are opened (a FIFO, a device or a socket given as a
path is refused before it is opened, so nothing blocks), and never more than a
stated number of bytes is read.

Writing (``-o``, ``--junit``, ``--graph``): a complete file or none. The text is
written to a temporary file beside the target and renamed over it. A symlink is
written *through* (its target is replaced, the link stays); an existing file keeps
its permission bits; a new file gets the mode ``open()`` would give it (0666 less
the umask). Directories and special files are refused, never replaced.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
from pathlib import Path

from weighttie.errors import FileFormatError, LimitError, MissingFileError, OutputError

__all__ = ["check_output_path", "open_regular", "read_limited", "regular_file", "write_output"]


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def regular_file(path: str | os.PathLike[str], *, what: str = "file") -> Path:
    """Check that ``path`` names a regular file (symlinks followed) without opening it.

    Raises:
        MissingFileError: nothing exists at ``path``.
        FileFormatError: it is a directory, a FIFO, a device or a socket, or cannot be
            inspected (e.g. a name too long for the file system).
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise MissingFileError(f"no such {what}: {str(p)!r}") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {str(p)!r}: {_os_reason(exc)}") from None
    if not stat.S_ISREG(mode):
        raise FileFormatError(f"{str(p)!r} is {_kind(mode)}; expected a {what}")
    return p


def open_regular(path: str | os.PathLike[str], *, what: str = "file") -> io.BufferedReader:
    """Open a path that :func:`regular_file` accepted, for reading, without ever blocking.

    The file is opened non-blocking and checked again once open (``fstat``), so a
    FIFO, a device or a socket swapped in after the path was checked is refused
    too, never waited on.

    Raises:
        FileFormatError: it cannot be opened, or is no longer a regular file.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileFormatError(f"cannot read {str(p)!r}: {_os_reason(exc)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileFormatError(f"{str(p)!r} is {_kind(mode)}; expected a {what}")
    return os.fdopen(fd, "rb")


def read_limited(
    path: str | os.PathLike[str], *, limit: int, limit_name: str, what: str = "file"
) -> bytes:
    """Read a whole regular file of at most ``limit`` bytes.

    The file is opened non-blocking and checked again once open, so a path swapped
    for a FIFO between the check and the open cannot block the reader either.

    Raises:
        MissingFileError, FileFormatError: see :func:`regular_file`.
        LimitError: the file holds more than ``limit`` bytes (nothing more is read).
    """
    p = regular_file(path, what=what)
    with open_regular(p, what=what) as f:
        info = os.fstat(f.fileno())
        if info.st_size > limit:
            raise LimitError(
                f"{str(p)!r} holds {info.st_size:,} bytes, more than the {limit:,} weighttie "
                f"reads from a {what}",
                limit=limit_name,
            )
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise FileFormatError(f"cannot read {str(p)!r}: {_os_reason(exc)}") from None
    if len(data) > limit:  # the file grew while it was read
        raise LimitError(
            f"{str(p)!r} holds more than the {limit:,} bytes weighttie reads from a {what}",
            limit=limit_name,
        )
    return data


def _destination(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """Where writing ``path`` really writes (a symlink's target), and what is there now.

    A terminal, another character device or a pipe (``/dev/stdout`` whatever it
    is, a named FIFO) is written as a stream, as ``cat > path`` would: the path
    itself is returned, with what it leads to.
    """
    given = Path(path)
    if str(path) == "":
        raise OutputError("an output path is empty; expected a file name")
    try:
        followed: os.stat_result | None = os.stat(given)  # /dev/stdout → the pipe it is
    except FileNotFoundError:
        followed = None
    except OSError as exc:
        raise OutputError(f"cannot write {str(given)!r}: {_os_reason(exc)}") from None
    if followed is not None and _is_stream(followed):
        return given, followed
    try:
        target = Path(os.path.realpath(given)) if given.is_symlink() else given
        info: os.stat_result | None = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputError(f"cannot write {str(given)!r}: {_os_reason(exc)}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"cannot write {str(given)!r}: it is {_kind(info.st_mode)}; expected a regular "
            "file, a terminal or a pipe (leave the option out to write to standard output)"
        )
    directory = target.parent
    if not directory.is_dir():
        raise OutputError(
            f"cannot write {str(given)!r}: directory {str(directory)!r} does not exist"
        )
    name_max = _name_max(directory)
    if len(os.fsencode(target.name)) > name_max:
        raise OutputError(
            f"cannot write {str(given)!r}: File name too long (the file system allows "
            f"{name_max} bytes)"
        )
    return target, info


def _is_stream(info: os.stat_result) -> bool:
    """A character device (a terminal, /dev/null) or a pipe: written in place, not replaced."""
    return stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)


def _write_stream(path: Path, payload: bytes) -> None:
    """Write to a terminal, device or pipe as ``cat > path`` does, never blocking on a
    FIFO no process reads (opening it without waiting fails at once)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(
                f"cannot write {str(path)!r}: it is a FIFO that no process is reading; "
                "start the reader first, or write to a regular file"
            ) from None
        raise OutputError(f"cannot write {str(path)!r}: {_os_reason(exc)}") from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb", closefd=True) as stream:
            stream.write(payload)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"cannot write {str(path)!r}: the device is full") from None
        raise OutputError(f"cannot write {str(path)!r}: {_os_reason(exc)}") from None


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Check, before any work, that :func:`write_output` can write ``path``.

    Raises:
        OutputError: the path is a directory or a special file, its directory is
            missing, or its name is too long.
    """
    _destination(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_output(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` completely, or leave it as it was.

    A regular file is replaced whole, atomically; a terminal, device or pipe
    (``-o /dev/stdout``, a FIFO a process reads) is written in place.

    Raises:
        OutputError: see :func:`check_output_path`; also when the write itself fails
            (disk full, permission denied): the old file is then untouched.
    """
    target, existing = _destination(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if existing is not None and _is_stream(existing):
        _write_stream(target, payload)
        return
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".weighttie-", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {_os_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if existing is not None and os.geteuid() == 0:
                _keep_owner(f.fileno(), existing)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"cannot write {str(path)!r}: the disk is full") from None
        raise OutputError(f"cannot write {str(path)!r}: {_os_reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _keep_owner(fd: int, existing: os.stat_result) -> None:
    # The mode is kept in any case; an owner we may not set stays ours.
    with contextlib.suppress(OSError):
        os.fchown(fd, existing.st_uid, existing.st_gid)

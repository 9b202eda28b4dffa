"""Reading a spec file safely: regular files only, bounded size, UTF-8; every problem is a SpecError at file:1:1."""

from __future__ import annotations

import codecs
import os
import stat

from .errors import SpecError
from .limits import count, hint


def read_bytes(path: str, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`; anything else is a SpecError at file:1:1.

    Opened non-blocking and checked on the open descriptor, so a FIFO or device named *.yaml can
    neither hang the run nor be swapped in after the check.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.isdir(path):  # a folder named *.yaml, or one os.walk could not list
            raise SpecError(_folder_problem(path), path) from None
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(_folder_problem(path), path)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"not a regular file ({_file_kind(info.st_mode)}); specs are read from regular "
                            f"files only", path)
        if info.st_size > max_bytes:
            raise SpecError(f"file is {count(info.st_size)} bytes; the limit is {count(max_bytes)} "
                            f"({hint('file_size')})", path)
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew after the size check
            raise SpecError(f"file is over {count(max_bytes)} bytes, the limit ({hint('file_size')})", path)
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    finally:
        os.close(fd)


def _folder_problem(path: str) -> str:
    """Why a folder given as a spec could not be read (os.walk skips folders it cannot list)."""
    try:
        os.listdir(path)
    except OSError as exc:
        return f"cannot read folder: {exc.strerror or exc}"
    return "is a folder, not a spec file"


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def decode(raw: bytes, path: str) -> str:
    """UTF-8 text, or a located error naming the first bad byte."""
    for bom, name in _WIDE_BOMS:
        if raw.startswith(bom):
            raise SpecError(f"file is {name} encoded; specs must be UTF-8 (save it as UTF-8)", path, 1, 1)
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise SpecError("file is binary (contains NUL bytes), not a YAML spec", path, line, 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", path, line, col) from None

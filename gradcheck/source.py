"""Reading a spec file safely: regular files only, bounded size, UTF-8; every problem is a SpecError at file:1:1."""

from __future__ import annotations

import codecs
import os
import stat

from .errors import SpecError, place_in
from .limits import count, hint


class SpecPath(str):
    """A path to read as a spec, with the folder it must stay inside (the path policy of the CLI).

    `root` is the folder that was scanned, or for a file named on the command line the folder it
    is in. A symlink whose target lies outside it is not followed: a pull request that adds
    `specs/x.yaml -> ~/.ssh/id_rsa` must not make CI read (and echo) that file.
    """

    root: str | None

    def __new__(cls, path: str, root: str | None):
        made = super().__new__(cls, path)
        made.root = root
        return made

    def __reduce__(self):  # crosses process boundaries with -j
        return (SpecPath, (str(self), self.root))


class StdinSpec(str):
    """The spec read from standard input (`-`): its name is `<stdin>`, its bytes were read once, up front."""

    data: bytes

    def __new__(cls, data: bytes):
        made = super().__new__(cls, STDIN)
        made.data = data
        return made

    def __reduce__(self):  # crosses process boundaries with -j, bytes and all
        return (StdinSpec, (self.data,))


STDIN = "<stdin>"


def read_stdin(max_bytes: int, stream=None) -> StdinSpec:
    """Standard input as one spec; reading stops one byte past the limit (read_bytes then refuses it)."""
    import sys

    stream = stream if stream is not None else sys.stdin.buffer
    return StdinSpec(stream.read(max_bytes + 1))


def for_argument(path: str) -> SpecPath:
    """A file named on the command line: it must stay inside its own folder."""
    return SpecPath(path, os.path.dirname(path) or os.curdir)


def outside_root(path: str) -> str | None:
    """Why `path` may not be read under the path policy (its target leaves its root), else None."""
    root = getattr(path, "root", None)
    if root is None or not os.path.islink(path):
        return None  # not a symlink (intermediate folders were chosen by the caller or not followed by the walk)
    target, home = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([target, home]) == home:
        return None
    return (f"is a symbolic link to a file outside {home_label(root)}; not followed (symlinks are followed "
            f"only when their target stays inside the folder scanned)")


def home_label(root: str) -> str:
    """The scanned folder as the user named it."""
    return "the current folder" if root in ("", os.curdir) else root


def read_bytes(path: str, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`; anything else is a SpecError at file:1:1.

    Opened non-blocking and checked on the open descriptor, so a FIFO or device named *.yaml can
    neither hang the run nor be swapped in after the check. A `SpecPath` whose symlink leaves its
    root is refused before it is opened, and re-checked on the descriptor (no swap in between).
    """
    if isinstance(path, StdinSpec):
        if len(path.data) > max_bytes:
            raise SpecError(f"standard input is over {count(max_bytes)} bytes, the limit ({hint('file_size')})", path)
        return path.data
    refused = outside_root(path)
    if refused:
        raise SpecError(refused, path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.isdir(path):  # a folder named *.yaml, or one os.walk could not list
            raise SpecError(_folder_problem(path), path) from None
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    try:
        info = os.fstat(fd)
        if getattr(path, "root", None) is not None and not _same_file(info, path):
            raise SpecError("changed while it was being opened (a symlink swapped); not read", path)
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


def _same_file(info: os.stat_result, path: str) -> bool:
    """Whether the open descriptor is still the file the path policy approved."""
    if outside_root(path):
        return False
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


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
        raise SpecError(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", path, *place_in(raw, exc.start)) \
            from None

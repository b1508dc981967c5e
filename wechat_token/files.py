"""Small files read safely, and replaced in one step: the config and the cache."""

from __future__ import annotations

import os
import stat

from wechat_token.errors import ConfigError
from wechat_token.messages import msg

MAX_FILE = 64 * 1024  # bytes: the most read from a config or cache file
NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)  # POSIX: never wait


def refuse_odd_file(
    path: str, what: str, info: os.stat_result | None = None, hint: str = ""
) -> None:
    """Refuse a FIFO, device or folder where a small regular file belongs: reading one
    would block, or never end. A file that does not exist yet is fine. `what` names the
    file in the messages, in the reader's language ("the config file", msg(...))."""
    if info is None:
        try:
            info = os.stat(path)
        except (OSError, ValueError):  # missing (fine), or unusable: open() will say
            return
    if not stat.S_ISREG(info.st_mode):
        kind = "files.folder" if stat.S_ISDIR(info.st_mode) else "files.not_regular"
        raise ConfigError(msg(kind, what=what, path=path), hint=hint or msg("files.regular_hint"))
    if info.st_size > MAX_FILE:
        raise ConfigError(
            msg("files.too_large", what=what, path=path, kib=MAX_FILE // 1024),
            hint=hint or msg("files.right_file_hint"),
        )


def read_small_file(path: str, what: str, hint: str = "") -> tuple[bytes, int]:
    """The bytes of a small regular file, and its mode; never blocks, never reads much."""
    fd = os.open(path, os.O_RDONLY | NONBLOCK | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        refuse_odd_file(path, what, info, hint)
        return os.read(fd, MAX_FILE + 1)[:MAX_FILE], info.st_mode
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes) -> None:
    """Replace the file in one step: readers see the old content or the new, never half.

    Ctrl-C and kill signals are held back meanwhile, and take effect once the new file is
    in place, so no temporary file is left behind.
    """
    import signal
    import tempfile  # only when a file is written: a cache hit does not pay for it

    held = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}
    mask = getattr(signal, "pthread_sigmask", None)  # None on Windows
    before = mask(signal.SIG_BLOCK, held) if mask else None
    try:
        folder = os.path.dirname(path) or "."
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".wechat_token-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())  # on disk before it takes the old content's place
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    finally:
        if mask and before is not None:
            mask(signal.SIG_SETMASK, before)

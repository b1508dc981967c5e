"""The cache's lock across processes (flock on PATH.lock), and the note that the process
holding it leaves for those waiting: what it is doing, or the failure it got."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from wechat_token.endpoints import whole_number
from wechat_token.errors import (
    ConfigError,
    TransportError,
    WeChatAPIError,
    WeChatTokenError,
)
from wechat_token.files import NONBLOCK, refuse_odd_file

LOCK_POLL = 0.02  # seconds between looks at a cache lock held by another process
CACHE_WAYS_OUT = "choose another with --cache-file, or run with --no-cache"
NOTE_SIZE = 8 * 1024  # bytes: the most read of a note


def lock(
    path: str,
    deadline: float,
    key: str,
    since: float,
    log: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int | None:
    """Lock the cache (on PATH.lock, created 0600); None where locking does not exist.

    Waits for another process that holds the lock until `deadline` (on `clock`), looking
    again every LOCK_POLL seconds (`sleep`), then gives up, saying what that process was
    doing, from the note it leaves.
    """
    try:
        refuse_odd_file(path, "the cache file", hint=CACHE_WAYS_OUT)
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)  # 0700 if new
        import fcntl  # POSIX only

        flags = os.O_RDWR | os.O_CREAT | NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path + ".lock", flags, 0o600)  # written to: never through a link
    except ImportError:
        log("cache: no file locking on this system (no fcntl): using the cache unlocked")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot use the cache {path}: {error.filename}: {error.strerror}",
            hint=CACHE_WAYS_OUT,
        ) from None
    try:
        refuse_odd_file(path + ".lock", "the cache's lock file", os.fstat(fd), CACHE_WAYS_OUT)
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:  # another process is fetching: wait for its token
                if not waited:
                    log(f"cache: another process holds {path}.lock: waiting for its token")
                    waited = True
                if clock() > deadline:
                    raise (noted_failure(fd, key, since) or _gave_up(fd, key, path)) from None
                sleep(LOCK_POLL)
            except OSError as error:  # e.g. a network file system without locks
                log(f"cache: cannot lock {path}.lock ({error.strerror}): using the cache unlocked")
                os.close(fd)
                return None
    except BaseException:
        os.close(fd)
        raise


# The lock file holds a short note from the process that holds the lock, for those that
# wait: "fetching" (since when, until when, and the last failed attempt), or "failed".
_KINDS = {"wechat": WeChatAPIError, "config": ConfigError, "transport": TransportError}


def leave_note(
    fd: int | None,
    key: str,
    state: str,
    error: WeChatTokenError | None,
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Write this run's state in the lock file; a courtesy that never fails the run.
    `deadline` is on `clock`; the note says it as a Unix time."""
    if fd is None:
        return
    note = b""
    if state:
        until = time.time() + deadline - clock()
        record: dict[str, object] = {"at": time.time(), "key": key, "state": state, "until": until}
        if error is not None:
            kind = next((name for name, cls in _KINDS.items() if isinstance(error, cls)), "")
            record.update(kind=kind, message=str(error)[:1000], hint=error.hint)
            if isinstance(error, WeChatAPIError):
                record.update(errcode=error.errcode, errmsg=error.errmsg[:1000])
        note = json.dumps(record).encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
    except OSError:
        pass  # a full disk: the waiters go without the news


def _read_note(fd: int | None, key: str) -> dict[str, object]:
    """The note in the lock file, if it is one of ours and for this request; else {}."""
    if fd is None:
        return {}
    try:
        note = json.loads(os.pread(fd, NOTE_SIZE, 0) or b"{}")
    except (OSError, ValueError, RecursionError):
        return {}  # being written, or not ours
    return note if isinstance(note, dict) and note.get("key") == key else {}


def noted_failure(fd: int | None, key: str, since: float) -> WeChatTokenError | None:
    """The failure another process noted for the same request after `since`, if any."""
    note = _read_note(fd, key)
    at, kind, message = note.get("at"), note.get("kind"), note.get("message")
    if note.get("state") != "failed" or not (isinstance(at, float) and since <= at <= time.time()):
        return None  # no failure, or old news from before this run
    if kind not in _KINDS or not isinstance(message, str):
        return None
    errcode, errmsg, hint = note.get("errcode"), note.get("errmsg"), note.get("hint")
    error: WeChatTokenError
    if kind == "wechat" and whole_number(errcode) and isinstance(errmsg, str):
        error = WeChatAPIError(errcode, errmsg)
    elif kind == "config":
        error = ConfigError(message, hint=hint if isinstance(hint, str) else "")
    else:
        error = TransportError(message, hint=hint if isinstance(hint, str) else "")
    error.args = (f"{error} (another process got this answer while this one waited for it)",)
    return error


def _gave_up(fd: int, key: str, path: str) -> TransportError:
    """This run's time is up, and the process holding the lock is still at it."""
    note = _read_note(fd, key)
    message, until = note.get("message"), note.get("until")
    doing = "and has left no note of what it is doing"
    if note.get("state") == "fetching":
        doing = "fetching a token for this account"
        if isinstance(message, str):
            doing += f"; its last attempt: {message}"
        if isinstance(until, float) and until > time.time():
            doing += f"; it stops within {until - time.time():.1f} s"
    return TransportError(
        f"gave up at the time bound of this run: another process holds {path}.lock, {doing}",
        hint="run this again once that process is done (it ends by itself), "
        "or give this run its own --cache-file",
    )

"""The cache's lock, for threads and processes alike: flock on PATH.lock.

Each caller opens the lock file itself, so two threads of one process wait for each
other as two processes do. The file holds nothing: its modification time is when the
holder took the lock, so a caller that gives up can say how long it has been held.

After a fork, the child closes the lock descriptors it inherited: the thread that holds
them exists only in the parent, and a copy left open in the child would keep the lock
held for the child's whole life (os.register_at_fork, below).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from wechat_token.errors import ConfigError, TransportError
from wechat_token.files import NONBLOCK, refuse_odd_file

LOCK_POLL = 0.02  # seconds between looks at a lock another caller holds
CACHE_WAYS_OUT = "choose another with --cache-file, or run with --no-cache"
_held: set[int] = set()  # the lock descriptors this process holds


def lock(
    path: str,
    deadline: float,
    log: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int | None:
    """Lock the cache (on PATH.lock, created 0600); None where locking does not exist.

    Waits for the caller that holds the lock until `deadline` (on `clock`), looking again
    every LOCK_POLL seconds (`sleep`), then gives up with a TransportError that says how
    long the lock has been held. Release it with unlock().
    """
    try:
        refuse_odd_file(path, "the cache file", hint=CACHE_WAYS_OUT)
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)  # 0700 if new
        import fcntl  # POSIX only

        flags = os.O_RDWR | os.O_CREAT | NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path + ".lock", flags, 0o600)  # never through a link
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
                _held.add(fd)
                _touch(fd)
                return fd
            except BlockingIOError:  # another caller is fetching: wait for its answer
                if not waited:
                    log(f"cache: another caller holds {path}.lock: waiting for its answer")
                    waited = True
                if clock() > deadline:
                    raise _gave_up(fd, path) from None
                sleep(LOCK_POLL)
            except OSError as error:  # e.g. a network file system without locks
                log(f"cache: cannot lock {path}.lock ({error.strerror}): using the cache unlocked")
                unlock(fd)
                return None
    except BaseException:
        unlock(fd)
        raise


def unlock(fd: int | None) -> None:
    """Release the lock: closing the lock file releases it."""
    if fd is not None:
        _held.discard(fd)
        os.close(fd)


def _touch(fd: int) -> None:
    """Set the lock file's time to now: when the lock was taken, for those who wait."""
    try:
        os.utime(fd)
    except OSError:  # a read-only mount: the waiters cannot say for how long
        return


def _gave_up(fd: int, path: str) -> TransportError:
    """This caller's time is up, and another still holds the lock."""
    held = max(time.time() - os.fstat(fd).st_mtime, 0)
    return TransportError(
        f"gave up at the time bound of this run: another caller has held {path}.lock "
        f"for {held:.1f} s",
        hint="it stops by itself within its own time bound: run this again then, or give "
        "this run its own --cache-file",
    )


def _forget_inherited() -> None:
    """In a child just forked: close the lock descriptors of the parent's threads."""
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:  # closed already
            continue
    _held.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_inherited)

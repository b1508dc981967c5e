"""The cache's lock, for threads and processes alike: flock on PATH.lock.

Each caller opens the lock file itself, so two threads of one process wait for each
other as two processes do. The file holds nothing; its times say when the holder took
the lock and by when it will have let go, so a caller knows whether waiting can end in
time, and can say how long the lock has been held.

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
from wechat_token.messages import msg

LOCK_POLL = 0.02  # seconds between looks at a lock another caller holds
MIN_WAIT = 0.1  # seconds before its deadline that a caller stops waiting for the lock
_held: set[int] = set()  # the lock descriptors this process holds


class LockHeld(TransportError):
    """Another caller still held the lock when this one's wait ended."""


def cache_ways_out() -> str:
    """The hint for a cache file that cannot be used."""
    return msg("lock.ways_out")


def lock(
    path: str,
    deadline: float,
    log: Callable[[str], None],
    *,
    alone_at: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int | None:
    """Lock the cache (on PATH.lock, created 0600); None where locking does not exist.

    `deadline` (on `clock`) is when this caller's attempts must end; taking the lock, it
    writes that in the lock file's times, beside when it took it. A caller that waits
    (looking again every LOCK_POLL seconds, `sleep`) reads them: a holder that will have
    let go by this caller's deadline is waited for until MIN_WAIT before it; one that may
    hold it longer (its path may be stuck) until `alone_at` only. Then LockHeld says how
    long the lock has been held. Release it with unlock().
    """
    try:
        refuse_odd_file(path, msg("cache_file"), hint=cache_ways_out())
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)  # 0700 if new
        import fcntl  # POSIX only

        flags = os.O_RDWR | os.O_CREAT | NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path + ".lock", flags, 0o600)  # never through a link
    except ImportError:
        log(msg("lock.no_fcntl"))
        return None
    except OSError as error:
        raise ConfigError(
            msg("lock.cannot_use", path=path, file=error.filename, reason=error.strerror),
            hint=cache_ways_out(),
        ) from None
    try:
        what = msg("lock.lock_file")
        refuse_odd_file(path + ".lock", what, os.fstat(fd), cache_ways_out())
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _held.add(fd)
                _date(fd, time.time() + deadline - clock())
                return fd
            except BlockingIOError:  # another caller is fetching: wait for its answer
                if not waited:
                    log(msg("lock.waiting", path=path))
                    waited = True
                now = clock()
                taken, ends = _times(fd)
                later = ends > time.time() + deadline - now  # it may hold it past my end
                if now > deadline - MIN_WAIT or (later and now > (alone_at or deadline)):
                    held = max(time.time() - taken, 0)
                    raise LockHeld(msg("lock.held", path=path, seconds=held)) from None
                sleep(LOCK_POLL)
            except OSError as error:  # e.g. a network file system without locks
                log(msg("lock.no_lock", path=path, reason=error.strerror))
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


def _date(fd: int, ends: float) -> None:
    """The lock file's times, for those who wait: when the lock was taken (its access
    time, now), and the Unix time by which its holder will have let go (modification)."""
    try:
        os.utime(fd, (time.time(), ends))
    except OSError:  # a read-only mount: the waiters wait as if it ended in time
        return


def _times(fd: int) -> tuple[float, float]:
    """When the holder took the lock, and by when it will have let go (Unix times)."""
    info = os.fstat(fd)
    return info.st_atime, info.st_mtime


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

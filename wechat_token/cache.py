"""The file cache: one credential per account and endpoint, shared by every process.

The whole "read; if stale, fetch and store" runs under the lock of wechat_token.lock,
so processes started together make one request and get one token. What is cached is
whatever the settings' endpoint hands out, with its lifetime.
"""

from __future__ import annotations

import json
import os
import time
from collections import namedtuple
from collections.abc import Callable

from wechat_token import lock
from wechat_token.endpoints import MAX_EXPIRES_IN, USABLE, AccessToken, realm, whole_number
from wechat_token.errors import ConfigError, WeChatTokenError
from wechat_token.fetch import fetch
from wechat_token.files import read_small_file, replace_file
from wechat_token.http import proxy_shown
from wechat_token.redact import redact
from wechat_token.retry import MIN_ATTEMPT, time_bound, with_retries

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from wechat_token.config import Settings

CACHE_MARGIN = 300  # seconds: a cached token with less left than this is not reused
HANDOVER = 0.1  # seconds a lock holder keeps to leave its news for the processes waiting


class CacheEntry(
    namedtuple("CacheEntry", "appid endpoint realm secret_sha256 value expires_in expires_at")
):
    """What the cache file holds: the credential, and what it is valid for."""

    __slots__ = ()
    appid: str
    endpoint: str  # the endpoint's path: /cgi-bin/token, /cgi-bin/stable_token
    realm: str  # where the token is good (endpoints.realm): WeChat's domains are one
    secret_sha256: str  # a one-way fingerprint: a new AppSecret means a new token
    value: str  # the access_token
    expires_in: int  # the lifetime WeChat gave, in seconds
    expires_at: float  # Unix time


def margin(expires_in: float) -> float:
    """Seconds before expiry that a credential stops being reused: short lifetimes keep half."""
    return min(CACHE_MARGIN, expires_in / 2)


def reusable(entry: CacheEntry, wanted: CacheEntry, now: float) -> str:
    """'' if the cached `entry` can stand in for `wanted` at `now`; else the reason not.

    `wanted` describes the credential asked for (its value and times are not looked at).
    """
    if (entry.appid, entry.endpoint) != (wanted.appid, wanted.endpoint):
        return "it is for another AppID or endpoint"
    if entry.realm != wanted.realm:
        return f"it is for {entry.realm}"
    if entry.secret_sha256 != wanted.secret_sha256:
        return "it was fetched with another AppSecret"
    left = entry.expires_at - now
    kept = margin(entry.expires_in)
    if not kept < left <= entry.expires_in:
        return f"it has {max(left, 0):.0f} s left, and {kept:.0f} s is the margin"
    return ""


def secret_fingerprint(secret: str) -> str:
    """A one-way fingerprint of the AppSecret: enough to notice it changed, not to recover it."""
    # Imported here, not at the top: hashlib loads Python's own copy of OpenSSL (about
    # 2 ms and 4 MiB), which only the cache needs.
    import hashlib

    data = secret.encode(errors="surrogateescape")  # any str: the check on it comes later
    return hashlib.sha256(b"wechat_token cache:" + data).hexdigest()


def cached_access_token(
    settings: Settings,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    started: float | None = None,
    refused: str | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> tuple[AccessToken, bool]:
    """The cached token while it is good, else a new one, stored for the next caller.

    Returns the token (with the time it has left) and whether it came from the cache.
    The whole run, waiting for the lock included, ends within time_bound(retries,
    timeout) of `started` (on `clock`; default: now). Every wait, for the lock or before
    a retry, is `sleep`.

    `refused`: a token an API call refused (40001, 42001, 40014). It is replaced once:
    if the cache still holds it, or nothing good, a new token is fetched; if the cache
    holds another good token, another process has replaced it already, and that is used.
    """
    deadline = (started or clock()) + time_bound(settings.retries, settings.timeout)
    path = settings.cache_file
    if path is None:  # --no-cache
        return fetch_with_retries(settings, log, deadline, clock=clock, sleep=sleep), False
    wanted = _wanted(settings, time.time())
    # Who may share a failure: the same request, by the same way (CA bundle, proxy).
    way = settings.proxy and proxy_shown(settings.proxy)  # None: the environment's
    key = f"{_request_key(wanted)} {settings.cacert or ''} {way!r}"
    since = time.time()  # a failure noted after this is news to this run
    fd = lock.lock(path, deadline, key, since, log, clock=clock, sleep=sleep)
    try:
        hit = None if settings.force_refresh else _cache_hit(settings, path, wanted, refused, log)
        if settings.force_refresh:
            log(f"cache: --force-refresh, not reading {path}")
        if hit is not None:
            return hit, True
        failure = lock.noted_failure(fd, key, since)
        if failure:  # another process asked while this one waited: do not ask again
            raise failure

        def note(error: WeChatTokenError | None, state: str) -> None:
            lock.leave_note(fd, key, state, error, deadline, clock=clock)

        asked_at = time.time()  # the token's lifetime counts from here: the safe side
        token = _fetch_noted(settings, log, deadline, note, clock, sleep)
        if refused is not None and token.access_token == refused:  # stable_token does this
            warn(
                "WeChat handed back the very token that was refused; not forcing a refresh on "
                "its own: if that token leaked, run with --force-refresh"
            )
        _store(path, wanted._replace(expires_at=asked_at), token, log, warn)
        note(None, "")  # no news: the token is in the cache
        return token, False
    finally:
        if fd is not None:
            os.close(fd)  # closing the lock file releases the lock


def _cache_hit(
    settings: Settings,
    path: str,
    wanted: CacheEntry,
    refused: str | None,
    log: Callable[[str], None],
) -> AccessToken | None:
    """The cached token, if it can be used now; None, with the reason under -v, if not."""
    entry = _read_cache(path, log)
    if entry is None:
        return None
    now = time.time()
    why_not = reusable(entry, wanted, now)
    if not why_not and redact(entry.value, settings.secret) != entry.value:
        why_not = "its token holds a piece of the AppSecret"
    if not why_not and entry.value == refused:
        why_not = "it is the token that was refused"
    if why_not:
        log(f"cache: not using the token in {path}: {why_not}")
        return None
    left = int(entry.expires_at - now)  # whole seconds, as --json says it too
    log(f"cache: token from {path}, valid for {left} s more")
    return AccessToken(entry.value, left)


def _fetch_noted(
    settings: Settings,
    log: Callable[[str], None],
    deadline: float,
    note: Callable[[WeChatTokenError | None, str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> AccessToken:
    note(None, "fetching")
    try:  # stop asking a moment early, to leave the news before the waiters give up
        return fetch_with_retries(
            settings, log, deadline - HANDOVER, note, clock=clock, sleep=sleep
        )
    except WeChatTokenError as error:
        note(error, "failed")
        raise


def _store(
    path: str,
    wanted: CacheEntry,
    token: AccessToken,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Save the token for the next caller; `wanted.expires_at` is when it was asked for."""
    entry = wanted._replace(
        value=token.access_token,
        expires_in=token.expires_in,
        expires_at=wanted.expires_at + token.expires_in,
    )
    try:
        replace_file(path, json.dumps(entry._asdict()).encode())
        log(f"cache: token saved in {path}")
    except OSError as error:  # the token is good: print it, but say what went wrong
        why = f"could not save the token in {path}: {error.strerror}"
        try:  # the entry left would be a token that this fetch has replaced
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as unlink_error:
            warn(
                f"{why}; nor remove the old entry ({unlink_error.strerror}): the next run may "
                "print the token this run replaced, which WeChat no longer accepts"
            )
            return
        warn(f"{why}; the old entry is removed, so the next run fetches a new token")


def fetch_with_retries(
    settings: Settings,
    log: Callable[[str], None],
    deadline: float,
    note: Callable[[WeChatTokenError, str], None] = lambda _error, _state: None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> AccessToken:
    """A new token from WeChat, with the retries and failover that settings allow, by
    `deadline` on `clock`. `note` hears of each failed attempt, for the processes
    waiting for the cache."""

    def attempt(api_base: str, seconds_left: float) -> AccessToken:
        try:
            return fetch(
                settings.endpoint,
                settings.appid,
                settings.secret,
                api_base,
                force_refresh=settings.force_refresh,
                cacert=settings.cacert,
                timeout=max(MIN_ATTEMPT, min(settings.timeout, seconds_left)),
                proxy=settings.proxy,
                log=log,
            )
        except WeChatTokenError as error:
            note(error, "fetching")
            raise

    return with_retries(
        attempt, settings.api_bases, settings.retries, log, deadline, clock=clock, sleep=sleep
    )


def _wanted(settings: Settings, now: float) -> CacheEntry:
    """The cache entry that these settings would write (token not known yet)."""
    return CacheEntry(
        appid=settings.appid,
        endpoint=settings.endpoint.path,
        realm=realm(settings.api_bases[0]),
        secret_sha256=secret_fingerprint(settings.secret),
        value="",
        expires_in=0,
        expires_at=now,
    )


def _request_key(wanted: CacheEntry) -> str:
    """Which request a noted failure was for: only the same request may share it."""
    return " ".join((wanted.appid, wanted.endpoint, wanted.realm, wanted.secret_sha256))


def _read_cache(path: str, log: Callable[[str], None]) -> CacheEntry | None:
    """The entry in the cache file; None, with a note, if there is none or it is damaged."""
    try:
        data = json.loads(read_small_file(path, "the cache file", lock.CACHE_WAYS_OUT)[0])
        entry = CacheEntry(**data)  # TypeError: missing or unknown fields
    except FileNotFoundError:
        log(f"cache: nothing in {path} yet")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read the cache {path}: {error.strerror}", hint=lock.CACHE_WAYS_OUT
        ) from None
    except (ValueError, RecursionError, TypeError):  # not JSON, or not our shape
        entry = None
    if entry is None or not _well_formed(entry):
        log(f"cache: {path} is damaged or not a cache file; it will be replaced")
        return None
    return entry


def _well_formed(entry: CacheEntry) -> bool:
    """Each field has the type and range it should: the file may be edited or cut short."""
    return (
        all(isinstance(text, str) for text in entry[:5])
        and whole_number(entry.expires_in)
        and 0 < entry.expires_in <= MAX_EXPIRES_IN
        and isinstance(entry.expires_at, (int, float))
        and 0 <= entry.expires_at < 1e12  # a Unix time; also false for nan and inf
        and bool(USABLE.fullmatch(entry.value))
    )

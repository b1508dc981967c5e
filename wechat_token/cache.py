"""The file cache: one entry per account and endpoint, shared by every thread and process.

What callers share is WeChat's answer: a token, or a refusal (an errcode), which is kept
REFUSAL_KEPT seconds so that a crowd on a refused account makes one request. A failure
on the way (timeout, proxy, TLS, DNS) is not shared: it belongs to the path its caller
took, and each caller tries its own path within its own time bound.

A good entry is read without the lock (the file is replaced whole, atomically); a fetch,
and the read just before it, run under the lock of wechat_token.lock, so callers that
start together make one request and get one token.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from functools import partial

from wechat_token import lock
from wechat_token.endpoints import STABLE_TOKEN, AccessToken, realm
from wechat_token.entry import (
    CacheEntry,
    account,
    endpoint_key,
    read_entry,
    reusable,
    secret_fingerprint,
)
from wechat_token.errors import ConfigError, TransportError, WeChatAPIError
from wechat_token.fetch import fetch
from wechat_token.files import replace_file
from wechat_token.messages import msg
from wechat_token.redact import redact
from wechat_token.retry import MIN_ATTEMPT, OWN_WORK, time_bound, with_retries

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from wechat_token.config import Settings

REFUSAL_KEPT = 5  # seconds a refusal from WeChat is the answer for every caller
MAX_KEPT = 300  # seconds: the longest a refusal is kept (a new token refused at once)
AFTER = OWN_WORK / 2  # seconds of a run's bound kept for after its last attempt
MAX_ERRMSG = 2000  # characters of a refusal's errmsg kept (WeChat's are under 200)


def cached_access_token(
    settings: Settings,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    started: float | None = None,
    refused: str | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    deadline: float | None = None,
    source: Callable[[float], AccessToken] | None = None,
) -> tuple[AccessToken, bool]:
    """The cached token while it is good, else a new one, stored for the next caller.

    Returns the token (with the time it has left) and whether it came from the cache.
    Raises WeChat's refusal if another caller got one in the last REFUSAL_KEPT seconds.
    The whole run, waiting for the lock included, ends within time_bound(retries,
    timeout) of `started` (on `clock`; default: now). Every wait, for the lock or before
    a retry, is `sleep`.

    `refused`: a token an API call refused (40001, 42001, 40014). It is replaced once:
    if the cache still holds it, or nothing good, a new token is fetched; if the cache
    holds another good token, another caller has replaced it already, and that is used.

    `deadline` (on `clock`) replaces attempts_deadline(): a ticket's run passes its own to
    the token it needs. `source(deadline)` fetches a new credential (default: from the
    settings' endpoint, with retries); a ticket's source first gets the token.
    """
    if deadline is None:
        deadline = attempts_deadline(settings, started or clock())
    if source is None:
        source = partial(fetch_with_retries, settings, log, clock=clock, sleep=sleep)
    path = settings.cache_file
    if path is None:  # --no-cache
        return source(deadline), False
    wanted = _wanted(settings, time.time())
    if not settings.force_refresh and (hit := _unlocked_hit(settings, wanted, refused)):
        _log_hit(settings, path, hit.expires_in, log)
        return hit, True
    # A holder that may hold the lock past this run's deadline (its path may be stuck) is
    # waited for while this run would still have time for a whole attempt, or half its
    # time; then this run takes its own way, without the lock, and stores its answer.
    # A caller that waited starts its attempts late: they end AFTER earlier, so that the
    # run still ends within its bound on a busy machine.
    now, late = clock(), deadline - AFTER
    alone_at = max(late - settings.timeout, (now + late) / 2)
    try:
        fd = lock.lock(path, deadline, log, alone_at=alone_at, clock=clock, sleep=sleep)
        if clock() - now > lock.LOCK_POLL / 2:  # it waited
            deadline = late
    except lock.LockHeld as held:
        deadline = late
        if hit := _unlocked_hit(settings, wanted, refused):  # a lone caller stored one
            return hit, True
        if clock() + MIN_ATTEMPT > deadline:  # no time left for an attempt of its own
            raise _gave_up(str(held)) from None
        log(msg("cache.going_alone", held=held))
        fd = None
    try:
        if settings.force_refresh:
            log(msg("cache.force_refresh", path=path))
        elif hit := _cache_hit(settings, path, wanted, refused, log):  # stored meanwhile?
            return hit, True
        if clock() + MIN_ATTEMPT > deadline:  # the holder let go too late for an attempt
            raise _gave_up(msg("cache.held_too_late", path=path))
        asked_at = time.time()  # the token's lifetime counts from here: the safe side
        try:
            token = source(deadline)
        except WeChatAPIError as error:  # WeChat's answer: the others waiting get it too
            if why := _store(path, _refused(path, wanted, error), log, settings):
                log(msg("cache.refusal_not_saved", path=path, why=why))
            raise
        too_short = token.expires_in <= settings.valid_for
        if refused is not None and token.access_token == refused:  # stable_token does this
            warn(msg("cache.same_token_back"))
        entry = wanted._replace(
            value=token.access_token,
            expires_in=token.expires_in,
            expires_at=asked_at + token.expires_in,
        )
        if why := _store(path, entry, log, settings):
            _forget(path, _ticket(settings), why, warn)
        if too_short:  # stored all the same: it is good, for a shorter job
            raise _not_long_enough(settings, token.expires_in)
        return token, False
    finally:
        lock.unlock(fd)


def _not_long_enough(settings: Settings, left: int) -> ConfigError:
    """The token WeChat gave is valid for less than --valid-for asks."""
    if settings.endpoint == STABLE_TOKEN and not settings.force_refresh:
        return ConfigError(
            msg("cache.stable_too_short", left=left, valid_for=settings.valid_for),
            hint=msg("cache.stable_too_short.hint"),
        )
    return ConfigError(
        msg("cache.too_short", left=left, valid_for=settings.valid_for),
        hint=msg("cache.too_short.hint"),
    )


def _ticket(settings: Settings) -> bool:
    """Whether the settings' endpoint hands out a ticket, not a token: -v says which."""
    return bool(settings.endpoint.ticket_type)


def _log_hit(settings: Settings, path: str, left: int, log: Callable[[str], None]) -> None:
    """Say under -v that the cache had the credential, and for how long it is good."""
    key = "cache.ticket_hit" if _ticket(settings) else "cache.token_hit"
    log(msg(key, path=path, left=left))


def _gave_up(why: str) -> TransportError:
    error = TransportError(msg("cache.gave_up", why=why), hint=msg("cache.gave_up.hint"))
    error.kind = "busy"  # another caller is at it: not this machine's network
    return error


def attempts_deadline(settings: Settings, started: float) -> float:
    """When a run's attempts must end: its time bound after `started`, less AFTER, kept
    for storing and printing; the first attempt still gets its whole timeout."""
    return started + time_bound(settings.retries, settings.timeout) - AFTER


def _unlocked_hit(
    settings: Settings, wanted: CacheEntry, refused: str | None
) -> AccessToken | None:
    """The cache's answer, read without the lock: the file is replaced whole, never
    half-written. Whatever cannot be read here is read again, and reported, under it."""
    try:
        return _cache_hit(settings, str(settings.cache_file), wanted, refused, lambda _: None)
    except ConfigError:
        return None


def _cache_hit(
    settings: Settings,
    path: str,
    wanted: CacheEntry,
    refused: str | None,
    log: Callable[[str], None],
) -> AccessToken | None:
    """The cached token, if it can be used now; None, with the reason under -v, if not.
    Raises the refusal another caller got from WeChat in the last REFUSAL_KEPT seconds."""
    entry = read_entry(path, log)
    if entry is None:
        return None
    now = time.time()
    why_not = reusable(entry, wanted, now, settings.valid_for)
    if not why_not and redact(entry.value, settings.secret) != entry.value:
        why_not = msg("cache.holds_secret")
    if not why_not and entry.value == refused:
        why_not = msg("cache.was_refused")
    if not why_not:
        left = int(entry.expires_at - now)  # whole seconds, as --json says it too
        _log_hit(settings, path, left, log)
        return AccessToken(entry.value, left)
    refusal = entry.refusal or {}
    age = now - float(refusal.get("at", 0))  # type: ignore[arg-type]
    kept = refusal.get("kept", REFUSAL_KEPT)
    kept = kept if isinstance(kept, int) and 0 < kept <= MAX_KEPT else REFUSAL_KEPT
    if refusal.get("account") == account(wanted) and 0 <= age <= kept:
        error = WeChatAPIError(refusal["errcode"], refusal["errmsg"])  # type: ignore[arg-type]
        hint = refusal.get("hint")
        error.hint = hint if isinstance(hint, str) and hint else error.hint
        error.args = (msg("cache.shared_refusal", error=error, age=age, kept=kept),)
        raise error
    if entry.value:
        key = "cache.ticket_not_used" if _ticket(settings) else "cache.token_not_used"
        log(msg(key, path=path, why=why_not))
    return None


def _refused(path: str, wanted: CacheEntry, error: WeChatAPIError) -> CacheEntry:
    """The entry with WeChat's refusal beside the token it holds (which stays usable by
    those it is good for), or an entry that holds only the refusal."""
    refusal = {
        "account": account(wanted),
        "at": time.time(),
        "errcode": error.errcode,
        "errmsg": error.errmsg[:MAX_ERRMSG],
        "hint": error.hint[:MAX_ERRMSG],  # this tool's, which may be the endpoint's own
        "kept": error.kept or REFUSAL_KEPT,  # seconds it is the answer for every caller
    }
    try:
        entry = read_entry(path, lambda _: None) or wanted
    except ConfigError:  # unreadable: WeChat's answer is what this caller reports
        entry = wanted
    return entry._replace(refusal=refusal)


def _store(path: str, entry: CacheEntry, log: Callable[[str], None], settings: Settings) -> str:
    """Save the entry for the next caller; "" if saved, else why not. What is stored
    holds no run of the AppSecret (an errcode of digits, or a JSON escape, could)."""
    data = json.dumps(entry._asdict())
    if redact(data, settings.secret) != data:
        return msg("cache.would_hold_secret")
    try:
        replace_file(path, data.encode())
    except OSError as error:
        return error.strerror or msg("cache.os_error")
    if entry.refusal:
        log(msg("cache.refusal_saved", path=path))
    else:
        log(msg("cache.ticket_saved" if _ticket(settings) else "cache.token_saved", path=path))
    return ""


def _forget(path: str, ticket: bool, why: str, warn: Callable[[str], None]) -> None:
    """The new token (or ticket) could not be saved, `why`: remove the entry, which holds
    the one this fetch has replaced (WeChat stops accepting it within 5 minutes)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        key = "cache.ticket_unsaved_stays" if ticket else "cache.token_unsaved_stays"
        warn(msg(key, path=path, why=why, error=error.strerror))
        return
    warn(msg("cache.ticket_unsaved" if ticket else "cache.token_unsaved", path=path, why=why))


def fetch_with_retries(
    settings: Settings,
    log: Callable[[str], None],
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    access_token: str = "",
) -> AccessToken:
    """A new credential from WeChat, with the retries and failover that settings allow,
    by `deadline` on `clock`; a ticket is asked for with `access_token`."""

    def attempt(api_base: str, seconds_left: float) -> AccessToken:
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
            access_token=access_token,
        )

    return with_retries(
        attempt, settings.api_bases, settings.retries, log, deadline, clock=clock, sleep=sleep
    )


def _wanted(settings: Settings, now: float) -> CacheEntry:
    """The cache entry that these settings would write (token not known yet)."""
    return CacheEntry(
        appid=settings.appid,
        endpoint=endpoint_key(settings.endpoint),
        realm=realm(settings.api_bases[0]),
        secret_sha256=secret_fingerprint(settings.secret),
        value="",
        expires_in=0,
        expires_at=now,
    )

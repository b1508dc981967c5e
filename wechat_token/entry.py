"""What the cache file holds: one entry, its shape, and when it can stand in for a new
credential. The file is JSON, replaced whole; what it holds is checked field by field when
read, since another program (or a disk) may have changed it."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable

from wechat_token.endpoints import MAX_EXPIRES_IN, USABLE, Endpoint, whole_number
from wechat_token.errors import ConfigError
from wechat_token.files import read_small_file
from wechat_token.lock import cache_ways_out
from wechat_token.messages import msg

CACHE_MARGIN = 300  # seconds: a cached token with less left than this is not reused


class CacheEntry(
    namedtuple(
        "CacheEntry",
        "appid endpoint realm secret_sha256 value expires_in expires_at refusal",
        defaults=(None,),
    )
):
    """What the cache file holds: the credential, what it is valid for, and WeChat's last
    refusal for this account, if any."""

    __slots__ = ()
    appid: str
    endpoint: str  # /cgi-bin/token, /cgi-bin/stable_token, /cgi-bin/ticket/getticket?type=jsapi
    realm: str  # where the token is good (endpoints.realm): WeChat's domains are one
    secret_sha256: str  # a one-way fingerprint: a new AppSecret means a new token
    value: str  # the access_token; "" for none (an entry that holds only a refusal)
    expires_in: int  # the lifetime WeChat gave, in seconds
    expires_at: float  # Unix time
    refusal: dict[str, object] | None  # {"account", "at", "errcode", "errmsg"}


def margin(expires_in: float) -> float:
    """Seconds before expiry that a credential stops being reused: short lifetimes keep half."""
    return min(CACHE_MARGIN, expires_in / 2)


def reusable(entry: CacheEntry, wanted: CacheEntry, now: float, valid_for: float = 0) -> str:
    """'' if the cached `entry` can stand in for `wanted` at `now`, with more than its
    margin and `valid_for` seconds left; else the reason not.

    `wanted` describes the credential asked for (its value and times are not looked at).
    """
    if (entry.appid, entry.endpoint) != (wanted.appid, wanted.endpoint):
        return msg("entry.other_account")
    if entry.realm != wanted.realm:
        return msg("entry.other_realm", realm=entry.realm)
    if entry.secret_sha256 != wanted.secret_sha256:
        return msg("entry.other_secret")
    left = entry.expires_at - now
    kept = margin(entry.expires_in)
    if not kept < left <= entry.expires_in:
        return msg("entry.within_margin", left=max(left, 0), kept=kept)
    if left <= valid_for:
        return msg("entry.short_of_valid_for", left=left, valid_for=valid_for)
    return ""


def secret_fingerprint(secret: str) -> str:
    """A one-way fingerprint of the AppSecret: enough to notice it changed, not to recover it."""
    # Imported here, not at the top: hashlib loads Python's own copy of OpenSSL (about
    # 2 ms and 4 MiB), which only the cache needs.
    import hashlib

    data = secret.encode(errors="surrogateescape")  # any str: the check on it comes later
    return hashlib.sha256(b"wechat_token cache:" + data).hexdigest()


def endpoint_key(endpoint: Endpoint) -> str:
    """The entry's `endpoint`: its path, and for a ticket its type (?type=jsapi)."""
    return endpoint.path + (f"?type={endpoint.ticket_type}" if endpoint.ticket_type else "")


def account(entry: CacheEntry) -> str:
    """Whose refusal it is: the same AppID, endpoint, realm and AppSecret."""
    return " ".join((entry.appid, entry.endpoint, entry.realm, entry.secret_sha256))


def read_entry(path: str, log: Callable[[str], None]) -> CacheEntry | None:
    """The entry in the cache file; None, with a note, if there is none or it is damaged."""
    try:
        raw = read_small_file(path, msg("cache_file"), cache_ways_out())[0]
        if raw.strip() and not raw.startswith(b'{"appid":'):  # never written by this tool
            raise ConfigError(
                msg("entry.not_a_cache_file", path=path), hint=msg("entry.not_a_cache_file.hint")
            )
        entry = CacheEntry(**json.loads(raw))  # TypeError: missing or unknown fields
    except FileNotFoundError:
        log(msg("entry.nothing_yet", path=path))
        return None
    except OSError as error:
        raise ConfigError(
            msg("entry.unreadable", path=path, error=error.strerror), hint=cache_ways_out()
        ) from None
    except (ValueError, RecursionError, TypeError):  # one of ours, damaged: replaced
        entry = None
    if entry is None or not _well_formed(entry):
        log(msg("entry.damaged", path=path))
        return None
    return entry


def _well_formed(entry: CacheEntry) -> bool:
    """Each field has the type and range it should: the file may be edited or cut short."""
    refusal = entry.refusal
    if refusal is not None and not (
        isinstance(refusal, dict)
        and isinstance(refusal.get("account"), str)
        and isinstance(refusal.get("at"), (int, float))
        and whole_number(refusal.get("errcode"))
        and isinstance(refusal.get("errmsg"), str)
    ):
        return False
    token = (
        whole_number(entry.expires_in)
        and 0 < entry.expires_in <= MAX_EXPIRES_IN
        and bool(USABLE.fullmatch(entry.value))
    )
    return (
        all(isinstance(text, str) for text in entry[:5])
        and (token or (entry.value == "" and refusal is not None))  # or a refusal alone
        and isinstance(entry.expires_at, (int, float))
        and 0 <= entry.expires_at < 1e12  # a Unix time; also false for nan and inf
    )

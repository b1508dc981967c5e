#!/usr/bin/env python3
"""Fetch a WeChat Official Account access_token over verified TLS, with pycurl.

A Python port of the PHP curl example that most WeChat blog posts copy, without its
two bugs: TLS verification stays on, and the decoded JSON is read from the right
variable. Run it directly:

    python fetch_token.py                  # prints the token alone, for TOKEN=$(...)
    python fetch_token.py --json -v        # one JSON object, and what happened

or import it:

    from fetch_token import get_access_token
    token, expires_in = get_access_token(appid, secret)

The AppID and AppSecret come from WECHAT_APPID / WECHAT_APPSECRET or config.ini
(see config.ini.example). The command keeps the token in a cache file and reuses it
until it is close to expiry, because each new fetch invalidates the token that other
programs may be using. Exit codes: 0 token printed, 1 WeChat answered with an
errcode, 2 usage or configuration error, 3 network, TLS, HTTP or response failure,
130 interrupted (Ctrl-C), 141 stdout closed early.
"""

from __future__ import annotations

import argparse
import configparser
import io
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, NamedTuple, NoReturn
from urllib.parse import quote, quote_plus, urlencode, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pycurl

__all__ = [
    "API_BASE",
    "API_BASES",
    "BACKUP_API_BASE",
    "AccessToken",
    "ConfigError",
    "FetchTokenError",
    "ResponseError",
    "TLSError",
    "TransportError",
    "WeChatAPIError",
    "get_access_token",
    "main",
]

API_BASE = "https://api.weixin.qq.com"
BACKUP_API_BASE = "https://api2.weixin.qq.com"  # WeChat's disaster-recovery domain
API_BASES = (API_BASE, BACKUP_API_BASE)  # tried in turn, one attempt each
TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 (a path, not a password)
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105
DEFAULT_TIMEOUT = 10.0  # seconds for each request
MAX_TIMEOUT = 3600  # seconds: bounded, whatever the configuration says
CONNECT_TIMEOUT = 5.0  # seconds to connect; WeChat answers in milliseconds when reachable
MAX_BODY = 64 * 1024  # a token answer is ~200 bytes; anything this big is not WeChat
DEFAULT_RETRIES = 2  # extra attempts, only after failures that can pass
MAX_RETRIES = 5
FIRST_WAIT = 0.5  # seconds before the first retry; doubled before each next one
CACHE_MARGIN = 300  # seconds: a cached token with less left than this is not reused
LOCK_POLL = 0.02  # seconds between looks at a cache lock held by another process
DEFAULT_CONFIG = "config.ini"
CONFIG_SECTION = "wechat"
CONFIG_KEYS = (
    "appid",
    "appsecret",
    "api_base",
    "ca_bundle",
    "timeout",
    "retries",
    "stable",
    "cache_file",
)
EXIT_OK, EXIT_WECHAT, EXIT_USAGE, EXIT_TRANSPORT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT, 128 + SIGPIPE, as shells do


# --- Errors: one class per exit code -------------------------------------------------


class FetchTokenError(Exception):
    """Base class of every error this module raises on purpose."""

    exit_code = EXIT_TRANSPORT

    def scrub(self, secret: str) -> None:
        """Mask the AppSecret and neutralise control characters in the message."""
        self.args = tuple(clean(str(arg), secret) for arg in self.args)


class ConfigError(FetchTokenError):
    """Bad command line or configuration, found before any connection is made."""

    exit_code = EXIT_USAGE


class WeChatAPIError(FetchTokenError):
    """WeChat answered, with an errcode instead of a token."""

    exit_code = EXIT_WECHAT

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def hint(self) -> str:
        """What the user should do about this errcode."""
        return hint_for(self.errcode, self.errmsg)

    def scrub(self, secret: str) -> None:
        super().scrub(secret)
        self.errmsg = clean(self.errmsg, secret)


class TransportError(FetchTokenError):
    """No usable answer: cannot connect, timed out, connection cut, ..."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # a failure that can pass: worth another attempt


class TLSError(TransportError):
    """The server's certificate failed verification: nothing was sent to it."""


class ResponseError(TransportError):
    """The server answered, but not with HTTP 200 and a token in JSON."""


class AccessToken(NamedTuple):
    access_token: str
    expires_in: int  # seconds, counted from when WeChat answered


# --- The port of the PHP example: build the URL, GET it, decode the JSON -------------


def get_access_token(
    appid: str,
    secret: str,
    *,
    api_base: str = API_BASE,
    stable: bool = False,
    force_refresh: bool = False,
    cacert: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> AccessToken:
    """Ask WeChat for an access_token, once, and return it with its lifetime.

    The classic endpoint hands out a new token on every call, and the previous one stops
    working about 5 minutes later: fetch once and reuse it (the command line's cache
    does that). With stable=True, the stable_token endpoint is asked instead: it gives
    every caller the same token while that is valid, and replaces it only when
    force_refresh=True (at most 20 times a day, 30 seconds apart).

    Raises WeChatAPIError (with .errcode, .errmsg and .hint) when WeChat refuses,
    TLSError when the certificate fails verification, ResponseError when the answer is
    not a token, and TransportError for anything else on the way. Their messages, and
    every line passed to `log`, have the AppSecret masked.
    """

    def note(text: str) -> None:
        if log is not None:
            log(clean(text, secret))

    if stable:  # POST {"grant_type": ..., "secret": ...} to .../cgi-bin/stable_token
        url, body = stable_token_request(api_base, appid, secret, force_refresh)
    else:
        url, body = token_url(api_base, appid, secret), None  # $url = ".../cgi-bin/token?...";
    cacert = cacert or _certifi_bundle()
    note(f"{'GET' if body is None else 'POST'} {url}")
    note(f"CA bundle: {cacert}")
    try:
        response = _http_request(url, cacert, timeout, body)  # curl_init(); ... curl_exec($ch);
        note(f"HTTP {response.status} from {response.address}")
        note("time since start: " + response.timings)
        return parse_token_response(response.status, response.body)  # json_decode(...)
    except FetchTokenError as error:
        error.scrub(secret)  # a caller may log the exception: keep it safe to print
        raise


def token_url(api_base: str, appid: str, secret: str) -> str:
    """The classic token URL. Unlike the PHP, the values are URL-encoded."""
    query = urlencode({"grant_type": "client_credential", "appid": appid, "secret": secret})
    return f"{api_base.rstrip('/')}{TOKEN_PATH}?{query}"


def stable_token_request(
    api_base: str, appid: str, secret: str, force_refresh: bool = False
) -> tuple[str, bytes]:
    """The stable_token URL and its JSON body: this endpoint takes the secret in the body."""
    body = {
        "grant_type": "client_credential",
        "appid": appid,
        "secret": secret,
        "force_refresh": force_refresh,  # true: replace the token now (20 a day at most)
    }
    return f"{api_base.rstrip('/')}{STABLE_TOKEN_PATH}", json.dumps(body).encode()


class _Response(NamedTuple):
    status: int
    body: bytes
    address: str  # the server's IP and port, as libcurl connected to it
    timings: str  # libcurl's own measurements, for -v


def _http_request(url: str, cacert: str, timeout: float, body: bytes | None = None) -> _Response:
    """GET `url` (or POST `body` as JSON) with pycurl, TLS verified, bounded in time and size."""
    # Imported here, not at the top: a caller that fails before the request (a
    # configuration error, say) should not pay the ~30 ms that loading libcurl costs.
    import pycurl

    answer = _CappedBody()
    c = pycurl.Curl()  # $ch = curl_init();
    try:
        c.setopt(pycurl.URL, url)  # curl_setopt($ch, CURLOPT_URL, $url);
        c.setopt(pycurl.WRITEFUNCTION, answer.write)  # CURLOPT_RETURNTRANSFER: keep the body
        if body is not None:  # stable_token: POST a JSON body instead of a GET
            c.setopt(pycurl.POSTFIELDS, body)
            c.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json"])
        # Verification ON: the PHP example set both to FALSE, which lets anyone on the
        # path pose as api.weixin.qq.com and collect the AppSecret from the URL.
        c.setopt(pycurl.SSL_VERIFYPEER, 1)  # the certificate must chain to a trusted CA ...
        c.setopt(pycurl.SSL_VERIFYHOST, 2)  # ... and name the host we asked for
        c.setopt(pycurl.CAINFO, os.fsencode(cacert))  # trusted CAs (bytes: any path works)
        c.setopt(pycurl.SSLVERSION, pycurl.SSLVERSION_TLSv1_2)  # TLS 1.2 or newer: older is broken
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS)  # never send the secret over plain http
        c.setopt(pycurl.FOLLOWLOCATION, 0)  # a redirect is not WeChat's answer: report it
        c.setopt(pycurl.CONNECTTIMEOUT_MS, _ms(min(timeout, CONNECT_TIMEOUT)))
        c.setopt(pycurl.TIMEOUT_MS, _ms(timeout))  # the whole request; never hang
        # libcurl keeps control until the transfer ends, so Ctrl-C would wait for the
        # timeout. A progress callback hands control back to Python several times a
        # second, and a KeyboardInterrupt raised there stops the transfer at once.
        c.setopt(pycurl.NOPROGRESS, 0)
        c.setopt(pycurl.XFERINFOFUNCTION, _let_python_run)
        c.setopt(pycurl.USERAGENT, "fetch_token.py (pycurl)")
        try:
            c.perform()  # $output = curl_exec($ch);
        except pycurl.error as error:
            raise _transport_error(c, error, url, cacert, timeout, answer) from None
        return _Response(  # getinfo must be called before close
            status=c.getinfo(pycurl.RESPONSE_CODE),  # e.g. 200
            body=bytes(answer.data),
            address=f"{c.getinfo(pycurl.PRIMARY_IP)}:{c.getinfo(pycurl.PRIMARY_PORT)}",
            timings=_timings(c),
        )
    finally:
        c.close()  # curl_close($ch);


class _CappedBody:
    """Collects the response body, refusing to grow past MAX_BODY bytes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.too_large = False

    def write(self, chunk: bytes) -> int | None:
        if len(self.data) + len(chunk) > MAX_BODY:
            self.too_large = True
            return 0  # taking fewer bytes than given makes libcurl abort the transfer
        self.data += chunk
        return None  # None: all of it taken


def _ms(seconds: float) -> int:
    """Milliseconds for libcurl: at least 1 (0 means no timeout), at most MAX_TIMEOUT."""
    return max(1, round(min(seconds, MAX_TIMEOUT) * 1000))


def _let_python_run(*_progress: int) -> None:
    """Progress callback: does nothing, but lets Python act on Ctrl-C mid-transfer."""


def _timings(c: pycurl.Curl) -> str:
    """libcurl's timers, each counted from the start of the request."""
    import pycurl

    timers = [
        ("DNS", pycurl.NAMELOOKUP_TIME),
        ("connect", pycurl.CONNECT_TIME),
        ("TLS handshake", pycurl.APPCONNECT_TIME),
        ("first byte", pycurl.STARTTRANSFER_TIME),
        ("total", pycurl.TOTAL_TIME),
    ]
    return ", ".join(f"{name} {c.getinfo(info) * 1000:.1f} ms" for name, info in timers)


def parse_token_response(status: int, body: bytes) -> AccessToken:
    """Turn WeChat's answer into an AccessToken, or raise the matching error."""
    if status != 200:  # a 5xx is the server's trouble and may pass; a 4xx will not
        raise ResponseError(
            f"HTTP {status} instead of 200: {_excerpt(body)}", transient=500 <= status <= 599
        )
    if not body.strip():
        raise ResponseError("empty response (HTTP 200 with no body)")
    try:
        answer = json.loads(body)  # $jsoninfo = json_decode($output, true);
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        raise ResponseError(f"response is not JSON: {_excerpt(body)}") from None
    if not isinstance(answer, dict):
        raise ResponseError(f"response is not a JSON object: {_excerpt(body)}")
    errcode = answer.get("errcode", 0)
    if errcode != 0:  # {"errcode":40013,"errmsg":"invalid appid"} comes with HTTP 200
        errmsg = answer.get("errmsg", "")
        if not isinstance(errcode, int) or not isinstance(errmsg, str):
            raise ResponseError(f"malformed error answer: {_excerpt(body)}")
        raise WeChatAPIError(errcode, errmsg)
    token = answer.get("access_token")  # $access_token = $jsoninfo["access_token"];
    expires_in = answer.get("expires_in")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ResponseError(f"no usable access_token in the response: {_excerpt(body)}")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise ResponseError(f"no usable expires_in in the response: {_excerpt(body)}")
    return AccessToken(token, expires_in)


_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII: safe to print and store


def _excerpt(body: bytes, limit: int = 80) -> str:
    """The start of a body, for an error message (cleaned later, like all output)."""
    if not body:
        return "(empty body)"
    text = body[: limit * 4].decode("utf-8", errors="replace")  # UTF-8: up to 4 bytes a char
    return repr(text[:limit] + ("..." if len(text) > limit or len(body) > limit * 4 else ""))


def _transport_error(
    c: pycurl.Curl,
    error: pycurl.error,
    url: str,
    cacert: str,
    timeout: float,
    body: _CappedBody,
) -> FetchTokenError:
    """Translate libcurl's error into one the user can act on."""
    import pycurl

    code, message = error.args[0], str(error.args[-1])
    host = urlsplit(url).hostname
    if body.too_large:
        return ResponseError(f"response larger than {MAX_BODY // 1024} KiB from {host}: refused")
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        return TLSError(_tls_problem(c, host, cacert, message) + "; nothing was sent")
    if code == pycurl.E_SSL_CONNECT_ERROR:
        return TLSError(f"TLS handshake with {host} failed: {message}")
    if code == pycurl.E_SSL_CACERT_BADFILE:
        return ConfigError(f"cannot use CA bundle {cacert}: {message}")
    # The rest may pass: a retry, perhaps on the backup domain, can succeed.
    if code in (pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR):
        return TransportError(f"the answer from {host} was cut off: {message}", transient=True)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return TransportError(
            f"no answer from {host} within {timeout:g} s: {message}", transient=True
        )
    can_pass = (
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_GOT_NOTHING,  # the connection closed with no answer at all
        pycurl.E_SEND_ERROR,
    )
    return TransportError(
        f"request to {host} failed: {message} (curl error {code})", transient=code in can_pass
    )


def _tls_problem(c: pycurl.Curl, host: str | None, cacert: str, message: str) -> str:
    """Say which of the usual certificate failures this was."""
    import pycurl

    result = c.getinfo(pycurl.SSL_VERIFYRESULT)  # OpenSSL's X509_V_ERR_* code
    if result == 10:
        return f"TLS: the certificate of {host} has expired"
    if result == 9:
        return f"TLS: the certificate of {host} is not valid yet (check this machine's clock)"
    if result in (2, 18, 19, 20, 21):
        return f"TLS: the certificate of {host} is not from a CA in {cacert} (untrusted CA)"
    if "subject name" in message or "host name" in message:
        return f"TLS: the certificate is not for {host} (wrong hostname)"
    return f"TLS: the certificate of {host} failed verification: {message}"


def _certifi_bundle() -> str:
    import certifi  # imported only when a request is made (see _http_request)

    return certifi.where()


# --- Retries and failover: only for failures that can pass ----------------------------


def with_retries(
    attempt: Callable[[str], AccessToken],
    api_bases: Sequence[str],
    retries: int = DEFAULT_RETRIES,
    log: Callable[[str], None] = lambda _text: None,
    sleep: Callable[[float], object] = time.sleep,
) -> AccessToken:
    """Return attempt(api_base), calling it at most 1 + `retries` times.

    Another attempt is made only after a failure that can pass (see worth_retrying),
    after a wait of 0.5 s, then 1 s, 2 s, ...; each attempt goes to the next base in
    `api_bases`, wrapping around, so a dead primary domain costs one timeout, no more.
    """
    number = 0
    while True:
        api_base = api_bases[number % len(api_bases)]
        try:
            return attempt(api_base)
        except FetchTokenError as error:
            if number == retries or not worth_retrying(error):
                raise
            wait = retry_wait(number)
            following = api_bases[(number + 1) % len(api_bases)]
            log(f"attempt {number + 1} of {retries + 1} failed: {error}")
            log(f"next attempt in {wait:g} s, via {following}")
        sleep(wait)
        number += 1


def worth_retrying(error: FetchTokenError) -> bool:
    """True for errcode -1 ("system busy"), HTTP 5xx and network failures that can pass.

    Never for a TLS failure: a certificate that fails verification may be an attack,
    and trying elsewhere would hide it. Never for other errcodes or a 4xx: asking again
    gets the same answer and spends the daily quota.
    """
    if isinstance(error, WeChatAPIError):
        return error.errcode == -1
    return isinstance(error, TransportError) and error.transient


def retry_wait(number: int) -> float:
    """Seconds to wait after failed attempt `number` (0, 1, ...): 0.5, 1, 2, 4, ..."""
    return FIRST_WAIT * 2.0**number


def longest_wait(retries: int, timeout: float) -> float:
    """The most time that 1 + `retries` attempts and the waits between them can take."""
    return (retries + 1) * timeout + sum(retry_wait(number) for number in range(retries))


# --- The cache: one token per AppID and endpoint, shared by every process -------------


class CacheEntry(NamedTuple):
    """What the cache file holds: the token, and what it is valid for."""

    appid: str
    endpoint: str  # TOKEN_PATH or STABLE_TOKEN_PATH
    api_base: str  # the first API base asked: a test server's token is no good elsewhere
    secret_sha256: str  # a one-way fingerprint: a new AppSecret means a new token
    access_token: str
    expires_in: int  # the lifetime WeChat gave, in seconds
    expires_at: float  # Unix time


def reusable(entry: CacheEntry, wanted: CacheEntry, now: float) -> str:
    """'' if the cached `entry` can stand in for `wanted` at `now`; else the reason not.

    `wanted` describes the token asked for (its token and times are not looked at).
    """
    if (entry.appid, entry.endpoint) != (wanted.appid, wanted.endpoint):
        return "it is for another AppID or endpoint"
    if entry.api_base != wanted.api_base:
        return f"it is for {entry.api_base}"
    if entry.secret_sha256 != wanted.secret_sha256:
        return "it was fetched with another AppSecret"
    left = entry.expires_at - now
    margin = min(CACHE_MARGIN, entry.expires_in / 2)  # short lifetimes keep half
    if not margin < left <= entry.expires_in:  # also false for nan: never trust it
        return f"it has {max(left, 0):.0f} s left, and {margin:.0f} s is the margin"
    return ""


def secret_fingerprint(secret: str) -> str:
    """A one-way fingerprint of the AppSecret: enough to notice it changed, not to recover it."""
    # Imported here, not at the top: hashlib loads Python's own copy of OpenSSL (about
    # 2 ms and 4 MiB), which only the cache needs.
    import hashlib

    return hashlib.sha256(b"fetch_token cache:" + secret.encode()).hexdigest()


def cached_access_token(
    settings: Settings, log: Callable[[str], None], warn: Callable[[str], None]
) -> tuple[AccessToken, bool]:
    """The cached token while it is good, else a new one, stored for the next caller.

    Returns the token (with the time it has left) and whether it came from the cache.
    The whole "read; if stale, fetch and write" runs under a lock, so processes
    started together make one request and print one token.
    """
    path = settings.cache_file
    if path is None:  # --no-cache
        return _fetch(settings, log), False
    lock = _lock(path, longest_wait(settings.retries, settings.timeout) + 1, log)
    try:
        now = time.time()
        wanted = _wanted(settings, now)
        if settings.force_refresh:
            log(f"cache: --force-refresh, not reading {path}")
        else:
            entry = _read_cache(path, log)
            why_not = reusable(entry, wanted, now) if entry else ""
            if entry and not why_not:
                log(f"cache: token from {path}, valid for {entry.expires_at - now:.0f} s more")
                return AccessToken(entry.access_token, int(entry.expires_at - now)), True
            if why_not:
                log(f"cache: not using the token in {path}: {why_not}")
        token = _fetch(settings, log)
        entry = wanted._replace(
            access_token=token.access_token,
            expires_in=token.expires_in,
            expires_at=now + token.expires_in,  # counted from before the request: safe side
        )
        try:
            _write_cache(path, entry)
            log(f"cache: token saved in {path}")
        except OSError as error:  # the token is good: print it, but say what went wrong
            warn(f"could not save the token in {path}: {error.strerror}; next run fetches again")
        return token, False
    finally:
        if lock is not None:
            os.close(lock)  # closing the lock file releases the lock


def _wanted(settings: Settings, now: float) -> CacheEntry:
    """The cache entry that this run's settings would write (token not known yet)."""
    return CacheEntry(
        appid=settings.appid,
        endpoint=STABLE_TOKEN_PATH if settings.stable else TOKEN_PATH,
        api_base=settings.api_bases[0],
        secret_sha256=secret_fingerprint(settings.secret),
        access_token="",
        expires_in=0,
        expires_at=now,
    )


def _fetch(settings: Settings, log: Callable[[str], None]) -> AccessToken:
    """A new token from WeChat, with the retries and failover that settings allow."""

    def attempt(api_base: str) -> AccessToken:
        return get_access_token(
            settings.appid,
            settings.secret,
            api_base=api_base,
            stable=settings.stable,
            force_refresh=settings.force_refresh,
            cacert=settings.cacert,
            timeout=settings.timeout,
            log=log,
        )

    return with_retries(attempt, settings.api_bases, settings.retries, log)


_CACHE_WAYS_OUT = "choose another with --cache-file, or run with --no-cache"


def _lock(path: str, patience: float, log: Callable[[str], None]) -> int | None:
    """Lock the cache (on PATH.lock, created 0600); None where locking does not exist.

    Waits at most `patience` seconds: as long as a healthy process needs to fetch.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)  # 0700 if new
        import fcntl  # POSIX only

        lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except ImportError:
        log("cache: no file locking on this system (no fcntl): using the cache unlocked")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot use the cache {path}: {error.filename}: {error.strerror}; {_CACHE_WAYS_OUT}"
        ) from None
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:  # another process is fetching: wait for its token
            if time.monotonic() > deadline:
                os.close(lock)
                raise TransportError(
                    f"another process has held {path}.lock for {patience:g} s; is it stuck?"
                ) from None
            time.sleep(LOCK_POLL)
        except OSError as error:  # e.g. a network file system without locks
            os.close(lock)
            log(f"cache: cannot lock {path}.lock ({error.strerror}): using the cache unlocked")
            return None


def _read_cache(path: str, log: Callable[[str], None]) -> CacheEntry | None:
    """The entry in the cache file; None, with a note, if there is none or it is damaged."""
    try:
        with open(path, "rb") as file:
            data = json.loads(file.read(MAX_BODY))
        entry = CacheEntry(**data)  # TypeError: missing or unknown fields
    except FileNotFoundError:
        log(f"cache: nothing in {path} yet")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read the cache {path}: {error.strerror}; {_CACHE_WAYS_OUT}"
        ) from None
    except (ValueError, RecursionError, TypeError):  # not JSON, or not our shape
        entry = None
    if entry is None or not _well_formed(entry):
        log(f"cache: {path} is damaged or not a cache file; it will be replaced")
        return None
    return entry


def _well_formed(entry: CacheEntry) -> bool:
    """Each field has the type it should: the file may have been edited or cut short."""
    return (
        all(isinstance(text, str) for text in entry[:5])
        and isinstance(entry.expires_in, int)
        and isinstance(entry.expires_at, (int, float))
        and bool(_TOKEN.fullmatch(entry.access_token))
    )


def _write_cache(path: str, entry: CacheEntry) -> None:
    """Replace the cache file in one step: readers see the old entry or the new, never half."""
    import tempfile  # only when a token is stored: a cache hit does not pay for it

    folder = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".fetch_token-", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(entry._asdict(), file)
            file.flush()
            os.fsync(file.fileno())  # on disk before it takes the old entry's place
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def default_cache_file(appid: str, stable: bool, environ: Mapping[str, str]) -> str:
    """The per-user cache file for this AppID and endpoint, named from the AppID alone."""
    if sys.platform == "win32":
        folder = environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
    elif sys.platform == "darwin":
        folder = os.path.expanduser("~/Library/Caches")
    else:  # XDG: $XDG_CACHE_HOME if it is an absolute path, else ~/.cache
        folder = environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(folder):
            folder = os.path.expanduser("~/.cache")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", appid)  # safe as a file name, whatever it holds
    endpoint = "stable_token" if stable else "token"
    return os.path.join(folder, "fetch_token", f"{name}.{endpoint}.json")


# --- Redaction and sanitising: every message passes through clean() -----------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    r"""Show control characters (terminal escapes, newlines, bidi marks) as \x.. escapes."""
    return _UNSAFE.sub(lambda match: ascii(match[0])[1:-1], text)


def redact(text: str, secret: str) -> str:
    """Replace the AppSecret, raw or URL-encoded in any letter case, with ***."""
    if not secret:
        return text
    forms = sorted({secret, quote(secret, safe=""), quote_plus(secret)}, key=len, reverse=True)
    return re.sub("|".join(map(re.escape, forms)), "***", text, flags=re.IGNORECASE)


def clean(text: str, secret: str) -> str:
    """What every message goes through before it is shown: sanitised, then redacted."""
    return redact(sanitize(text), secret)


# --- What to do about each errcode ----------------------------------------------------

_CONSOLE = "公众号后台 → 设置与开发 → 基本配置 (Settings and Development → Basic Configuration)"
HINTS = {
    -1: "WeChat is busy: wait a few seconds and try again",
    40001: (
        "the AppSecret is wrong, or another program fetched a newer token for this account: "
        f"check the AppSecret in {_CONSOLE}, and let one program fetch tokens for everyone"
    ),
    40002: "grant_type must be client_credential (a bug in the caller)",
    40013: f"check the AppID in {_CONSOLE}",
    40125: f"check or reset the AppSecret in {_CONSOLE}",
    40164: (
        "add {ip} to the IP whitelist (IP白名单) in "
        f"{_CONSOLE}; it must be this machine's public egress IP, not its local address"
    ),
    40243: f"the AppSecret is frozen: unfreeze it in {_CONSOLE} (takes about 10 minutes)",
    41002: "the AppID is missing from the request: set appid in the configuration",
    41004: "the AppSecret is missing from the request: set appsecret in the configuration",
    43002: "this endpoint needs POST (a bug in the caller)",
    45009: (
        "the daily quota of token requests is used up: reuse a token for its whole "
        "lifetime instead of fetching each time; the quota resets daily, or use clear_quota"
    ),
    45011: "too many requests this minute: try again in the next minute",
    47001: "the request body is not valid JSON (a bug in the caller)",
    89501: "this IP awaits the account administrator's confirmation in WeChat",
    89506: "the administrator refused this IP: blocked for 24 hours; ask the administrator",
    89507: "the administrator refused this IP: blocked for 1 hour; ask the administrator",
}
HINTS[61004] = HINTS[40164]  # the newer guide's code for the same whitelist refusal
HINTS[89503] = HINTS[89501]


def hint_for(errcode: int, errmsg: str) -> str:
    """The hint for an errcode; for the IP whitelist, name the IP WeChat saw."""
    hint = HINTS.get(errcode, "see WeChat's global return codes (全局返回码说明)")
    if "{ip}" in hint:
        # errmsg: "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist", or any
        # other wording that names an IPv4 address
        match = re.search(r"invalid ip ([0-9A-Fa-f.:]+)|\b(\d{1,3}(?:\.\d{1,3}){3})\b", errmsg)
        ip = match and (match[1] or match[2])
        hint = hint.replace("{ip}", ip or "this machine's public IP")
    return hint


# --- Configuration: flag, then environment, then config file, then default ------------


class Settings(NamedTuple):
    appid: str
    secret: str
    api_bases: tuple[str, ...]  # tried in turn: each retry moves to the next
    cacert: str | None  # None: certifi's bundle
    timeout: float  # seconds, for each attempt
    retries: int
    stable: bool  # POST /cgi-bin/stable_token instead of GET /cgi-bin/token
    force_refresh: bool
    cache_file: str | None  # None: --no-cache
    warnings: list[str]


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Gather and check every setting before any connection is made."""
    path = args.config or DEFAULT_CONFIG
    section, warnings = _read_config(path, must_exist=args.config is not None)

    def first(key: str, flag: str | None = None, env: str = "") -> tuple[str, str] | None:
        """The first value given (flag, environment, file) and where it came from."""
        for value, origin in (
            (flag, "--" + key.replace("_", "-")),
            (environ.get(env) if env else None, env),
            (section.get(key), f"{path}: {key}"),
        ):
            if value is not None:
                _check_plain(value, origin)
                return value, origin
        return None

    appid, appid_origin = _credential(first("appid", args.appid, "WECHAT_APPID"), "appid", path)
    secret, _ = _credential(first("appsecret", env="WECHAT_APPSECRET"), "appsecret", path)
    if not re.fullmatch(r"wx[0-9a-f]{16}", appid):
        warnings.append(f"{appid_origin}: {appid!r} does not look like an AppID (wx + 16 hex)")

    if args.api_base:  # --api-base, given once or more
        listed = [(value, "--api-base") for value in args.api_base]
    elif "api_base" in section:  # a list: URLs separated by spaces, commas or lines
        values = section["api_base"].replace(",", " ").split() or [""]
        listed = [(value, f"{path}: api_base") for value in values]
    else:
        listed = [(value, "") for value in API_BASES]

    stable = args.stable
    if stable is None:
        found = first("stable")
        stable = _yes_no(*found) if found else False

    if args.no_cache:
        cache_file = None
    elif args.cache_file is not None:
        _check_plain(args.cache_file, "--cache-file")
        cache_file = args.cache_file
    elif "cache_file" in section:  # relative to the config file, like ca_bundle
        _check_plain(section["cache_file"], f"{path}: cache_file")
        cache_file = os.path.join(os.path.dirname(path), section["cache_file"])
    else:
        cache_file = default_cache_file(appid, stable, environ)

    timeout = first("timeout", args.timeout)
    retries = first("retries", args.retries)
    return Settings(
        appid=appid,
        secret=secret,
        api_bases=tuple(_api_base(value, origin) for value, origin in listed),
        cacert=_pick_cacert(args.cacert, section.get("ca_bundle"), path),
        timeout=_seconds(*timeout) if timeout else DEFAULT_TIMEOUT,
        retries=_retries(*retries) if retries else DEFAULT_RETRIES,
        stable=stable,
        force_refresh=args.force_refresh,
        cache_file=cache_file,
        warnings=warnings,
    )


def _api_base(value: str, origin: str) -> str:
    """An API base must be an https:// URL, plain enough to put a path after."""
    _check_plain(value, origin)
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or not (value.isascii() and _one_word(value))
    ):
        raise ConfigError(f"{origin}: {value!r} is not an https:// URL; refusing")
    return value


def _credential(found: tuple[str, str] | None, key: str, path: str) -> tuple[str, str]:
    """The AppID or AppSecret: required, and a single word."""
    env = "WECHAT_APPID" if key == "appid" else "WECHAT_APPSECRET"
    if found is None:
        raise ConfigError(f"no {key}: set {env}, or {key} in [{CONFIG_SECTION}] of {path}")
    value, origin = found
    if not _one_word(value):  # never echo the value: it may be the secret
        raise ConfigError(f"{origin}: contains whitespace or a non-printable character")
    return found


def _one_word(value: str) -> bool:
    """No spaces, and nothing unprintable (tabs, control characters, undecodable bytes)."""
    return " " not in value and value.isprintable()


def _read_config(path: str, must_exist: bool) -> tuple[dict[str, str], list[str]]:
    """The [wechat] section of the config file, and warnings about the file."""
    parser = configparser.ConfigParser(interpolation=None)  # a '%' in a secret is literal
    try:
        with open(path, encoding="utf-8-sig") as file:  # -sig: Notepad's BOM is fine
            parser.read_file(file)
            mode = os.fstat(file.fileno()).st_mode
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"{path}: no such file") from None
        return {}, []
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {_config_syntax(error)}") from None
    if not parser.has_section(CONFIG_SECTION):
        raise ConfigError(f"{path}: no [{CONFIG_SECTION}] section")
    section = dict(parser.items(CONFIG_SECTION))
    warnings = [
        f"{path}: unknown key {key!r} in [{CONFIG_SECTION}] ignored; "
        f"known keys: {', '.join(CONFIG_KEYS)}"
        for key in section
        if key not in CONFIG_KEYS
    ]
    if "appsecret" in section and os.name == "posix" and mode & 0o044:  # group or others
        warnings.append(f"{path} holds the AppSecret and other users can read it: chmod 600 {path}")
    return section, warnings


def _config_syntax(error: configparser.Error) -> str:
    """configparser's complaint, without echoing the line (it may hold the secret)."""
    if isinstance(error, configparser.MissingSectionHeaderError):  # a ParsingError too
        return f"line {error.lineno}: a [{CONFIG_SECTION}] header must come first"
    if isinstance(error, configparser.ParsingError):
        return f"line {error.errors[0][0]} is not 'key = value'"
    if isinstance(error, configparser.DuplicateOptionError):
        return f"line {error.lineno}: key {error.option!r} given twice"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: section [{error.section}] given twice"
    return "not a valid config file"


def _check_plain(value: str, origin: str) -> None:
    """Refuse empty and quoted values: configparser keeps quotes as part of the value."""
    if not value:
        raise ConfigError(f"{origin}: empty value")
    if value[0] in "\"'" or value[-1] in "\"'":
        raise ConfigError(f"{origin}: remove the quotes around the value")


def _pick_cacert(flag: str | None, configured: str | None, config_path: str) -> str | None:
    """--cacert, else ca_bundle (relative to the config file), else None (certifi)."""
    if flag is not None:
        path, origin = flag, "--cacert"
    elif configured is not None:
        _check_plain(configured, f"{config_path}: ca_bundle")
        path = os.path.join(os.path.dirname(config_path), configured)
        origin = f"{config_path}: ca_bundle"
    else:
        return None
    if not os.path.isfile(path):
        raise ConfigError(f"{origin}: CA bundle {path!r} not found")
    return path


def _retries(value: str, origin: str) -> int:
    if not (re.fullmatch(r"[0-9]+", value) and int(value) <= MAX_RETRIES):
        raise ConfigError(f"{origin}: {value!r} must be a whole number from 0 to {MAX_RETRIES}")
    return int(value)


def _yes_no(value: str, origin: str) -> bool:
    answers = configparser.ConfigParser.BOOLEAN_STATES  # yes/no, true/false, on/off, 1/0
    if value.lower() not in answers:
        raise ConfigError(f"{origin}: {value!r} must be yes or no")
    return answers[value.lower()]


def _seconds(value: str, origin: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{origin}: {value!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_TIMEOUT:  # also refuses nan and inf
        raise ConfigError(f"{origin}: {value!r} must be more than 0 and at most {MAX_TIMEOUT}")
    return seconds


# --- Command line: one place prints results and errors --------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see --help)")  # exit 2, printed like every error


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog="fetch_token.py",
        description="Fetch a WeChat Official Account access_token over verified TLS. "
        "The AppSecret comes from WECHAT_APPSECRET or the config file, never from a flag: "
        "every user of the machine can read command lines.",
    )
    parser.add_argument("--config", metavar="PATH", help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--appid", help="the AppID (default: WECHAT_APPID, then config)")
    parser.add_argument(
        "--api-base",
        metavar="URL",
        action="append",
        help=f"API base URL; give it again for a backup (default {' then '.join(API_BASES)})",
    )
    parser.add_argument("--cacert", metavar="PATH", help="CA bundle (default: certifi's)")
    parser.add_argument("--timeout", metavar="SECONDS", help="bound for each attempt (10)")
    parser.add_argument(
        "--retries",
        metavar="N",
        help=f"extra attempts after errcode -1, HTTP 5xx or a network failure "
        f"(default {DEFAULT_RETRIES}, at most {MAX_RETRIES})",
    )
    parser.add_argument(
        "--stable",
        action=argparse.BooleanOptionalAction,
        help="use POST /cgi-bin/stable_token: one token shared by every caller",
    )
    parser.add_argument(
        "--force-refresh",
        action="store_true",
        help="fetch a new token even if the cached one is good (it invalidates the old one)",
    )
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-file",
        metavar="PATH",
        help="where to keep the token (default ~/.cache/fetch_token/APPID.token.json)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write a cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what happens")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the options only: a mistaken `--appsecret VALUE` must not be echoed.
        names = sorted({arg.split("=")[0] for arg in unknown if arg.startswith("-")})
        if any("secret" in name for name in names):
            raise ConfigError("the AppSecret has no option: set WECHAT_APPSECRET or config.ini")
        raise ConfigError(f"unrecognized arguments: {' '.join(names) or '(values)'} (see --help)")
    return args


class _Output:
    """Writes results and messages; every message passes through clean()."""

    def __init__(self, json_mode: bool, secret: str) -> None:
        self.json_mode = json_mode
        self.verbose = False
        self.secret = secret

    def _stderr(self, prefix: str, text: str) -> None:
        print(prefix + clean(text, self.secret), file=sys.stderr)

    def note(self, text: str) -> None:
        if self.verbose:
            self._stderr("* ", text)

    def warn(self, text: str) -> None:
        self._stderr("warning: ", text)

    def _stdout(self, obj: dict[str, str | int | bool] | str) -> None:
        if isinstance(obj, dict):  # clean each string before JSON escapes it
            obj = json.dumps(
                {k: clean(v, self.secret) if isinstance(v, str) else v for k, v in obj.items()},
                ensure_ascii=False,
            )
        print(clean(obj, self.secret))
        sys.stdout.flush()  # a closed pipe shows up here, inside main(), not at exit

    def success(self, token: AccessToken, cached: bool) -> int:
        if self.json_mode:
            expires_at = int(time.time()) + token.expires_in
            self._stdout({**token._asdict(), "expires_at": expires_at, "cached": cached})
        else:
            self._stdout(token.access_token)
        return EXIT_OK

    def failure(self, error: FetchTokenError) -> int:
        self._stderr("error: ", str(error))
        if isinstance(error, WeChatAPIError):
            self._stderr("hint: ", error.hint)
            if self.json_mode:
                self._stdout({"errcode": error.errcode, "errmsg": error.errmsg, "hint": error.hint})
        elif self.json_mode:
            self._stdout({"error": str(error)})
        return error.exit_code

    def interrupted(self) -> int:
        self.failure(FetchTokenError("interrupted"))
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a console that cannot show 中文 or →
            stream.reconfigure(errors="backslashreplace")  # shows escapes, not a traceback
    # --json is looked for before parsing, so that a usage error is JSON too.
    out = _Output("--json" in argv, os.environ.get("WECHAT_APPSECRET", ""))
    try:
        return _run(argv, out)
    except BrokenPipeError:  # the reader of stdout went away (`| head -c0`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the final flush
        return EXIT_BROKEN_PIPE  # quietly, as if killed by SIGPIPE


def _run(argv: list[str], out: _Output) -> int:
    try:
        args = _parse_args(argv)
        out.verbose = args.verbose
        settings = load_settings(args, os.environ)
        out.secret = settings.secret
        for warning in settings.warnings:
            out.warn(warning)
        token, cached = cached_access_token(settings, out.note, out.warn)
    except FetchTokenError as error:
        return out.failure(error)
    except KeyboardInterrupt:
        return out.interrupted()
    return out.success(token, cached)


if __name__ == "__main__":
    raise SystemExit(main())

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
74 stdout cannot take the token, 141 stdout closed early (broken pipe). Ctrl-C ends it
at once, as killed by SIGINT (the shell shows 130).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C core of `signal`: no import time
import os
import sys

# `fetch-token`, the command that pip installs, is a wrapper: it imports this module, then
# calls main(). Embedded interpreters may have no sys.argv.
_INSTALLED = os.path.basename((getattr(sys, "argv", None) or [""])[0]) == "fetch-token"
if (__name__ == "__main__" or _INSTALLED) and _signal.getsignal(
    _signal.SIGINT
) is _signal.default_int_handler:
    # Run as a command: Ctrl-C ends it at once, even while it is still starting (see
    # _ended_by_signals). First of all, before the imports that take a moment.
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

import argparse
import configparser
import contextlib
import json
import re
import stat
import time
from collections import namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~4 ms a run)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import NoReturn, TypeGuard

    import pycurl

__version__ = "1.0.0"


# --- The port of the PHP example: build the URL, GET it, decode the JSON -------------

API_BASE = "https://api.weixin.qq.com"
TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 (a path, not a password)
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105
DEFAULT_TIMEOUT = 10.0  # seconds for each request


def get_access_token(
    appid: str,
    secret: str,
    *,
    api_base: str = API_BASE,
    stable: bool = False,
    force_refresh: bool = False,
    cacert: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    proxy: str | None = None,
    log: Callable[[str], None] | None = None,
) -> AccessToken:
    """Ask WeChat for an access_token, once, and return it with its lifetime.

    The classic endpoint hands out a new token on every call, and the previous one stops
    working about 5 minutes later: fetch once and reuse it (the command line's cache
    does that). With stable=True, the stable_token endpoint is asked instead: it gives
    every caller the same token while that is valid, and replaces it only when
    force_refresh=True (at most 20 times a day, 30 seconds apart).

    `proxy` is a proxy URL (http://[user:password@]host:port), "" for none; None leaves
    libcurl to read https_proxy and no_proxy from the environment, as curl does.

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
        url, body = token_url(api_base, appid, secret), None  # $url = "...?grant_type=...";
    if proxy:  # as the command checks it: pycurl takes ASCII only, and libcurl quotes it
        _proxy(proxy, "proxy")
    cacert = cacert or _certifi_bundle()
    note(f"{'GET' if body is None else 'POST'} {url}")
    note(f"CA bundle: {cacert}")
    if (in_use := _proxy_in_use(proxy, os.environ)) is not None:
        note(f"proxy: {_proxy_shown(in_use[0])}{in_use[1]}")
    try:
        # $ch = curl_init(); curl_setopt(...); $output = curl_exec($ch); curl_close($ch);
        response = _http_request(url, cacert, timeout, body, proxy)
        note(f"HTTP {response.status} from {response.address}")
        note("time since start: " + response.timings)
        # $jsoninfo = json_decode($output, true); $access_token = $jsoninfo["access_token"];
        token = parse_token_response(response.status, response.output)
        if redact(token.access_token, secret) != token.access_token:  # never print the secret
            raise ResponseError("the access_token in the answer holds the AppSecret: refused")
        return token
    except FetchTokenError as error:
        error.scrub(secret)  # a caller may log the exception: keep it safe to print
        raise


def token_url(api_base: str, appid: str, secret: str) -> str:
    """The classic token URL. Unlike the PHP, the values are URL-encoded."""
    from urllib.parse import urlencode  # here, not at the top: a cache hit needs no URL

    query = urlencode({"grant_type": "client_credential", "appid": appid, "secret": secret})
    return f"{api_base.rstrip('/')}{TOKEN_PATH}?{query}"


def _http_request(
    url: str, cacert: str, timeout: float, body: bytes | None = None, proxy: str | None = None
) -> _Response:
    """GET `url` (or POST `body` as JSON) with pycurl, TLS verified, bounded in time and size."""
    # Imported here, not at the top: a caller that fails before the request (a
    # configuration error, say) should not pay the ~30 ms that loading libcurl costs.
    try:
        import pycurl
    except ImportError as error:  # not installed, or built for another libcurl
        raise _missing("pycurl", error) from None

    buffer = _CappedBuffer()  # like io.BytesIO, but it refuses to grow past MAX_BODY
    c = pycurl.Curl()  # $ch = curl_init();
    try:
        c.setopt(pycurl.URL, url)  # curl_setopt($ch, CURLOPT_URL, $url);
        # curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1); pycurl hands the body to a function
        c.setopt(pycurl.WRITEFUNCTION, buffer.write)
        if body is not None:  # stable_token: POST a JSON body instead of a GET
            c.setopt(pycurl.POSTFIELDS, body)
            c.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json"])
        # curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, FALSE); and VERIFYHOST, FALSE: both ON
        # here. Off, they let anyone on the path pose as api.weixin.qq.com and collect the
        # AppSecret from the URL.
        c.setopt(pycurl.SSL_VERIFYPEER, 1)  # the certificate must chain to a trusted CA ...
        c.setopt(pycurl.SSL_VERIFYHOST, 2)  # ... and name the host we asked for
        c.setopt(pycurl.CAINFO, os.fsencode(cacert))  # trusted CAs (bytes: any path works)
        c.setopt(pycurl.SSLVERSION, pycurl.SSLVERSION_TLSv1_2)  # TLS 1.2 or newer: older is broken
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS)  # never send the secret over plain http
        c.setopt(pycurl.FOLLOWLOCATION, 0)  # a redirect is not WeChat's answer: report it
        if proxy is not None:  # else libcurl reads https_proxy and no_proxy, as curl does
            c.setopt(pycurl.PROXY, proxy)  # "": none. TLS to WeChat goes through a tunnel
            c.setopt(pycurl.NOPROXY, "")  # a proxy named here is used for every host
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
            raise _transport_error(c, error, url, cacert, timeout, buffer, proxy) from None
        output = buffer.getvalue()
        return _Response(  # getinfo must be called before close
            status=c.getinfo(pycurl.RESPONSE_CODE),  # e.g. 200
            output=output,
            address=f"{c.getinfo(pycurl.PRIMARY_IP)}:{c.getinfo(pycurl.PRIMARY_PORT)}",
            timings=_timings(c),
        )
    finally:
        c.close()  # curl_close($ch);


def parse_token_response(status: int, output: bytes) -> AccessToken:
    """Turn WeChat's answer into an AccessToken, or raise the matching error."""
    if status != 200:  # a 5xx is the server's trouble and may pass; a 4xx will not
        raise ResponseError(
            f"HTTP {status} instead of 200",
            quoted=output,
            transient=500 <= status <= 599,
            hint=_PORTAL if 300 <= status <= 399 else "",  # WeChat's API never redirects
        )
    if not output.strip():
        raise ResponseError("empty response (HTTP 200 with no body)")
    try:
        jsoninfo = json.loads(output)  # $jsoninfo = json_decode($output, true);
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        page = _HTML.match(output) is not None
        raise ResponseError(
            "response is a web page, not JSON" if page else "response is not JSON",
            quoted=output,
            hint=_PORTAL if page else "",
        ) from None
    if not isinstance(jsoninfo, dict):
        raise ResponseError("response is not a JSON object", quoted=output)
    errcode = jsoninfo.get("errcode", 0)
    if errcode != 0:  # {"errcode":40013,"errmsg":"invalid appid"} comes with HTTP 200
        errmsg = jsoninfo.get("errmsg", "")
        if not _whole_number(errcode) or not isinstance(errmsg, str):
            raise ResponseError("malformed error answer", quoted=output)
        raise WeChatAPIError(errcode, errmsg)
    access_token = jsoninfo.get("access_token")  # $access_token = $jsoninfo["access_token"];
    expires_in = jsoninfo.get("expires_in")
    if not isinstance(access_token, str) or not _TOKEN.fullmatch(access_token):
        raise ResponseError("no usable access_token in the response", quoted=output)
    if not _whole_number(expires_in) or expires_in <= 0:
        raise ResponseError("no usable expires_in in the response", quoted=output)
    return AccessToken(access_token, min(expires_in, MAX_EXPIRES_IN))  # 10**400 is not a lifetime


# --- What the port uses: the request's limits, the answer's shape --------------------

CONNECT_TIMEOUT = 5.0  # seconds to connect; WeChat answers in milliseconds when reachable
MAX_TIMEOUT = 3600  # seconds: bounded, whatever the configuration says
MAX_BODY = 64 * 1024  # a token answer is ~200 bytes; anything this big is not WeChat
MAX_EXPIRES_IN = 86400  # seconds: WeChat says 7200; no lifetime over a day is trusted
MAX_CA_BUNDLE = 4 * 2**20  # bytes: certifi's bundle is about 300 KB


# Records are collections.namedtuple: typing.NamedTuple would cost every run the import
# of typing. The annotations give mypy the types of the fields.
class AccessToken(namedtuple("AccessToken", "access_token expires_in")):
    __slots__ = ()
    access_token: str
    expires_in: int  # seconds, counted from when WeChat answered


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


class _Response(namedtuple("_Response", "status output address timings")):
    __slots__ = ()
    status: int
    output: bytes  # the body, as PHP's curl_exec() returns it
    address: str  # the server's IP and port, as libcurl connected to it
    timings: str  # libcurl's own measurements, for -v


class _CappedBuffer:
    """A bytes buffer for the response body, like io.BytesIO, that stops at MAX_BODY bytes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.too_large = False

    def write(self, chunk: bytes) -> int | None:
        if len(self.data) + len(chunk) > MAX_BODY:
            self.too_large = True
            return 0  # taking fewer bytes than given makes libcurl abort the transfer
        self.data += chunk
        return None  # None: all of it taken

    def getvalue(self) -> bytes:
        return bytes(self.data)


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


# A web page where WeChat's JSON should be: a hotel's or office's login page, or a proxy's.
_HTML = re.compile(rb"\s*<(!doctype html|html|head|body|meta|title|script)\b", re.I)
_PORTAL = (
    "a Wi-Fi or office login page (captive portal) or a proxy answered instead of WeChat: "
    "log in with a browser on this machine, or set the proxy this network needs "
    "(https_proxy, or proxy in config.ini)"
)
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII: safe to print and store


def _whole_number(value: object) -> TypeGuard[int]:
    """An int from JSON; not a bool, which Python counts as an int."""
    return isinstance(value, int) and not isinstance(value, bool)


def _certifi_bundle() -> str:
    try:
        import certifi  # imported only when a request is made (see _http_request)
    except ImportError as error:
        raise _missing("certifi", error) from None
    return certifi.where()


def _missing(package: str, error: ImportError) -> ConfigError:
    """pycurl or certifi cannot be imported: one line that says how to install it."""
    return ConfigError(
        f"{package} cannot be imported ({error}); install it: python -m pip install {package}",
        hint="a fetch needs pycurl and certifi (pip install -r requirements.txt); "
        "a cached token needs neither",
    )


__all__ = [
    "API_BASE",
    "API_BASES",
    "BACKUP_API_BASE",
    "AccessToken",
    "ConfigError",
    "FetchTokenError",
    "ResponseError",
    "TLSError",
    "TokenCache",
    "TransportError",
    "WeChatAPIError",
    "get_access_token",
    "main",
]


# --- Errors: one class per exit code -------------------------------------------------

EXIT_OK, EXIT_WECHAT, EXIT_USAGE, EXIT_TRANSPORT = 0, 1, 2, 3
EXIT_INTERNAL, EXIT_OUTPUT = 70, 74  # sysexits.h: EX_SOFTWARE (a bug), EX_IOERR
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell shows for `... | head -c0`


class FetchTokenError(Exception):
    """Base class of every error this module raises on purpose.

    `hint` says what to do next. `quoted` is text from outside (a server's answer), kept
    whole so that scrub() can mask the AppSecret in it before it is cut to an excerpt.
    """

    exit_code = EXIT_TRANSPORT
    hint = "check this machine's network, then try again"

    def __init__(self, message: str, *, hint: str = "", quoted: bytes | None = None) -> None:
        super().__init__(message)
        self.hint = hint or self.hint
        self.quoted = None if quoted is None else quoted.decode("utf-8", errors="replace")

    def __str__(self) -> str:
        message = str(self.args[0]) if self.args else ""
        return message if self.quoted is None else f"{message}: {_excerpt(self.quoted)}"

    def scrub(self, secret: str) -> None:
        """Mask the AppSecret in all this error shows; the excerpt is cut only afterwards."""
        self.args = tuple(clean(str(arg), secret) for arg in self.args)
        self.hint = clean(self.hint, secret)
        if self.quoted is not None:
            self.quoted = redact(self.quoted, secret)


class ConfigError(FetchTokenError):
    """Bad command line or configuration, found before any connection is made."""

    exit_code = EXIT_USAGE
    hint = "see --help, and config.ini.example for the settings and their values"


class WeChatAPIError(FetchTokenError):
    """WeChat answered, with an errcode instead of a token."""

    exit_code = EXIT_WECHAT

    def __init__(self, errcode: int, errmsg: str) -> None:
        message = f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}"
        super().__init__(message, hint=hint_for(errcode, errmsg))
        self.errcode = errcode
        self.errmsg = errmsg

    def scrub(self, secret: str) -> None:
        super().scrub(secret)
        self.errmsg = clean(self.errmsg, secret)


class TransportError(FetchTokenError):
    """No usable answer: cannot connect, timed out, connection cut, ..."""

    hint = (
        "check that this machine reaches WeChat (DNS, firewall, proxy); "
        "if it usually does, try again in a minute"
    )

    def __init__(
        self, message: str, *, transient: bool = False, hint: str = "", quoted: bytes | None = None
    ) -> None:
        super().__init__(message, hint=hint, quoted=quoted)
        self.transient = transient  # a failure that can pass: worth another attempt


class TLSError(TransportError):
    """The server's certificate failed verification: nothing was sent to it."""

    hint = (
        "if a corporate proxy re-signs TLS, give its CA with --cacert; otherwise something "
        "is posing as WeChat: verification stays on, on purpose"
    )


class ResponseError(TransportError):
    """The server answered, but not with HTTP 200 and a token in JSON."""

    hint = (
        "this is not WeChat's API answering: check --api-base, and whether a proxy or a "
        "Wi-Fi login page is in the way"
    )


class _OutputError(FetchTokenError):
    """stdout cannot take the result: closed, full, or broken."""

    exit_code = EXIT_OUTPUT
    hint = "give the command a stdout that can be written, e.g. TOKEN=$(python fetch_token.py)"


class _BrokenPipe(_OutputError):
    exit_code = EXIT_BROKEN_PIPE
    hint = "the program reading this command's output stopped before the token arrived"


def _excerpt(text: str, limit: int = 80) -> str:
    """The start of a text from outside, quoted, for a message. The AppSecret is masked
    in the whole text before this cuts it (FetchTokenError.scrub)."""
    if not text:
        return "(empty body)"
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _transport_error(
    c: pycurl.Curl,
    error: pycurl.error,
    url: str,
    cacert: str,
    timeout: float,
    buffer: _CappedBuffer,
    proxy: str | None,
) -> FetchTokenError:
    """Translate libcurl's error into one the user can act on."""
    import pycurl

    code, message = error.args[0], str(error.args[-1])
    host = _host(url)
    in_use = _proxy_in_use(proxy, os.environ)
    if in_use is not None:  # libcurl may quote the proxy's URL, password and all
        message = _proxy_password_masked(message, in_use[0])
    # The proxy's answer to CONNECT: 0 if it gave none, 2xx if it opened the tunnel.
    tunnel = c.getinfo(pycurl.HTTP_CONNECTCODE)
    if in_use is not None and not 200 <= tunnel <= 299 and code != pycurl.E_URL_MALFORMAT:
        target = url.split("/")[2]  # host:port, as the proxy was asked for it
        timed_out = code == pycurl.E_OPERATION_TIMEDOUT
        return _proxy_error(_proxy_shown(in_use[0]), target, tunnel, message, timeout, timed_out)
    if buffer.too_large:
        return ResponseError(f"response larger than {MAX_BODY // 1024} KiB from {host}: refused")
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        problem, hint = _tls_problem(c, host, cacert, message)
        return TLSError(problem + "; nothing was sent", hint=hint)
    if code == pycurl.E_SSL_CONNECT_ERROR:
        return TLSError(f"TLS handshake with {host} failed: {message}")
    if code == pycurl.E_URL_MALFORMAT:  # Python accepted it, libcurl does not
        return ConfigError(
            f"libcurl cannot use the URL {url.partition('?')[0]}: {message}",
            hint="write the API base like https://api.weixin.qq.com",
        )
    if code == pycurl.E_SSL_CACERT_BADFILE:
        return ConfigError(
            f"cannot use CA bundle {cacert}: {message}",
            hint="give a PEM file of CA certificates, or leave --cacert out to use certifi's",
        )
    # The rest may pass: a retry, perhaps on the backup domain, can succeed.
    if code in (pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR):
        return TransportError(f"the answer from {host} was cut off: {message}", transient=True)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return TransportError(
            f"no answer from {host} within {round(timeout, 2):g} s: {message}", transient=True
        )
    can_pass = (
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_GOT_NOTHING,  # the connection closed with no answer at all
        pycurl.E_SEND_ERROR,
    )
    check = {
        pycurl.E_COULDNT_RESOLVE_HOST: f"check this machine's DNS (getent hosts {host})",
        pycurl.E_COULDNT_CONNECT: f"check the route and firewall from this machine to {host}",
    }
    return TransportError(
        f"request to {host} failed: {message} (curl error {code})",
        transient=code in can_pass,
        hint=f"{check[code]}; where the web is reached only through a proxy, set "
        "https_proxy, or proxy in config.ini"
        if code in check
        else "",
    )


def _proxy_error(
    shown: str, where: str, answer: int, message: str, timeout: float, timed_out: bool
) -> TransportError:
    """The proxy could not be reached, did not answer, or would not open a tunnel to
    `where`. Only a 5xx is retried: the proxy could not reach WeChat, its backup may do."""
    if answer == 407:
        return TransportError(
            f"the proxy {shown} wants a user and password (HTTP 407) to reach {where}",
            hint="write them in the proxy's URL, http://user:password@host:port; if they are "
            "there, they are not the right ones",
        )
    if 300 <= answer <= 399:  # a redirect to a login page, most likely
        return TransportError(
            f"the proxy {shown} answered HTTP {answer} instead of opening a tunnel to {where}",
            hint=_PORTAL,
        )
    if answer:  # 403: not allowed; 502 and the like: the proxy could not reach WeChat
        return TransportError(
            f"the proxy {shown} refused the tunnel to {where}: HTTP {answer}",
            transient=answer >= 500,
            hint=f"ask the proxy's administrator to allow {where}, or use another proxy "
            "(--no-proxy for none)",
        )
    if timed_out:
        return TransportError(
            f"no answer from the proxy {shown} within {round(timeout, 2):g} s: {message}",
            hint="check the proxy's address and port, and that it speaks HTTP (or the scheme "
            "in its URL); --no-proxy ignores https_proxy",
        )
    return TransportError(
        f"cannot connect to the proxy {shown}: {message}",
        hint="check the proxy's address and that it runs; --no-proxy ignores https_proxy",
    )


def _proxy_in_use(proxy: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The URL of the proxy libcurl will use, and where it was set; None for none."""
    if proxy is None:  # libcurl's own lookup, in its order (no_proxy may exempt a host)
        exempt = environ.get("no_proxy") or environ.get("NO_PROXY")
        unless = "; not for the hosts in no_proxy" if exempt else ""
        for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            if environ.get(name):
                return environ[name], f" ({name} in the environment{unless})"
        return None
    return (proxy, "") if proxy else None


def _proxy_shown(url: str) -> str:
    """A proxy's URL as messages show it, [scheme://][user:***@]host[:port]; a value that is
    not a proxy URL is not shown at all: where its password ends cannot be told."""
    if _matched_url(_PROXY_URL, url) is None:
        return "(a value that is not a proxy URL)"
    password = _proxy_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _proxy_password_masked(text: str, url: str) -> str:
    """`text` (libcurl's message, which may quote the proxy's URL) with the URL as shown,
    and the password masked like the AppSecret wherever it appears."""
    text = text.replace(url, _proxy_shown(url))
    password = _proxy_password(url)
    return redact(text, password).replace(password, "***") if password else text


def _proxy_password(url: str) -> str:
    """The password in a proxy URL, as typed: it may hold '@', '/' or ':', so it runs from
    the ':' after the user name to the last '@'. '' if there is none (or only a port)."""
    rest = url.partition("://")[2] or url
    userinfo, at, _ = rest.rpartition("@")
    _, colon, password = userinfo.partition(":") if at else rest.rpartition(":")
    if not colon or "]" in password or (not at and password.rstrip("/").isdigit()):
        return ""
    return password


def _host(url: str) -> str:
    """The host that a URL names: api.weixin.qq.com, 127.0.0.1, [::1]."""
    found = _HTTPS_URL.match(url)
    return found[1] if found else url


def _tls_problem(c: pycurl.Curl, host: str, cacert: str, message: str) -> tuple[str, str]:
    """Say which of the usual certificate failures this was, and what to do about it."""
    import pycurl

    result = c.getinfo(pycurl.SSL_VERIFYRESULT)  # OpenSSL's X509_V_ERR_* code
    clock = "check this machine's clock and time zone (date -u); if it is right, try later"
    if result == 10:
        return f"TLS: the certificate of {host} has expired", clock
    if result == 9:
        return f"TLS: the certificate of {host} is not valid yet", clock
    if result in (2, 18, 19, 20, 21):
        return f"TLS: the certificate of {host} is not from a CA in {cacert} (untrusted CA)", (
            "behind a corporate proxy that re-signs TLS, give its CA with --cacert; "
            "elsewhere, something is posing as WeChat: do not turn verification off"
        )
    if "subject name" in message or "host name" in message:
        return f"TLS: the certificate is not for {host} (wrong hostname)", (
            "check --api-base: it must name the host the certificate is for"
        )
    return f"TLS: the certificate of {host} failed verification: {message}", TLSError.hint


# --- What to do about each errcode ----------------------------------------------------

# Where WeChat's console shows each setting, as it names its pages (they moved: see the
# README's FAQ). A Mini Program's AppID and AppSecret stay on the older platform.
_CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
_KEYS = f"{_CONSOLE} → 开发密钥"
_MINI_PROGRAM = "a Mini Program's: 微信公众平台 → 管理 → 开发管理 → 开发设置"


HINTS = {
    -1: "WeChat is busy: wait a few seconds and try again",
    40001: (
        "the AppSecret is wrong, or another program fetched a newer token for this account: "
        f"check the AppSecret at {_KEYS}, and let one program fetch tokens for everyone"
    ),
    40002: "grant_type must be client_credential (a bug in the caller)",
    40013: f"check the AppID at {_CONSOLE} ({_MINI_PROGRAM})",
    40125: f"check or reset the AppSecret at {_KEYS} ({_MINI_PROGRAM})",
    40164: (
        f"add {{ip}} to the IP whitelist (API IP 白名单) at {_KEYS}; it must be this "
        "machine's public egress IP, not its local address, and takes a few minutes to apply"
    ),
    40243: f"the AppSecret is frozen: unfreeze it at {_KEYS} (takes about 10 minutes)",
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


# --- Redaction and sanitising: every message passes through clean() -----------------

SECRET_RUN = 8  # this many consecutive characters of the AppSecret are masked wherever seen


def clean(text: str, secret: str) -> str:
    """What every message goes through before it is shown: sanitised, then redacted.

    Sanitising changes no character an AppSecret can hold (it must be printable), so
    redaction still sees every run of it, and sees the text exactly as it will be shown.
    """
    return redact(sanitize(text), secret)


def sanitize(text: str) -> str:
    r"""Show what could act on a terminal as escapes (\x1b, \u202e, \U000e0041): control
    and format characters (bidi marks, zero-width and tag characters), line and paragraph
    separators, private-use, surrogate and unassigned code points, by Unicode category."""
    if text.isprintable():  # the usual case, and no import needed
        return text
    import unicodedata

    return "".join(
        ascii(char)[1:-1] if unicodedata.category(char) in _HIDDEN else char for char in text
    )


_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}  # shown as escapes; other spaces are fine


def redact(text: str, secret: str) -> str:
    """Replace every run of SECRET_RUN or more characters of the AppSecret with ***.

    The text is searched as it is, and as a URL, JSON, Python or HTML reader would decode
    it (%2F, \\u0026, \\/, \\\\, \\', &amp;, ... in any mix and letter case), so a run is
    found in whatever form a server echoes it. Give it whole texts: once a text is cut, a
    piece of the secret may be too short to recognise.
    """
    if len(secret) < SECRET_RUN:  # no run that long (and such a secret is refused: MIN_SECRET)
        return text
    if secret in _PLACEHOLDERS:  # config.ini.example's, refused: no secret, and named plainly
        return text
    size = SECRET_RUN
    pieces = {secret[i : i + size].translate(_FOLD) for i in range(len(secret) - size + 1)}
    runs: list[tuple[int, int]] = []  # (start, end) in `text` of each run found
    for chars, starts, ends in (_as_is(text), _decoded(text)):
        seen = "".join(chars).translate(_FOLD)
        for i in range(len(seen) - size + 1):
            if seen[i : i + size] in pieces:
                runs.append((starts[i], ends[i + size - 1]))
    shown: list[str] = []
    kept = 0
    for start, end in sorted(runs):  # overlapping runs merge into one ***
        if start > kept or not shown:
            shown += [text[kept:start], "***"]
        kept = max(kept, end)
    return "".join(shown) + text[kept:]


class _Fold(dict[int, str]):
    """A str.translate table to lower case, one character for one: a secret's É matches é,
    and İ, whose lower case is two characters, stays as it is (so positions still match)."""

    def __missing__(self, code: int) -> str:
        lower = chr(code).lower()
        self[code] = folded = lower if len(lower) == 1 else chr(code)
        return folded


_FOLD = _Fold()
_Chars = tuple[list[str], list[int], list[int]]  # characters, and where each came from


def _as_is(text: str) -> _Chars:
    return list(text), list(range(len(text))), list(range(1, len(text) + 1))


_ESCAPE = re.compile(
    r"(?P<url>(?:%[0-9A-Fa-f]{2})+)"  # %2F%C3%A9: UTF-8 bytes
    r"|\\u(?P<high>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<low>[dD][c-fC-F][0-9a-fA-F]{2})"  # JSON 😀
    r"|\\u(?P<u4>[0-9a-fA-F]{4})|\\U(?P<u8>[0-9a-fA-F]{8})|\\x(?P<x2>[0-9a-fA-F]{2})"
    r"|&#[xX](?P<hex>[0-9a-fA-F]{1,6});|&#(?P<dec>[0-9]{1,7});"  # HTML: &#x26; &#38;
    r"|\\(?P<plain>[\\/\"'])"  # \\ \/ \" \'
    r"|&(?P<entity>amp|lt|gt|quot|apos);"
)


_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _decoded(text: str) -> _Chars:
    """The characters of `text` with its escapes decoded, each with the span it came from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    done = 0
    for match in _ESCAPE.finditer(text):
        decoded = _unescape(match)
        if decoded is None:  # not a character (\U00110000): leave it as it is
            continue
        chars += text[done : match.start()]
        starts += range(done, match.start())
        ends += range(done + 1, match.start() + 1)
        position = match.start()
        for char, length in decoded:  # length: how many characters of `text` it took
            chars.append(char)
            starts.append(position)
            ends.append(position + length)
            position += length
        done = match.end()
    chars += text[done:]
    starts += range(done, len(text))
    ends += range(done + 1, len(text) + 1)
    return chars, starts, ends


def _unescape(match: re.Match[str]) -> list[tuple[str, int]] | None:
    """What one escape stands for: (character, length of its escape) for each character."""
    group = match.lastgroup or ""
    if group == "url":  # each character takes 3 text characters per UTF-8 byte
        data = bytes.fromhex(match["url"].replace("%", ""))
        return [
            (char, 3 * len(char.encode(errors="surrogateescape")))
            for char in data.decode(errors="surrogateescape")
        ]
    if group == "low":  # a JSON surrogate pair, \ud83d\ude00: one character
        pair = chr(int(match["high"], 16)) + chr(int(match["low"], 16))
        return [(pair.encode("utf-16", "surrogatepass").decode("utf-16"), 12)]
    if group == "plain":
        return [(match["plain"], 2)]
    if group == "entity":
        return [(_ENTITIES[match["entity"]], len(match[0]))]
    number = int(match[group], 10 if group == "dec" else 16)
    return [(chr(number), len(match[0]))] if number <= 0x10FFFF else None


# --- Retries and failover: only for failures that can pass ----------------------------

BACKUP_API_BASE = "https://api2.weixin.qq.com"  # WeChat's disaster-recovery domain
API_BASES = (API_BASE, BACKUP_API_BASE)  # tried in turn, one attempt each
DEFAULT_RETRIES = 2  # extra attempts, only after failures that can pass
MAX_RETRIES = 5
FIRST_WAIT = 0.5  # seconds before the first retry; doubled before each next one
MIN_ATTEMPT = 0.1  # seconds: an attempt with less time than this left is not started
OWN_WORK = 0.5  # seconds a run may spend besides its attempts and waits: start, read, print


def with_retries(
    attempt: Callable[[str, float], AccessToken],
    api_bases: Sequence[str],
    retries: int = DEFAULT_RETRIES,
    log: Callable[[str], None] = lambda _text: None,
    sleep: Callable[[float], object] = time.sleep,
    deadline: float = float("inf"),
) -> AccessToken:
    """Return attempt(api_base, seconds_left), calling it at most 1 + `retries` times.

    Another attempt is made only after a failure that can pass (see worth_retrying),
    after a wait of 0.5 s, then 1 s, 2 s, ...; each attempt goes to the next base in
    `api_bases`, wrapping around, so a dead primary domain costs one timeout, no more.
    No attempt starts, and no wait is made, past `deadline` (time.monotonic()).
    """
    number = 0
    while True:
        api_base = api_bases[number % len(api_bases)]
        try:
            return attempt(api_base, deadline - time.monotonic())
        except FetchTokenError as error:
            wait = retry_wait(number)
            out_of_time = time.monotonic() + wait + MIN_ATTEMPT > deadline
            if number == retries or not worth_retrying(error) or out_of_time:
                if type(error) is TransportError and error.transient:  # no answer: say from where
                    tried = dict.fromkeys(api_bases[: number + 1])  # each one once, in order
                    error.hint = f"tried {' and '.join(tried)}: {error.hint}"
                raise
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


def time_bound(retries: int, timeout: float) -> float:
    """The bound on a whole run of the command, waiting for the cache lock included:
    the attempts and waits, plus OWN_WORK (32 s with the defaults)."""
    return longest_wait(retries, timeout) + OWN_WORK


# --- The cache: one token per AppID and endpoint, shared by every process -------------

CACHE_MARGIN = 300  # seconds: a cached token with less left than this is not reused
LOCK_POLL = 0.02  # seconds between looks at a cache lock held by another process
HANDOVER = 0.1  # seconds a lock holder keeps to leave its news for the processes waiting
MAX_FILE = 64 * 1024  # bytes: the most read from a config or cache file


class CacheEntry(
    namedtuple(
        "CacheEntry", "appid endpoint api_base secret_sha256 access_token expires_in expires_at"
    )
):
    """What the cache file holds: the token, and what it is valid for."""

    __slots__ = ()

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
    if not margin < left <= entry.expires_in:
        return f"it has {max(left, 0):.0f} s left, and {margin:.0f} s is the margin"
    return ""


def secret_fingerprint(secret: str) -> str:
    """A one-way fingerprint of the AppSecret: enough to notice it changed, not to recover it."""
    # Imported here, not at the top: hashlib loads Python's own copy of OpenSSL (about
    # 2 ms and 4 MiB), which only the cache needs.
    import hashlib

    data = secret.encode(errors="surrogateescape")  # any str: the check on it comes later
    return hashlib.sha256(b"fetch_token cache:" + data).hexdigest()


def cached_access_token(
    settings: Settings,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    started: float | None = None,
    refused: str | None = None,
) -> tuple[AccessToken, bool]:
    """The cached token while it is good, else a new one, stored for the next caller.

    Returns the token (with the time it has left) and whether it came from the cache.
    The whole "read; if stale, fetch and write" runs under a lock, so processes
    started together make one request and print one token. The whole run, waiting
    for the lock included, ends within time_bound(retries, timeout) of `started`
    (time.monotonic(); default: now).

    `refused`: a token an API call refused (40001, 42001, 40014). It is replaced once:
    if the cache still holds it, or nothing good, a new token is fetched; if the cache
    holds another good token, another process has replaced it already, and that is used.
    """
    bound = time_bound(settings.retries, settings.timeout)
    deadline = (started or time.monotonic()) + bound
    path = settings.cache_file
    if path is None:  # --no-cache
        return _fetch(settings, log, deadline), False
    wanted = _wanted(settings, time.time())
    # Who may share a failure: the same request, by the same way (CA bundle, proxy).
    way = settings.proxy and _proxy_shown(settings.proxy)  # None: the environment's
    key = f"{_request_key(wanted)} {settings.cacert or ''} {way!r}"
    since = time.time()  # a failure noted after this is news to this run
    lock = _lock(path, deadline, key, since, log)
    try:
        now = time.time()
        if settings.force_refresh:
            log(f"cache: --force-refresh, not reading {path}")
        else:
            entry = _read_cache(path, log)
            why_not = reusable(entry, wanted, now) if entry else ""
            held = entry.access_token if entry else ""
            if entry and not why_not and redact(held, settings.secret) != held:
                why_not = "its token holds a piece of the AppSecret"
            if entry and not why_not and entry.access_token == refused:
                why_not = "it is the token that was refused"
            if entry and not why_not:
                left = int(entry.expires_at - now)  # whole seconds, as --json says it too
                log(f"cache: token from {path}, valid for {left} s more")
                return AccessToken(entry.access_token, left), True
            if why_not:
                log(f"cache: not using the token in {path}: {why_not}")
        failure = _noted_failure(lock, key, since)
        if failure:  # another process asked while this one waited: do not ask again
            raise failure

        def note(error: FetchTokenError | None, state: str) -> None:
            _leave_note(lock, key, state, error, deadline)

        note(None, "fetching")
        try:  # stop asking a moment early, to leave the news before the waiters give up
            token = _fetch(settings, log, deadline - HANDOVER, note)
        except FetchTokenError as error:
            note(error, "failed")
            raise
        if refused is not None and token.access_token == refused:  # stable_token does this
            warn(
                "WeChat handed back the very token that was refused; not forcing a refresh on "
                "its own: if that token leaked, run with --force-refresh"
            )
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
        note(None, "")  # no news: the token is in the cache
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


def _fetch(
    settings: Settings,
    log: Callable[[str], None],
    deadline: float,
    note: Callable[[FetchTokenError, str], None] = lambda _error, _state: None,
) -> AccessToken:
    """A new token from WeChat, with the retries and failover that settings allow.
    `note` hears of each failed attempt, for the processes waiting for the cache."""

    def attempt(api_base: str, seconds_left: float) -> AccessToken:
        try:
            return get_access_token(
                settings.appid,
                settings.secret,
                api_base=api_base,
                stable=settings.stable,
                force_refresh=settings.force_refresh,
                cacert=settings.cacert,
                timeout=max(MIN_ATTEMPT, min(settings.timeout, seconds_left)),
                proxy=settings.proxy,
                log=log,
            )
        except FetchTokenError as error:
            note(error, "fetching")
            raise

    return with_retries(attempt, settings.api_bases, settings.retries, log, deadline=deadline)


_CACHE_WAYS_OUT = "choose another with --cache-file, or run with --no-cache"


def _lock(
    path: str, deadline: float, key: str, since: float, log: Callable[[str], None]
) -> int | None:
    """Lock the cache (on PATH.lock, created 0600); None where locking does not exist.

    Waits for another process that holds the lock until `deadline`, then gives up,
    saying what that process was doing, from the note it leaves in the lock file.
    """
    try:
        _refuse_odd_file(path, "the cache file", hint=_CACHE_WAYS_OUT)
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)  # 0700 if new
        import fcntl  # POSIX only

        flags = os.O_RDWR | os.O_CREAT | _NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        lock = os.open(path + ".lock", flags, 0o600)  # written to: never through a link
    except ImportError:
        log("cache: no file locking on this system (no fcntl): using the cache unlocked")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot use the cache {path}: {error.filename}: {error.strerror}",
            hint=_CACHE_WAYS_OUT,
        ) from None
    try:
        _refuse_odd_file(path + ".lock", "the cache's lock file", os.fstat(lock), _CACHE_WAYS_OUT)
        waited = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return lock
            except BlockingIOError:  # another process is fetching: wait for its token
                if not waited:
                    log(f"cache: another process holds {path}.lock: waiting for its token")
                    waited = True
                if time.monotonic() > deadline:
                    failure = _noted_failure(lock, key, since) or _gave_up(lock, key, path)
                    raise failure from None
                time.sleep(LOCK_POLL)
            except OSError as error:  # e.g. a network file system without locks
                log(f"cache: cannot lock {path}.lock ({error.strerror}): using the cache unlocked")
                os.close(lock)
                return None
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(lock)
        raise


def _request_key(wanted: CacheEntry) -> str:
    """Which request a noted failure was for: only the same request may share it."""
    return " ".join((wanted.appid, wanted.endpoint, wanted.api_base, wanted.secret_sha256))


# The lock file holds a short note from the process that holds the lock, for those that
# wait: "fetching" (since when, until when, and the last failed attempt), or "failed".
def _leave_note(
    lock: int | None, key: str, state: str, error: FetchTokenError | None, deadline: float
) -> None:
    """Write this run's state in the lock file; a courtesy that never fails the run."""
    if lock is None:
        return
    note = b""
    if state:
        until = time.time() + deadline - time.monotonic()
        record: dict[str, object] = {"at": time.time(), "key": key, "state": state, "until": until}
        if error is not None:
            record.update(exit_code=error.exit_code, message=str(error)[:1000], hint=error.hint)
            if isinstance(error, WeChatAPIError):
                record.update(errcode=error.errcode, errmsg=error.errmsg[:1000])
        note = json.dumps(record).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(lock, 0)
        os.pwrite(lock, note, 0)


def _read_note(lock: int | None, key: str) -> dict[str, object]:
    """The note in the lock file, if it is one of ours and for this request; else {}."""
    if lock is None:
        return {}
    try:
        note = json.loads(os.pread(lock, 8 * 1024, 0) or b"{}")
    except (OSError, ValueError, RecursionError):
        return {}  # being written, or not ours
    return note if isinstance(note, dict) and note.get("key") == key else {}


def _noted_failure(lock: int | None, key: str, since: float) -> FetchTokenError | None:
    """The failure another process noted for the same request after `since`, if any."""
    note = _read_note(lock, key)
    at, code, message = note.get("at"), note.get("exit_code"), note.get("message")
    if note.get("state") != "failed" or not (isinstance(at, float) and since <= at <= time.time()):
        return None  # no failure, or old news from before this run
    if not (_whole_number(code) and code in (EXIT_WECHAT, EXIT_USAGE, EXIT_TRANSPORT)):
        return None
    if not isinstance(message, str):
        return None
    errcode, errmsg, hint = note.get("errcode"), note.get("errmsg"), note.get("hint")
    error = (
        WeChatAPIError(errcode, errmsg)
        if _whole_number(errcode) and isinstance(errmsg, str)
        else TransportError(message, hint=hint if isinstance(hint, str) else "")
    )
    error.exit_code = code
    error.args = (f"{error} (another process got this answer while this one waited for it)",)
    return error


def _gave_up(lock: int, key: str, path: str) -> TransportError:
    """This run's time is up, and the process holding the lock is still at it."""
    note = _read_note(lock, key)
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


def _read_cache(path: str, log: Callable[[str], None]) -> CacheEntry | None:
    """The entry in the cache file; None, with a note, if there is none or it is damaged."""
    try:
        data = json.loads(_read_small_file(path, "the cache file", _CACHE_WAYS_OUT)[0])
        entry = CacheEntry(**data)  # TypeError: missing or unknown fields
    except FileNotFoundError:
        log(f"cache: nothing in {path} yet")
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read the cache {path}: {error.strerror}", hint=_CACHE_WAYS_OUT
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
        and _whole_number(entry.expires_in)
        and 0 < entry.expires_in <= MAX_EXPIRES_IN
        and isinstance(entry.expires_at, (int, float))
        and 0 <= entry.expires_at < 1e12  # a Unix time; also false for nan and inf
        and bool(_TOKEN.fullmatch(entry.access_token))
    )


def _write_cache(path: str, entry: CacheEntry) -> None:
    """Replace the cache file in one step: readers see the old entry or the new, never half."""
    import tempfile  # only when a token is stored: a cache hit does not pay for it

    folder = os.path.dirname(path) or "."
    with _signals_held():  # Ctrl-C here takes effect once the new file is in place
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".fetch_token-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(entry._asdict(), file)
                file.flush()
                os.fsync(file.fileno())  # on disk before it takes the old entry's place
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back Ctrl-C and kill signals for a moment; they take effect at the end."""
    import signal  # only when a token is stored: a cache hit does not pay for its enums

    held = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)  # POSIX: never wait


def _refuse_odd_file(
    path: str, what: str, info: os.stat_result | None = None, hint: str = ""
) -> None:
    """Refuse a FIFO, device or folder where a small regular file belongs: reading one
    would block, or never end. A file that does not exist yet is fine."""
    if info is None:
        try:
            info = os.stat(path)
        except (OSError, ValueError):  # missing (fine), or unusable: open() will say
            return
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{what} {path} is {kind}", hint=hint or "point it at a regular file")
    if info.st_size > MAX_FILE:
        raise ConfigError(
            f"{what} {path} is larger than {MAX_FILE // 1024} KiB: not ours",
            hint=hint or "point it at the right file",
        )


def _read_small_file(path: str, what: str, hint: str = "") -> tuple[bytes, int]:
    """The bytes of a small regular file, and its mode; never blocks, never reads much."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        _refuse_odd_file(path, what, info, hint)
        return os.read(fd, MAX_FILE + 1)[:MAX_FILE], info.st_mode
    finally:
        os.close(fd)


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


# --- The same cache for Python programs: one token for every process and thread -------


class TokenCache:
    """The command's cached token, for Python programs: web workers, task queues, scripts.

        tokens = TokenCache(appid, secret)       # the command's defaults
        token = tokens.get()                     # AccessToken(access_token, expires_in)
        token = tokens.replace(refused)          # after an API call said 40001/42001/40014

    It shares the command's cache file, lock and rules, so the command, this process's
    threads and every other process on the machine use one token, and one fetch renews it.
    get() keeps the token in memory until the cache margin: a warm get() reads no file.
    Nothing is printed and no signal handler is changed; errors are this module's
    exceptions, with the AppSecret masked, and `log` hears what `-v` would print.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        stable: bool = False,
        cache_file: str | None = None,
        api_bases: Sequence[str] = API_BASES,
        cacert: str | None = None,
        proxy: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import threading  # only programs that use this class pay for it

        _credential((appid, "appid"), "appid", "")
        _credential((secret, "secret"), "appsecret", "")
        if not (0 < timeout <= MAX_TIMEOUT and 0 <= retries <= MAX_RETRIES):
            raise ConfigError(
                f"timeout must be more than 0 and at most {MAX_TIMEOUT} s, retries 0 to "
                f"{MAX_RETRIES}",
                hint=f"the defaults are {DEFAULT_TIMEOUT:g} and {DEFAULT_RETRIES}",
            )
        self._settings = Settings(
            appid=appid,
            secret=secret,
            api_bases=tuple(_api_base(base, "api_bases") for base in api_bases),
            cacert=cacert,
            proxy=None if proxy is None else _proxy(proxy, "proxy"),
            timeout=timeout,
            retries=retries,
            stable=stable,
            force_refresh=False,
            cache_file=cache_file or default_cache_file(appid, stable, os.environ),
            warnings=[],
        )
        self._log = log or (lambda _text: None)
        # The token, the time.monotonic() until which it is used (its expiry less the
        # cache margin), and its expiry.
        self._memo = ("", 0.0, 0.0)
        self._lock = threading.Lock()  # threads that ask at once share one fetch

    def get(self) -> AccessToken:
        """The token: from memory while it has more than the margin left, else from the
        cache file, else fetched (and stored for every other caller)."""
        token, until, expiry = self._memo  # one read: another thread may replace it meanwhile
        now = time.monotonic()
        if now < until:
            return AccessToken(token, int(expiry - now))
        with self._lock:
            return self._renew(None)

    def replace(self, refused: str) -> AccessToken:
        """A new token in place of `refused`, once across threads and processes: if another
        caller has replaced it already, that token is returned and nothing is fetched."""
        with self._lock:
            token, until, expiry = self._memo
            now = time.monotonic()
            if token and token != refused and now < until:
                return AccessToken(token, int(expiry - now))
            return self._renew(refused)

    def _renew(self, refused: str | None) -> AccessToken:
        """From the cache file, or fetched: threads that waited here find the token that
        the first one stored, in the file, and make no request."""
        try:
            fresh, _cached = cached_access_token(
                self._settings, self._log, self._log, refused=refused
            )
        except FetchTokenError as error:
            error.scrub(self._settings.secret)
            raise
        expiry = time.monotonic() + fresh.expires_in
        margin = min(CACHE_MARGIN, fresh.expires_in / 2)  # as the cache file's
        self._memo = (fresh.access_token, expiry - margin, expiry)
        return fresh


# --- Configuration: flag, then environment, then config file, then default ------------

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
    "proxy",
)


MAX_CREDENTIAL = 128  # characters: an AppID has 18, an AppSecret 32
MIN_SECRET = 16  # characters: a shorter "secret" would have its letters masked everywhere


class Settings(
    namedtuple(
        "Settings",
        "appid secret api_bases cacert proxy timeout retries stable force_refresh cache_file "
        "warnings",
    )
):
    __slots__ = ()
    appid: str
    secret: str
    api_bases: tuple[str, ...]  # tried in turn: each retry moves to the next
    cacert: str | None  # None: certifi's bundle
    proxy: str | None  # None: libcurl reads https_proxy; "": no proxy
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
    try:
        return _settings(args, environ, path, section, warnings)
    except ConfigError as error:  # it may quote a value: mask any AppSecret given
        for secret in (environ.get("WECHAT_APPSECRET", ""), section.get("appsecret", "")):
            error.scrub(secret)
        raise


def _settings(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    path: str,
    section: dict[str, str],
    warnings: list[str],
) -> Settings:
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
        warnings.append(f"{appid_origin}: '{appid}' does not look like an AppID (wx + 16 hex)")

    if args.api_base:  # --api-base, given once or more
        listed = [(value, "--api-base") for value in args.api_base]
    elif "api_base" in section:  # a list: URLs separated by spaces, commas or lines
        values = section["api_base"].replace(",", " ").split() or [""]
        listed = [(value, f"{path}: api_base") for value in values]
    else:
        listed = []  # WeChat's own two, below

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
    proxy = "" if args.no_proxy else first("proxy", args.proxy)  # the environment: libcurl's
    return Settings(
        appid=appid,
        secret=secret,
        api_bases=tuple(_api_base(value, origin) for value, origin in listed) or API_BASES,
        cacert=_pick_cacert(args.cacert, section.get("ca_bundle"), path),
        proxy=_proxy(*proxy) if isinstance(proxy, tuple) else proxy,
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
    if _matched_url(_HTTPS_URL, value) is None:
        raise ConfigError(
            f"{origin}: '{value}' is not an https:// URL; refusing",
            hint="write it like https://api.weixin.qq.com, without a path",
        )
    return value


# https://, a host name or [IPv6] address, perhaps a port and a path; no query, no spaces
_HTTPS_URL = re.compile(
    r"https://([\w.-]+|\[[\w:.%]+\])(:(?P<port>\d{1,5}))?(/[^?#\s]*)?", re.A | re.I
)


_PLACEHOLDERS = ("your-appid-here", "your-appsecret-here")  # as config.ini.example has them


def _proxy(value: str, origin: str) -> str:
    """A proxy URL, as curl takes it: [scheme://][user:password@]host[:port]."""
    _check_plain(value, origin)
    if _matched_url(_PROXY_URL, value) is None:  # not echoed: see _proxy_shown
        raise ConfigError(
            f"{origin}: not a proxy URL; refusing",
            hint="write it like http://proxy.example.com:3128 or http://user:password@host:port; "
            "%-encode any '@', '/' or ':' in the password, and letters beyond ASCII",
        )
    return value


def _matched_url(pattern: re.Pattern[str], value: str) -> re.Match[str] | None:
    """`value` matched whole by a URL pattern: ASCII (pycurl takes nothing else), and its
    port, if it names one, from 1 to 65535. None if not."""
    url = pattern.fullmatch(value) if value.isascii() else None
    return url if url and 0 < int(url["port"] or 1) < 65536 else None


# http, https (TLS to the proxy too) or socks; the password may hold anything but / and @
_PROXY_URL = re.compile(
    r"((https?|socks(4a?|5h?))://)?([^/@\s]+@)?([\w.-]+|\[[\w:.%]+\])(:(?P<port>\d{1,5}))?/?",
    re.A | re.I,
)


def _credential(found: tuple[str, str] | None, key: str, path: str) -> tuple[str, str]:
    """The AppID or AppSecret: required, and a single word."""
    env, page = ("WECHAT_APPID", _CONSOLE) if key == "appid" else ("WECHAT_APPSECRET", _KEYS)
    if found is None:  # name the file looked for in full: cron's folder is not yours
        where = os.path.abspath(path)
        missing = "" if os.path.exists(where) else " (no such file; --config names another)"
        raise ConfigError(
            f"no {key}: set {env}, or {key} in [{CONFIG_SECTION}] of {where}{missing}",
            hint=f"copy config.ini.example to {where} and fill in the AppID and AppSecret",
        )
    value, origin = found
    if value in _PLACEHOLDERS:  # not echoed: as the secret, it would be masked
        raise ConfigError(
            f"{origin}: still the example's placeholder, not your {key}",
            hint=f"replace it with the {key} shown at {page}",
        )
    if len(value) > MAX_CREDENTIAL or (key == "appsecret" and len(value) < MIN_SECRET):
        raise ConfigError(
            f"{origin}: {len(value)} characters long; an AppID has 18, an AppSecret 32",
            hint=f"copy the {key} again from {page}",
        )
    if not _one_word(value):  # never echo the value: it may be the secret
        raise ConfigError(
            f"{origin}: contains whitespace or a non-printable character",
            hint=f"copy the {key} again from {page}: it is one word of letters and digits",
        )
    return found


def _one_word(value: str) -> bool:
    """No spaces, and nothing unprintable (tabs, control characters, undecodable bytes)."""
    return " " not in value and value.isprintable()


def _read_config(path: str, must_exist: bool) -> tuple[dict[str, str], list[str]]:
    """The [wechat] section of the config file, and warnings about the file."""
    parser = configparser.ConfigParser(interpolation=None)  # a '%' in a secret is literal
    try:
        data, mode = _read_small_file(path, "the config file")
        parser.read_string(data.decode("utf-8-sig"))  # -sig: Notepad's BOM is fine
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"{path}: no such file", hint="check the path given with --config"
            ) from None
        return {}, []
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read: {error.strerror}", hint="check the file's permissions"
        ) from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {_config_syntax(error)}", hint=_SEE_EXAMPLE) from None
    if not parser.has_section(CONFIG_SECTION):
        raise ConfigError(f"{path}: no [{CONFIG_SECTION}] section", hint=_SEE_EXAMPLE)
    section = dict(parser.items(CONFIG_SECTION))
    warnings = [
        f"{path}: unknown key '{key}' in [{CONFIG_SECTION}] ignored; "
        f"known keys: {', '.join(CONFIG_KEYS)}"
        for key in section
        if key not in CONFIG_KEYS
    ]
    if "appsecret" in section and os.name == "posix" and mode & 0o044:  # group or others
        warnings.append(f"{path} holds the AppSecret and other users can read it: chmod 600 {path}")
    return section, warnings


_SEE_EXAMPLE = "config.ini.example shows the layout: a [wechat] header, then key = value lines"


def _config_syntax(error: configparser.Error) -> str:
    """configparser's complaint, without echoing the line (it may hold the secret)."""
    if isinstance(error, configparser.MissingSectionHeaderError):  # a ParsingError too
        return f"line {error.lineno}: a [{CONFIG_SECTION}] header must come first"
    if isinstance(error, configparser.ParsingError):
        return f"line {error.errors[0][0]} is not 'key = value'"
    if isinstance(error, configparser.DuplicateOptionError):
        return f"line {error.lineno}: key '{error.option}' given twice"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: section [{error.section}] given twice"
    return "not a valid config file"


def _check_plain(value: str, origin: str) -> None:
    """Refuse empty and quoted values: configparser keeps quotes as part of the value."""
    if not value:
        raise ConfigError(f"{origin}: empty value", hint="give it a value, or leave it out")
    if value[0] in "\"'" or value[-1] in "\"'":
        raise ConfigError(
            f"{origin}: remove the quotes around the value",
            hint="config.ini takes values as written: appid = wx0123456789abcdef",
        )
    if "\0" in value:
        raise ConfigError(f"{origin}: contains a NUL character", hint="retype the value")


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
    hint = "give the path of a PEM file with the CA certificates to trust"
    if not os.path.isfile(path):  # also refuses FIFOs and devices: libcurl would block
        raise ConfigError(f"{origin}: CA bundle '{path}' not found, or not a file", hint=hint)
    if os.path.getsize(path) > MAX_CA_BUNDLE:  # loading it would take longer than a request
        raise ConfigError(
            f"{origin}: CA bundle '{path}' is larger than {MAX_CA_BUNDLE // 2**20} MiB", hint=hint
        )
    return path


def _retries(value: str, origin: str) -> int:
    if not (re.fullmatch(r"[0-9]{1,2}", value) and int(value) <= MAX_RETRIES):
        raise ConfigError(
            f"{origin}: '{value}' must be a whole number from 0 to {MAX_RETRIES}",
            hint=f"the default is {DEFAULT_RETRIES}",
        )
    return int(value)


def _yes_no(value: str, origin: str) -> bool:
    answers = configparser.ConfigParser.BOOLEAN_STATES  # yes/no, true/false, on/off, 1/0
    if value.lower() not in answers:
        raise ConfigError(f"{origin}: '{value}' must be yes or no", hint="the default is no")
    return answers[value.lower()]


def _seconds(value: str, origin: str) -> float:
    hint = f"the default is {DEFAULT_TIMEOUT:g}"
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{origin}: '{value}' is not a number of seconds", hint=hint) from None
    if not 0 < seconds <= MAX_TIMEOUT:  # also refuses nan and inf
        raise ConfigError(
            f"{origin}: '{value}' must be more than 0 and at most {MAX_TIMEOUT}", hint=hint
        )
    return seconds


# --- Command line: one place prints results and errors --------------------------------


class _HelpAsked(Exception):
    """--help or --version: the text is printed like any result (see main)."""


class _ArgumentParser(argparse.ArgumentParser):
    def _print_message(self, message: str, file: object = None) -> NoReturn:
        raise _HelpAsked(message)  # --help and --version: printed like any result

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message, hint="see --help")  # exit 2, printed like every error


_HELP_EPILOG = f"""\
output:
  stdout carries the token alone, or with --json one JSON object, so that
  TOKEN=$(python fetch_token.py) and TOKEN=$(fetch-token) work; messages go
  to stderr.

configuration:
  WECHAT_APPID and WECHAT_APPSECRET, else {DEFAULT_CONFIG} in the current folder
  (or --config PATH); config.ini.example shows every key. A proxy: --proxy, or
  proxy in the config; else https_proxy and no_proxy, as curl reads them.

exit codes:
  0 token printed, 1 WeChat answered an errcode, 2 usage or configuration,
  3 network, TLS, HTTP or response failure, 74 stdout cannot take the token,
  141 stdout closed early, 70 a bug in this tool. Ctrl-C: killed by SIGINT.
"""


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog="fetch-token" if _INSTALLED else "fetch_token.py",
        allow_abbrev=False,  # what is parsed is what was typed: --js is not --json
        description="Fetch a WeChat Official Account access_token over verified TLS.\n"
        "The AppSecret comes from WECHAT_APPSECRET or the config file, never from a\n"
        "flag: every user of the machine can read command lines.",
        epilog=_HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's lines as written
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
        help="where to keep the token (default: a file per AppID in ~/.cache/fetch_token)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write a cache")
    parser.add_argument(
        "--replace",
        metavar="TOKEN",
        help="TOKEN was refused by an API call (40001, 42001, 40014): fetch a new one, unless "
        "another process already has; - reads TOKEN from stdin",
    )
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help="send the request through this proxy, e.g. http://host:3128 (default: "
        "https_proxy in the environment)",
    )
    proxy.add_argument("--no-proxy", action="store_true", help="use no proxy, whatever is set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what happens")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the options only: a mistaken `--appsecret VALUE` must not be echoed.
        names = sorted({arg.split("=")[0] for arg in unknown if arg.startswith("-")})
        if any("secret" in name for name in names):
            raise ConfigError(
                "the AppSecret has no option",
                hint="set WECHAT_APPSECRET, or appsecret in config.ini: every user of this "
                "machine can read command lines",
            )
        raise ConfigError(
            f"unrecognized arguments: {' '.join(names) or '(values)'}", hint="see --help"
        )
    return args


class _Output:
    """The one place that prints: the result on stdout, messages on stderr, all cleaned."""

    def __init__(self, json_mode: bool, secret: str) -> None:
        self.json_mode = json_mode
        self.verbose = False
        self.secret = secret

    def _message(self, prefix: str, text: str) -> None:
        """One line on stderr. If stderr is closed or broken, the line is lost: it never
        goes to stdout, which carries the token alone."""
        stream = sys.stderr
        if stream is None:  # started with stderr closed
            return
        line = prefix + clean(text, self.secret) + "\n"
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:  # a console that cannot show 中文 or → gets \u escapes, not a traceback
            stream.write(line.encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except (OSError, ValueError):
            _discard(stream)

    def note(self, text: str) -> None:
        if self.verbose:
            self._message("* ", text)

    def warn(self, text: str) -> None:
        self._message("warning: ", text)

    def _result(self, fields: dict[str, str | int | bool] | str) -> None:
        """The token, or one JSON object in ASCII (valid whatever the console's encoding)."""
        if isinstance(fields, dict):
            line = json.dumps({k: self._clean(v) for k, v in fields.items()})
            if redact(line, self.secret) != line:  # escaping made a run of the secret
                masked = {k: v if isinstance(v, int) else "***" for k, v in fields.items()}
                line = json.dumps(masked)
        else:
            line = fields  # a token (printable ASCII, never a piece of the secret), or --help
        stream = sys.stdout
        try:
            if stream is None:
                raise _OutputError(_STDOUT_CLOSED)
            stream.write(line + "\n")
            stream.flush()  # a closed pipe shows up here, inside main(), not at exit
        except BrokenPipeError:  # the reader went away (`| head -c0`)
            _discard(stream)
            raise _BrokenPipe("stdout was closed before the output was written") from None
        except (OSError, ValueError) as error:  # a full disk, an I/O error, a closed file
            _discard(stream)
            reason = getattr(error, "strerror", None) or str(error)
            raise _OutputError(f"cannot write to stdout: {reason}") from None

    def _clean(self, value: str | int | bool) -> str | int | bool:
        return clean(value, self.secret) if isinstance(value, str) else value

    def help(self, text: str) -> int:
        self._result(text.rstrip("\n"))
        return EXIT_OK

    def success(self, token: AccessToken, cached: bool) -> int:
        if self.json_mode:
            expires_at = int(time.time()) + token.expires_in
            self._result({**token._asdict(), "expires_at": expires_at, "cached": cached})
        else:
            self._result(token.access_token)
        return EXIT_OK

    def failure(self, error: FetchTokenError) -> int:
        """Print the error and its hint; return the exit code, decided here and only here."""
        self._message("error: ", str(error))
        self._message("hint: ", error.hint)
        if self.json_mode and not isinstance(error, _OutputError):
            fields: dict[str, str | int | bool] = {"error": str(error), "hint": error.hint}
            if isinstance(error, WeChatAPIError):
                fields = {"errcode": error.errcode, "errmsg": error.errmsg, "hint": error.hint}
            try:
                self._result(fields)
            except _OutputError as output_error:
                return self.failure(output_error)
        return error.exit_code


_STDOUT_CLOSED = "stdout is closed: there is nowhere to print the token"


def _discard(stream: object) -> None:
    """After a failed write, point the stream at the null device, so that Python's own
    flush at exit cannot fail again and print a traceback of its own."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())  # type: ignore[attr-defined]
        os.close(null)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    started = time.monotonic()  # the run's time bound counts from here
    argv = sys.argv[1:] if argv is None else list(argv)
    # --json is looked for before parsing, so that a usage error is JSON too; abbreviations
    # are refused, so this agrees with what the parser decides.
    out = _Output("--json" in argv, os.environ.get("WECHAT_APPSECRET", ""))
    with _ended_by_signals():
        try:
            return out.success(*_run(argv, out, started))
        except _HelpAsked as asked:  # --help or --version, whatever else is given
            try:
                return out.help(str(asked))
            except FetchTokenError as error:
                return out.failure(error)
        except FetchTokenError as error:
            return out.failure(error)
        except Exception as error:  # a bug in this file: still one line, never a traceback
            return out.failure(_InternalError(f"internal error: {type(error).__name__}: {error}"))


def _run(argv: list[str], out: _Output, started: float) -> tuple[AccessToken, bool]:
    if sys.stdout is None:  # started with stdout closed: no request for a token to be lost
        raise _OutputError(_STDOUT_CLOSED)
    args = _parse_args(argv)
    out.json_mode, out.verbose = args.json, args.verbose
    settings = load_settings(args, os.environ)
    out.secret = settings.secret
    for warning in settings.warnings:
        out.warn(warning)
    refused = _refused_token(args.replace)
    return cached_access_token(settings, out.note, out.warn, started, refused)


def _refused_token(value: str | None) -> str | None:
    """--replace TOKEN, or --replace - to read it from stdin (out of sight of `ps`)."""
    if value == "-":
        value = sys.stdin.readline(8 * 1024).strip() if sys.stdin else ""
    if value is not None and not _TOKEN.fullmatch(value):
        raise ConfigError(
            "--replace: that is not an access_token (printable ASCII, no spaces)",
            hint="give the token that the API call refused, or - to read it from stdin",
        )
    return value


class _InternalError(FetchTokenError):
    exit_code = EXIT_INTERNAL
    hint = "this is a bug in fetch_token.py: please report it, with the command you ran"


@contextlib.contextmanager
def _ended_by_signals() -> Iterator[None]:
    """Let Ctrl-C end the command at once, at any moment, as it ends `cat` or `curl`.

    Python turns SIGINT into KeyboardInterrupt, which runs only between Python steps: not
    while libcurl connects or shakes hands, and a tool that catches it and exits 130 does
    not stop the shell loop that runs it. The default action ends the process on the spot,
    and the shell sees "killed by SIGINT". The kernel releases the cache lock, and the cache
    file is replaced in one step, so nothing is left half done. SIGTERM and SIGHUP already
    have that default. An ignored SIGINT (a background job) stays ignored.
    """
    before = _signal.getsignal(_signal.SIGINT)  # _signal, as at the top: no import time
    changed = before is _signal.default_int_handler
    if changed:
        try:
            _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        except ValueError:  # not the main thread: signals are not ours to set
            changed = False
    try:
        yield
    finally:
        if changed:
            _signal.signal(_signal.SIGINT, before)


if __name__ == "__main__":
    raise SystemExit(main())

"""The one HTTPS request, with pycurl: TLS verified, bounded in time and size, through a
proxy if one is set; libcurl's failures turned into errors a user can act on."""

from __future__ import annotations

import os
import re
from collections import namedtuple

from wechat_token.errors import (
    ConfigError,
    ProxyError,
    ResponseError,
    TLSError,
    TransportError,
    WeChatTokenError,
)
from wechat_token.messages import msg
from wechat_token.redact import redact

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pycurl

CONNECT_TIMEOUT = 5.0  # seconds to connect; WeChat answers in milliseconds when reachable
MAX_TIMEOUT = 3600  # seconds: bounded, whatever the configuration says
MAX_BODY = 64 * 1024  # a token answer is ~200 bytes; anything this big is not WeChat
USER_AGENT = "wechat-token (pycurl)"


class Response(namedtuple("Response", "status content_type output address timings")):
    __slots__ = ()
    status: int
    content_type: str  # the Content-Type header, "" if none
    output: bytes  # the body, as PHP's curl_exec() returns it
    address: str  # the server's IP and port, as libcurl connected to it
    timings: str  # libcurl's own measurements, for -v


def request(
    url: str, cacert: str, timeout: float, body: bytes | None = None, proxy: str | None = None
) -> Response:
    """GET `url` (or POST `body` as JSON) with pycurl, TLS verified, bounded in time and size.

    `proxy`: a proxy URL, "" for none, None to let libcurl read https_proxy and no_proxy.
    """
    # Imported here, not at the top: a caller that fails before the request (a
    # configuration error, say) should not pay the ~30 ms that loading libcurl costs.
    try:
        import pycurl
    except ImportError as error:  # not installed, or built for another libcurl
        raise missing("pycurl", error) from None

    buffer = _CappedBuffer()  # like io.BytesIO, but it refuses to grow past MAX_BODY
    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.WRITEFUNCTION, buffer.write)
        if body is not None:  # stable_token: POST a JSON body instead of a GET
            c.setopt(pycurl.POSTFIELDS, body)
            c.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json"])
        # Verification on, both halves (the PHP example turns them off, which lets anyone
        # on the path pose as api.weixin.qq.com and collect the AppSecret).
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
        # libcurl keeps control until the transfer ends, so a Python signal handler would
        # wait for the timeout. A progress callback hands control back to Python several
        # times a second, and an exception raised there stops the transfer at once.
        c.setopt(pycurl.NOPROGRESS, 0)
        c.setopt(pycurl.XFERINFOFUNCTION, _let_python_run)
        c.setopt(pycurl.USERAGENT, USER_AGENT)
        try:
            c.perform()
        except pycurl.error as error:
            raise _transport_error(c, error, url, cacert, timeout, buffer, proxy) from None
        return Response(  # getinfo must be called before close
            status=c.getinfo(pycurl.RESPONSE_CODE),  # e.g. 200
            content_type=c.getinfo(pycurl.CONTENT_TYPE) or "",
            output=buffer.getvalue(),
            address=f"{c.getinfo(pycurl.PRIMARY_IP)}:{c.getinfo(pycurl.PRIMARY_PORT)}",
            timings=_timings(c),
        )
    finally:
        c.close()


def certifi_bundle() -> str:
    try:
        import certifi  # imported only when a request is made (see request)
    except ImportError as error:
        raise missing("certifi", error) from None
    return certifi.where()


def missing(package: str, error: ImportError) -> ConfigError:
    """pycurl or certifi cannot be imported: one line that says how to install it."""
    command = f"python -m pip install {package}"  # typed as it is, in any language
    return ConfigError(
        msg("http.missing", package=package, error=error, command=command),
        hint=msg("http.missing_hint"),
    )


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
    """Progress callback: does nothing, but lets Python act on signals mid-transfer."""


def _timings(c: pycurl.Curl) -> str:
    """libcurl's timers, in ms, each counted from the start of the request."""
    import pycurl

    timers = {
        "dns": pycurl.NAMELOOKUP_TIME,
        "connect": pycurl.CONNECT_TIME,
        "tls": pycurl.APPCONNECT_TIME,
        "first_byte": pycurl.STARTTRANSFER_TIME,
        "total": pycurl.TOTAL_TIME,
    }
    return msg("http.timings", **{name: c.getinfo(info) * 1000 for name, info in timers.items()})


# --- libcurl's failures, as errors a user can act on -----------------------------------


def _transport_error(
    c: pycurl.Curl,
    error: pycurl.error,
    url: str,
    cacert: str,
    timeout: float,
    buffer: _CappedBuffer,
    proxy: str | None,
) -> WeChatTokenError:
    """Translate libcurl's error into one the user can act on."""
    import pycurl

    code, message = error.args[0], str(error.args[-1])
    host = host_of(url)
    in_use = proxy_in_use(proxy, os.environ)
    if in_use is not None:  # libcurl may quote the proxy's URL, password and all
        message = proxy_password_masked(message, in_use[0])
    # The proxy's answer to CONNECT: 0 if it gave none, 2xx if it opened the tunnel.
    tunnel = c.getinfo(pycurl.HTTP_CONNECTCODE)
    if in_use is not None and not 200 <= tunnel <= 299 and code != pycurl.E_URL_MALFORMAT:
        target = url.split("/")[2]  # host:port, as the proxy was asked for it
        timed_out = code == pycurl.E_OPERATION_TIMEDOUT
        return _proxy_error(proxy_shown(in_use[0]), target, tunnel, message, timeout, timed_out)
    if buffer.too_large:
        return ResponseError(msg("http.too_large", kib=MAX_BODY // 1024, host=host))
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        problem, hint = _tls_problem(c, message)
        return TLSError(msg(problem, host=host, cacert=cacert, message=message), hint=msg(hint))
    if code == pycurl.E_SSL_CONNECT_ERROR and "wrong version number" in message:
        # OpenSSL's words for an answer that is not TLS at all: plain http on that port
        return TLSError(
            msg("http.plain_http", host=host, message=message), hint=msg("http.plain_http_hint")
        )
    if code == pycurl.E_SSL_CONNECT_ERROR:
        return TLSError(msg("http.handshake", host=host, message=message))
    if code == pycurl.E_URL_MALFORMAT:  # Python accepted it, libcurl does not
        return ConfigError(
            msg("http.bad_url", url=url.partition("?")[0], message=message),
            hint=msg("http.bad_url_hint"),
        )
    if code == pycurl.E_SSL_CACERT_BADFILE:
        return ConfigError(
            msg("http.bad_cacert", cacert=cacert, message=message),
            hint=msg("http.bad_cacert_hint"),
        )
    if code == pycurl.E_OPERATION_TIMEDOUT and not c.getinfo(pycurl.APPCONNECT_TIME):
        # Not connected (TLS included) when the time ran out: the connect timeout's doing
        connect = round(min(timeout, CONNECT_TIMEOUT), 2)
        return TransportError(
            msg("http.no_connection", host=host, seconds=connect, message=message),
            transient=True,
        )
    return _network_error(int(code), message, host, timeout)


def _network_error(code: int, message: str, host: str, timeout: float) -> TransportError:
    """The failures that may pass: a retry, perhaps on the backup domain, can succeed."""
    import pycurl

    if code in (pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR):
        return TransportError(msg("http.cut_off", host=host, message=message), transient=True)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        seconds = round(timeout, 2)
        return TransportError(
            msg("http.no_answer", host=host, seconds=seconds, message=message), transient=True
        )
    can_pass = (
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_GOT_NOTHING,  # the connection closed with no answer at all
        pycurl.E_SEND_ERROR,
    )
    check = {
        pycurl.E_COULDNT_RESOLVE_HOST: "http.check_dns",
        pycurl.E_COULDNT_CONNECT: "http.check_route",
    }
    return TransportError(
        msg("http.failed", host=host, message=message, code=code),
        transient=code in can_pass,
        hint=msg(check[code], host=host) if code in check else "",
    )


def _tls_problem(c: pycurl.Curl, message: str) -> tuple[str, str]:
    """Which of the usual certificate failures this was, and what to do about it: the
    keys of the message ({host}, {cacert}, {message}) and of its hint."""
    import pycurl

    result = c.getinfo(pycurl.SSL_VERIFYRESULT)  # OpenSSL's X509_V_ERR_* code
    if result == 10:
        return "http.tls_expired", "http.clock_hint"
    if result == 9:
        return "http.tls_not_yet_valid", "http.clock_hint"
    if result in (2, 18, 19, 20, 21):
        return "http.tls_untrusted", "http.tls_untrusted_hint"
    if "subject name" in message or "host name" in message:
        return "http.tls_wrong_host", "http.tls_wrong_host_hint"
    return "http.tls_failed", "hint.tls"


def _proxy_error(
    shown: str, where: str, answer: int, message: str, timeout: float, timed_out: bool
) -> TransportError:
    """The proxy could not be reached, did not answer, or would not open a tunnel to
    `where`. Only a 5xx is retried: the proxy could not reach WeChat, its backup may do."""
    said = {"proxy": shown, "where": where, "answer": answer, "message": message}
    if answer == 407:
        return ProxyError(msg("http.proxy_407", **said), hint=msg("http.proxy_407_hint"))
    if 300 <= answer <= 399:  # a redirect to a login page, most likely
        return ProxyError(msg("http.proxy_redirect", **said), hint=msg("hint.portal"))
    if answer:  # 403: not allowed; 502 and the like: the proxy could not reach WeChat
        return ProxyError(
            msg("http.proxy_refused", **said),
            transient=answer >= 500,
            hint=msg("http.proxy_refused_hint", where=where),
        )
    if timed_out:
        return ProxyError(
            msg("http.proxy_timeout", seconds=round(timeout, 2), **said),
            hint=msg("http.proxy_timeout_hint"),
        )
    return ProxyError(msg("http.proxy_unreachable", **said), hint=msg("http.proxy_down_hint"))


# --- URLs: an API base, a proxy, and how a proxy is shown -------------------------------

# https://, a host name or [IPv6] address, perhaps a port and a path; no query, no spaces
HTTPS_URL = re.compile(
    r"https://([\w.-]+|\[[\w:.%]+\])(:(?P<port>\d{1,5}))?(/[^?#\s]*)?", re.A | re.I
)
# http, https (TLS to the proxy too) or socks; the password may hold anything but / and @
PROXY_URL = re.compile(
    r"((https?|socks(4a?|5h?))://)?([^/@\s]+@)?([\w.-]+|\[[\w:.%]+\])(:(?P<port>\d{1,5}))?/?",
    re.A | re.I,
)


def matched_url(pattern: re.Pattern[str], value: str) -> re.Match[str] | None:
    """`value` matched whole by a URL pattern: ASCII (pycurl takes nothing else), and its
    port, if it names one, from 1 to 65535. None if not."""
    url = pattern.fullmatch(value) if value.isascii() else None
    return url if url and 0 < int(url["port"] or 1) < 65536 else None


def checked_proxy(value: str, origin: str) -> str:
    """A proxy URL, as curl takes it: [scheme://][user:password@]host[:port]."""
    if matched_url(PROXY_URL, value) is None:  # not echoed: see proxy_shown
        raise ConfigError(msg("http.not_proxy", origin=origin), hint=msg("http.not_proxy_hint"))
    return value


def host_of(url: str) -> str:
    """The host that a URL names: api.weixin.qq.com, 127.0.0.1, [::1]."""
    found = HTTPS_URL.match(url)
    return found[1] if found else url


def proxy_in_use(proxy: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The URL of the proxy libcurl will use, and where it was set; None for none."""
    if proxy is None:  # libcurl's own lookup, in its order (no_proxy may exempt a host)
        exempt = environ.get("no_proxy") or environ.get("NO_PROXY")
        where = "http.proxy_env_exempt" if exempt else "http.proxy_env"
        for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            if environ.get(name):
                return environ[name], msg(where, name=name)
        return None
    return (proxy, "") if proxy else None


def proxy_shown(url: str) -> str:
    """A proxy's URL as messages show it, [scheme://][user:***@]host[:port]; a value that is
    not a proxy URL is not shown at all: where its password ends cannot be told."""
    if matched_url(PROXY_URL, url) is None:
        return msg("http.not_proxy_shown")
    password = _proxy_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def proxy_password_masked(text: str, url: str) -> str:
    """`text` (libcurl's message, which may quote the proxy's URL) with the URL as shown,
    and the password masked like the AppSecret wherever it appears."""
    text = text.replace(url, proxy_shown(url))
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

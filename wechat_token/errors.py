"""The errors the library raises, and the hint that each one carries.

The library raises these and never decides how a program ends: the command line maps
each class to its exit code (wechat_token.cli). Every message is safe to print: an
error's text has the AppSecret masked once scrub() has seen it, which the library does
before any error leaves it.
"""

from __future__ import annotations

import re

from wechat_token.redact import clean, redact


class WeChatTokenError(Exception):
    """Base class of every error this package raises on purpose.

    `hint` says what to do next. `quoted` is text from outside (a server's answer), kept
    whole so that scrub() can mask the AppSecret in it before it is cut to an excerpt.
    """

    hint = "check this machine's network, then try again"
    # What kind of failure, for a monitor (--json's "kind"): refused, busy, quota, config,
    # network, tls, proxy or response; "" for what is none of these (a bug, stdout closed).
    kind = ""

    def __init__(self, message: str, *, hint: str = "", quoted: bytes | None = None) -> None:
        super().__init__(message)
        self.hint = hint or self.hint
        self.quoted = None if quoted is None else quoted.decode("utf-8", errors="replace")

    def __str__(self) -> str:
        message = str(self.args[0]) if self.args else ""
        return message if self.quoted is None else f"{message}: {_excerpt(self.quoted)}"

    def scrub(self, secret: str) -> None:
        """Mask the AppSecret in all this error shows. The quoted text is masked whole,
        then cut to its excerpt, which joins the message (so str, repr and args agree),
        and the message is masked again: the excerpt's escapes may have made a new run."""
        if self.quoted is not None:
            message = str(self.args[0]) if self.args else ""
            self.args = (f"{message}: {_excerpt(redact(self.quoted, secret))}",)
            self.quoted = None
        self.args = tuple(clean(str(arg), secret) for arg in self.args)
        self.hint = clean(self.hint, secret)


class ConfigError(WeChatTokenError):
    """Bad command line or configuration, found before any connection is made."""

    hint = "see --help, and config.ini.example for the settings and their values"
    kind = "config"


class WeChatAPIError(WeChatTokenError):
    """WeChat answered, with an errcode instead of a token."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        message = f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}"
        super().__init__(message, hint=hint_for(errcode, errmsg))
        self.errcode = errcode
        self.errmsg = errmsg
        # -1 (after the retries) and 45011 (this minute's limit) are busy; 45009 is the
        # daily quota; any other, a refusal that asking again will not change
        self.kind = {-1: "busy", 45011: "busy", 45009: "quota"}.get(errcode, "refused")
        self.kept = 0  # seconds the cache keeps this answer for every caller; 0: its default

    def scrub(self, secret: str) -> None:
        super().scrub(secret)
        self.errmsg = clean(self.errmsg, secret)


class TransportError(WeChatTokenError):
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

    kind = "network"  # DNS, connect, timeout, a connection cut


class TLSError(TransportError):
    """The server's certificate failed verification: nothing was sent to it."""

    hint = (
        "if a corporate proxy re-signs TLS, give its CA with --cacert; otherwise something "
        "is posing as WeChat: verification stays on, on purpose"
    )
    kind = "tls"


class ProxyError(TransportError):
    """The proxy could not be reached, did not answer, or would not open the tunnel."""

    kind = "proxy"


class ResponseError(TransportError):
    """The server answered, but not with HTTP 200 and a token in JSON."""

    hint = (
        "this is not WeChat's API answering: check --api-base, and whether a proxy or a "
        "Wi-Fi login page is in the way"
    )
    kind = "response"

    def __init__(
        self, message: str, *, transient: bool = False, hint: str = "", quoted: bytes | None = None
    ) -> None:
        super().__init__(message, transient=transient, hint=hint, quoted=quoted)
        if transient:  # an HTTP 5xx, after the retries: the server is busy, or down
            self.kind = "busy"


def _excerpt(text: str, limit: int = 80) -> str:
    """The start of a text from outside, quoted, for a message. The AppSecret is masked
    in the whole text before this cuts it (WeChatTokenError.scrub)."""
    if not text:
        return "(empty body)"
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


# A web page where WeChat's JSON should be: a hotel's or office's login page, or a proxy's.
PORTAL = (
    "a Wi-Fi or office login page (captive portal) or a proxy answered instead of WeChat: "
    "log in with a browser on this machine, or set the proxy this network needs "
    "(https_proxy, or proxy in config.ini)"
)


# An HTTP 5xx, after the retries: WeChat's servers have bad minutes too, and so do proxies.
SERVER_TROUBLE = (
    "the server had trouble (WeChat's, or a proxy's on the way): try again in a minute; "
    "-v shows each attempt"
)


# --- What to do about each errcode ----------------------------------------------------

# Where WeChat's console shows each setting, as it names its pages (they moved: see
# docs/errcodes.md). A Mini Program's AppID and AppSecret stay on the older platform.
CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
KEYS = f"{CONSOLE} → 开发密钥"
_MINI_PROGRAM = "a Mini Program's: 微信公众平台 → 管理 → 开发管理 → 开发设置"


HINTS = {
    -1: "WeChat is busy: wait a few seconds and try again",
    40001: (
        "the AppSecret is wrong, or another program fetched a newer token for this account: "
        f"check the AppSecret at {KEYS}, and let one program fetch tokens for everyone"
    ),
    40002: "grant_type must be client_credential (a bug in the caller)",
    40013: f"check the AppID at {CONSOLE} ({_MINI_PROGRAM})",
    40125: f"check or reset the AppSecret at {KEYS} ({_MINI_PROGRAM})",
    40164: (
        f"add {{ip}} to the IP whitelist (API IP 白名单) at {KEYS} (the same pages for a 服务号); "
        "it must be this machine's public egress IP, not its local address; a range in CIDR "
        "form (203.0.113.0/24) covers egress addresses that change; it applies in minutes"
    ),
    40243: f"the AppSecret is frozen: unfreeze it at {KEYS} (takes about 10 minutes)",
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

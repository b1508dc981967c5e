"""The errors the library raises, and the hint that each one carries.

The library raises these and never decides how a program ends: the command line maps
each class to its exit code (wechat_token.cli). Every message is safe to print: an
error's text has the AppSecret masked once scrub() has seen it, which the library does
before any error leaves it.
"""

from __future__ import annotations

import re

from wechat_token.messages import msg
from wechat_token.redact import clean, redact


class WeChatTokenError(Exception):
    """Base class of every error this package raises on purpose.

    `hint` says what to do next. `quoted` is text from outside (a server's answer), kept
    whole so that scrub() can mask the AppSecret in it before it is cut to an excerpt.
    """

    hint_key = "hint.default"  # the messages key of the hint when none is given
    # What kind of failure, for a monitor (--json's "kind"): refused, busy, quota, config,
    # network, tls, proxy or response; "" for what is none of these (a bug, stdout closed).
    kind = ""

    def __init__(self, message: str, *, hint: str = "", quoted: bytes | None = None) -> None:
        super().__init__(message)
        self.hint = hint or msg(self.hint_key)
        self.quoted = None if quoted is None else quoted.decode("utf-8", errors="replace")

    def __str__(self) -> str:
        message = str(self.args[0]) if self.args else ""
        if self.quoted is None:
            return message
        return msg("quoted", message=message, excerpt=_excerpt(self.quoted))

    def scrub(self, secret: str) -> None:
        """Mask the AppSecret in all this error shows. The quoted text is masked whole,
        then cut to its excerpt, which joins the message (so str, repr and args agree),
        and the message is masked again: the excerpt's escapes may have made a new run."""
        if self.quoted is not None:
            message = str(self.args[0]) if self.args else ""
            excerpt = _excerpt(redact(self.quoted, secret))
            self.args = (msg("quoted", message=message, excerpt=excerpt),)
            self.quoted = None
        self.args = tuple(clean(str(arg), secret) for arg in self.args)
        self.hint = clean(self.hint, secret)


class ConfigError(WeChatTokenError):
    """Bad command line or configuration, found before any connection is made."""

    hint_key = "hint.config"
    kind = "config"


class WeChatAPIError(WeChatTokenError):
    """WeChat answered, with an errcode instead of a token."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        message = msg("errcode.said" if errmsg else "errcode", errcode=errcode, errmsg=errmsg)
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

    hint_key = "hint.network"

    def __init__(
        self, message: str, *, transient: bool = False, hint: str = "", quoted: bytes | None = None
    ) -> None:
        super().__init__(message, hint=hint, quoted=quoted)
        self.transient = transient  # a failure that can pass: worth another attempt

    kind = "network"  # DNS, connect, timeout, a connection cut


class TLSError(TransportError):
    """The server's certificate failed verification: nothing was sent to it."""

    hint_key = "hint.tls"
    kind = "tls"


class ProxyError(TransportError):
    """The proxy could not be reached, did not answer, or would not open the tunnel."""

    kind = "proxy"


class ResponseError(TransportError):
    """The server answered, but not with HTTP 200 and a token in JSON."""

    hint_key = "hint.response"
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
        return msg("excerpt.empty")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


# Where WeChat's console shows each setting, as it names its pages (they moved: see
# docs/errcodes.md): the messages name them with {console} and {keys}.
CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
KEYS = f"{CONSOLE} → 开发密钥"

# The errcodes with a hint of their own (messages key "errcode.N"); the rest get the
# pointer to WeChat's list of return codes.
HINTED = {-1, 40001, 40002, 40013, 40125, 40164, 40243, 41002, 41004, 43002, 45009, 45011}
HINTED |= {47001, 89501, 89506, 89507}
SAME_HINT = {61004: 40164, 89503: 89501}  # the newer guide's codes for the same refusals


def hint_for(errcode: int, errmsg: str) -> str:
    """The hint for an errcode; for the IP whitelist, name the IP WeChat saw."""
    errcode = SAME_HINT.get(errcode, errcode)
    if errcode not in HINTED:
        return msg("errcode.other")
    # errmsg: "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist", or any
    # other wording that names an IPv4 address
    match = re.search(r"invalid ip ([0-9A-Fa-f.:]+)|\b(\d{1,3}(?:\.\d{1,3}){3})\b", errmsg)
    ip = (match and (match[1] or match[2])) or msg("errcode.this_ip")
    return msg(f"errcode.{errcode}", console=CONSOLE, keys=KEYS, ip=ip)

"""The JS-SDK signature that wx.config checks, made where SDKs get it wrong.

WeChat's appendix 1: the fields jsapi_ticket, noncestr, timestamp and url, in that (ASCII)
order, joined as key=value with &, the values raw (no URL escaping), SHA-1, lower-case
hex. The URL is the page's, without its #fragment. Its appendix 5 lists the usual causes
of "config:invalid signature"; the ones a program can see are named here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from wechat_token.errors import ConfigError
from wechat_token.messages import msg
from wechat_token.redact import redact

NONCE_LENGTH = 16  # characters of letters and digits, from `secrets`
_PLAIN = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII, no spaces: a ticket, a nonce


def jsapi_signature(*, ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The signature of `url` for wx.config: SHA-1 of the fields, lower-case hex.

    `url` is signed without its #fragment, as WeChat's page script reads it
    (location.href.split('#')[0]). Anything that cannot be signed is a ConfigError.
    """
    fields = _checked(ticket, noncestr, timestamp, url)
    import hashlib

    return hashlib.sha1(fields.encode(), usedforsecurity=False).hexdigest()  # WeChat chose SHA-1


def _checked(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The string to sign, from values checked one by one."""
    if not isinstance(ticket, str) or not _PLAIN.fullmatch(ticket):
        raise ConfigError(msg("jssdk.bad_ticket"), hint=msg("jssdk.hint"))
    check_page("" if noncestr is None else noncestr, timestamp, url)  # None: not one to sign
    page = url.split("#", 1)[0]
    return f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={int(timestamp)}&url={page}"


def check_page(noncestr: object, timestamp: object, url: object) -> None:
    """What a signature needs besides the ticket, checked before the ticket is fetched:
    a bad argument costs no request. A ConfigError for anything that cannot be signed."""
    if noncestr is not None and not (isinstance(noncestr, str) and _PLAIN.fullmatch(noncestr)):
        raise ConfigError(msg("jssdk.bad_noncestr"), hint=msg("jssdk.hint"))
    small = isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp < 10**12
    text = str(timestamp) if small or isinstance(timestamp, str) else ""
    if timestamp is not None and not re.fullmatch(r"[0-9]{1,12}", text):
        raise ConfigError(msg("jssdk.bad_timestamp"), hint=msg("jssdk.hint"))
    if not isinstance(url, str) or not url.isprintable() or not url.split("#", 1)[0]:
        raise ConfigError(msg("jssdk.bad_url"), hint=msg("jssdk.hint"))


def url_warnings(url: str) -> list[tuple[bool, str]]:
    """What in `url` is a known cause of "config:invalid signature", for -v and warnings:
    (serious, text) pairs. A #fragment is not serious: it is left out, as it should be."""
    said = []
    if "#" in url:
        said.append((False, msg("jssdk.fragment")))
    if re.match(r"(?i)https?%3A", url):
        said.append((True, msg("jssdk.percent_encoded")))
    elif not re.match(r"(?i)https?://", url):
        said.append((True, msg("jssdk.no_scheme")))
    return said


def nonce() -> str:
    """A random nonceStr: NONCE_LENGTH letters and digits."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(NONCE_LENGTH))


def wx_config_fields(
    appid: str,
    ticket: str,
    url: str,
    *,
    noncestr: str | None = None,
    timestamp: int | str | None = None,
    clock: Callable[[], float] | None = None,
    secret: str = "",
) -> dict[str, str | int]:
    """The fields wx.config takes (appId, timestamp, nonceStr, signature), and the url
    that was signed; a fresh nonce and the current time unless given. A random nonce is
    drawn again while the signature would hold 8 or more characters of `secret` in a row
    (about once in 5 million): shown, it would be masked, and wx.config would refuse it."""
    import time

    timestamp = int((clock or time.time)()) if timestamp is None else timestamp
    for _ in range(8):
        chosen = nonce() if noncestr is None else noncestr
        signature = jsapi_signature(ticket=ticket, noncestr=chosen, timestamp=timestamp, url=url)
        if noncestr is not None or redact(signature, secret) == signature:
            break
    noncestr = chosen
    return {
        "appId": appid,
        "timestamp": int(timestamp),
        "nonceStr": noncestr,
        "signature": signature,
        "url": url.split("#", 1)[0],
    }

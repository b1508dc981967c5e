"""What is asked of WeChat, as data: each endpoint, its request, and its answer read.

A new kind of credential is a new Endpoint here, not a new code path: the cache, the
retries and the command line take the endpoint as a value.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple

from wechat_token.errors import ResponseError, WeChatAPIError
from wechat_token.messages import msg

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from typing import TypeGuard

    from wechat_token.http import Response

API_BASE = "https://api.weixin.qq.com"
BACKUP_API_BASE = "https://api2.weixin.qq.com"  # WeChat's disaster-recovery domain
API_BASES = (API_BASE, BACKUP_API_BASE)  # tried in turn, one attempt each

# WeChat's own domains (api2 is its disaster-recovery one; sh., sz. and hk. are regional): one
# account's token is good on each of them, so a token fetched through one is reused for all.
WECHAT_HOSTS = frozenset(
    (
        "api.weixin.qq.com",
        "api2.weixin.qq.com",
        "sh.api.weixin.qq.com",
        "sz.api.weixin.qq.com",
        "hk.api.weixin.qq.com",
    )
)

MAX_EXPIRES_IN = 86400  # seconds: WeChat says 7200; no lifetime over a day is trusted


# Records are collections.namedtuple classes, annotated for mypy: typing.NamedTuple would
# cost every run the import of typing (see TYPE_CHECKING above).
class Endpoint(namedtuple("Endpoint", "name path method field ticket_type", defaults=("",))):
    __slots__ = ()
    name: str  # in the default cache file's name
    path: str
    method: str  # GET: the secret in the query; POST: in a JSON body
    field: str  # the answer's field that holds the credential
    ticket_type: str  # a ticket's type=; "" for a token, which is asked for with the secret


TOKEN = Endpoint("token", "/cgi-bin/token", "GET", "access_token")  # the PHP's
# One token shared by every caller while it is valid; replaced only with force_refresh
STABLE_TOKEN = Endpoint("stable_token", "/cgi-bin/stable_token", "POST", "access_token")
# Tickets, asked for with an access_token: the JS-SDK's, and the card API's
_GETTICKET = "/cgi-bin/ticket/getticket"
JSAPI_TICKET = Endpoint("jsapi_ticket", _GETTICKET, "GET", "ticket", "jsapi")
WX_CARD_TICKET = Endpoint("wx_card_ticket", _GETTICKET, "GET", "ticket", "wx_card")
TICKETS = {"jsapi": JSAPI_TICKET, "wx_card": WX_CARD_TICKET}
# getticket's errcodes that say the access_token it was given is no longer good
TOKEN_REFUSED = frozenset((40001, 40014, 42001))


class AccessToken(namedtuple("AccessToken", "access_token expires_in")):
    __slots__ = ()
    access_token: str
    expires_in: int  # seconds, counted from when WeChat answered


class Ticket(namedtuple("Ticket", "ticket expires_in")):
    __slots__ = ()
    ticket: str
    expires_in: int  # seconds, counted from when WeChat answered


def token_request(
    endpoint: Endpoint,
    api_base: str,
    appid: str,
    secret: str,
    force_refresh: bool = False,
    access_token: str = "",
) -> tuple[str, bytes | None]:
    """The URL to ask, and the JSON body to POST (None for a GET). A ticket is asked for
    with `access_token`; a token with the AppID and AppSecret."""
    url = f"{api_base.rstrip('/')}{endpoint.path}"
    fields: dict[str, str | bool] = {
        "grant_type": "client_credential",
        "appid": appid,
        "secret": secret,
    }
    if endpoint.ticket_type:
        fields = {"access_token": access_token, "type": endpoint.ticket_type}
    if endpoint.method == "POST":  # stable_token: the secret in a JSON body
        fields["force_refresh"] = force_refresh  # true: replace the token now (20 a day)
        return url, json.dumps(fields).encode()
    from urllib.parse import urlencode  # here, not at the top: a cache hit needs no URL

    return f"{url}?{urlencode(fields)}", None  # unlike the PHP, the values URL-encoded


def parse_response(response: Response, field: str = "access_token") -> AccessToken:
    """Turn WeChat's answer into an AccessToken, or raise the matching error."""
    status, output = response.status, response.output
    trouble = 500 <= status <= 599  # the server's trouble, which may pass; a 4xx will not
    if _is_page(response):  # named, not quoted: a page is not ours to print
        raise ResponseError(
            msg("endpoints.web_page", status=status, page=web_page(response)),
            transient=trouble,
            hint=msg("hint.server_trouble" if trouble else "hint.portal"),
        )
    if status != 200:
        hint = msg("hint.server_trouble") if trouble else ""
        if 300 <= status <= 399:  # WeChat's API never redirects: a login page does, or a proxy
            hint = msg("hint.portal")
        raise ResponseError(
            msg("endpoints.not_200", status=status), quoted=output, transient=trouble, hint=hint
        )
    if not output.strip():
        raise ResponseError(msg("endpoints.empty"))
    try:
        jsoninfo = json.loads(output)  # $jsoninfo = json_decode($output, true);
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        raise ResponseError(msg("endpoints.not_json"), quoted=output) from None
    if not isinstance(jsoninfo, dict):
        raise ResponseError(msg("endpoints.not_object"), quoted=output)
    errcode = jsoninfo.get("errcode", 0)
    if errcode != 0:  # {"errcode":40013,"errmsg":"invalid appid"} comes with HTTP 200
        errmsg = jsoninfo.get("errmsg", "")
        if not whole_number(errcode) or not isinstance(errmsg, str):
            raise ResponseError(msg("endpoints.malformed_error"), quoted=output)
        raise WeChatAPIError(errcode, errmsg)
    value = jsoninfo.get(field)  # $access_token = $jsoninfo["access_token"];
    expires_in = jsoninfo.get("expires_in")
    if not isinstance(value, str) or not USABLE.fullmatch(value):
        raise ResponseError(msg("endpoints.no_field", field=field), quoted=output)
    if not whole_number(expires_in) or expires_in <= 0:
        raise ResponseError(msg("endpoints.no_field", field="expires_in"), quoted=output)
    return AccessToken(value, min(expires_in, MAX_EXPIRES_IN))  # 10**400 is not a lifetime


USABLE = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII: safe to print and store
# A web page where WeChat's JSON should be: a hotel's or office's login page, or a proxy's.
_TITLE = re.compile(rb"<title[^>]*>([^<]{0,200})", re.I)


def _is_page(response: Response) -> bool:
    """A web page, by its Content-Type or by its first character: JSON never starts with
    '<' (a BOM, white space, a comment or <?xml may come before the page's first tag)."""
    kind = response.content_type.split(";")[0].strip().lower()
    start = response.output.removeprefix(b"\xef\xbb\xbf").lstrip()
    return kind in ("text/html", "application/xhtml+xml") or start.startswith(b"<")


def web_page(response: Response) -> str:
    """A web page named by its type, size and title: enough to recognise a login page."""
    kind = response.content_type.split(";")[0].strip() or msg("endpoints.no_content_type")
    title = _TITLE.search(response.output)
    named = title and " ".join(title[1].decode("utf-8", "replace").split())[:80]
    if named:
        return msg("endpoints.titled_page", kind=kind, size=len(response.output), title=repr(named))
    return msg("endpoints.page", kind=kind, size=len(response.output))


def realm(api_base: str) -> str:
    """Where a token from `api_base` (normalised) is good: WeChat's domains are one realm,
    named by API_BASE; any other base (a test server, a gateway) is a realm of its own."""
    return API_BASE if api_base.removeprefix("https://") in WECHAT_HOSTS else api_base


def whole_number(value: object) -> TypeGuard[int]:
    """An int from JSON; not a bool, which Python counts as an int."""
    return isinstance(value, int) and not isinstance(value, bool)

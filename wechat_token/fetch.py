"""One fetch: an endpoint's request sent once, its answer read, the AppSecret masked."""

from __future__ import annotations

import os
from collections.abc import Callable

from wechat_token import http
from wechat_token.endpoints import (
    API_BASE,
    STABLE_TOKEN,
    TOKEN,
    AccessToken,
    Endpoint,
    parse_response,
    token_request,
)
from wechat_token.errors import ResponseError, WeChatTokenError
from wechat_token.redact import clean, redact

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
    working about 5 minutes later: fetch once and reuse it (TokenCache and the command's
    cache do that). With stable=True, the stable_token endpoint is asked instead: it gives
    every caller the same token while that is valid, and replaces it only when
    force_refresh=True (at most 20 times a day, 30 seconds apart).

    `proxy` is a proxy URL (http://[user:password@]host:port), "" for none; None leaves
    libcurl to read https_proxy and no_proxy from the environment, as curl does.

    Raises WeChatAPIError (with .errcode, .errmsg and .hint) when WeChat refuses,
    TLSError when the certificate fails verification, ResponseError when the answer is
    not a token, and TransportError for anything else on the way. Their messages, and
    every line passed to `log`, have the AppSecret masked.
    """
    endpoint = STABLE_TOKEN if stable else TOKEN
    return fetch(endpoint, appid, secret, api_base, force_refresh, cacert, timeout, proxy, log)


def fetch(
    endpoint: Endpoint,
    appid: str,
    secret: str,
    api_base: str,
    force_refresh: bool = False,
    cacert: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    proxy: str | None = None,
    log: Callable[[str], None] | None = None,
) -> AccessToken:
    """One request to `endpoint` on `api_base`: see get_access_token."""

    def note(text: str) -> None:
        if log is not None:
            log(clean(text, secret))

    url, body = token_request(endpoint, api_base, appid, secret, force_refresh)
    if proxy:  # as the command checks it: pycurl takes ASCII only, and libcurl quotes it
        http.checked_proxy(proxy, "proxy")
    cacert = cacert or http.certifi_bundle()
    note(f"{endpoint.method} {url}")
    note(f"CA bundle: {cacert}")
    if (in_use := http.proxy_in_use(proxy, os.environ)) is not None:
        note(f"proxy: {http.proxy_shown(in_use[0])}{in_use[1]}")
    try:
        response = http.request(url, cacert, timeout, body, proxy)
        note(f"HTTP {response.status} from {response.address}")
        note("time since start: " + response.timings)
        token = parse_response(response.status, response.output, endpoint.field)
        if redact(token.access_token, secret) != token.access_token:  # never print the secret
            raise ResponseError(f"the {endpoint.field} in the answer holds the AppSecret: refused")
        return token
    except WeChatTokenError as error:
        error.scrub(secret)  # a caller may log the exception: keep it safe to print
        raise

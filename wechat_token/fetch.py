"""One fetch: an endpoint's request sent once, its answer read, the AppSecret masked."""

from __future__ import annotations

import os
from collections.abc import Callable

from wechat_token import http
from wechat_token.endpoints import (
    AccessToken,
    Endpoint,
    parse_response,
    token_request,
)
from wechat_token.errors import ResponseError, WeChatTokenError
from wechat_token.messages import msg
from wechat_token.redact import clean, redact

DEFAULT_TIMEOUT = 10.0  # seconds for each request


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
    access_token: str = "",
) -> AccessToken:
    """One request to `endpoint` on `api_base`, with settings already checked: see
    wechat_token.get_access_token, which checks them. A ticket is asked for with
    `access_token`, which is masked wherever the AppSecret is (it is as secret)."""

    def note(text: str) -> None:
        if log is not None:
            log(redact(clean(text, secret), access_token))

    url, body = token_request(endpoint, api_base, appid, secret, force_refresh, access_token)
    cacert = cacert or http.certifi_bundle()
    note(msg("fetch.request", method=endpoint.method, url=url))
    note(msg("fetch.cacert", cacert=cacert))
    if (in_use := http.proxy_in_use(proxy, os.environ)) is not None:
        note(msg("fetch.proxy", proxy=http.proxy_shown(in_use[0]), origin=in_use[1]))
    try:
        response = http.request(url, cacert, timeout, body, proxy)
        note(msg("fetch.status", status=response.status, address=response.address))
        note(msg("fetch.timings", timings=response.timings))
        token = parse_response(response, endpoint.field)
        value = token.access_token
        if redact(redact(value, secret), access_token) != value:  # never print the secret
            held = "fetch.holds_secret_or_token" if access_token else "fetch.holds_secret"
            raise ResponseError(msg(held, field=endpoint.field))
        return token
    except WeChatTokenError as error:
        error.scrub(secret)  # a caller may log the exception: keep it safe to print
        error.scrub(access_token)
        raise

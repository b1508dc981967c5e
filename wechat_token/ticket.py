"""Tickets: the JS-SDK's jsapi_ticket and the card API's api_ticket, cached like the token.

A ticket is another credential in the same machinery: an Endpoint (endpoints.TICKETS),
and a cache entry of its own, beside the token's, with the same margin, lock and shared
answers. Only where a new one comes from differs: getticket, asked with an access_token
from the token's cache. If getticket says that token is no longer good (40001, 40014,
42001), the token is replaced as --replace does it (only if the cache still holds that
very token, under its lock, once across processes), and the ticket asked for once more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from wechat_token.cache import (
    MAX_KEPT,
    attempts_deadline,
    cached_access_token,
    fetch_with_retries,
)
from wechat_token.endpoints import TOKEN, TOKEN_REFUSED, AccessToken, Endpoint
from wechat_token.errors import WeChatAPIError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from wechat_token.config import Settings


def ticket_cache_file(token_cache_file: str, endpoint: Endpoint) -> str:
    """The ticket's cache file, beside the token's: token.json -> token.jsapi_ticket.json."""
    root, extension = os.path.splitext(token_cache_file)
    return f"{root}.{endpoint.name}{extension or '.json'}"


def cached_ticket(
    settings: Settings,
    endpoint: Endpoint,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    started: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> tuple[AccessToken, bool]:
    """The cached ticket while it is good, else a new one, stored for the next caller;
    returned as (ticket, seconds left) and whether it came from the cache.

    The token it needs comes from the token's cache (fetched if need be), within the same
    time bound: the whole run, token and ticket, ends within time_bound(retries, timeout).
    `settings.force_refresh` asks for a new ticket, never a new token.
    """
    deadline = attempts_deadline(settings, started or clock())
    path = settings.cache_file
    ticket_settings = settings._replace(
        endpoint=endpoint, cache_file=path and ticket_cache_file(path, endpoint)
    )
    # The token needs to last only for the getticket request: --valid-for is the ticket's
    token_settings = settings._replace(force_refresh=False, valid_for=0)

    def token(refused: str | None = None) -> str:
        got, _ = cached_access_token(
            token_settings, log, warn, refused=refused, clock=clock, sleep=sleep, deadline=deadline
        )
        return got.access_token

    def from_getticket(deadline: float) -> AccessToken:
        used = token()
        try:
            return fetch_with_retries(
                ticket_settings, log, deadline, clock=clock, sleep=sleep, access_token=used
            )
        except WeChatAPIError as error:
            if error.errcode not in TOKEN_REFUSED:
                error.hint = _HINTS.get(error.errcode, error.hint)
                raise
            invalidates = _INVALIDATES if settings.endpoint == TOKEN else ""
            log(
                f"getticket: errcode {error.errcode}: the access_token it was given is no "
                f"longer good; replacing it, once{invalidates}"
            )
        try:
            return fetch_with_retries(
                ticket_settings, log, deadline, clock=clock, sleep=sleep, access_token=token(used)
            )
        except WeChatAPIError as error:  # asked once more, never again
            error.hint = _HINTS.get(error.errcode, error.hint)
            if error.errcode in TOKEN_REFUSED:  # a token fetched just now: not a stale one
                error.hint = _REFUSED_AGAIN
                error.kept = MAX_KEPT  # and no new token for 5 minutes
            raise

    return cached_access_token(
        ticket_settings,
        log,
        warn,
        clock=clock,
        sleep=sleep,
        deadline=deadline,
        source=from_getticket,
    )


_HINTS = {  # getticket's own; WeChat's other errcodes keep the token's hints
    45009: "getticket's daily quota is spent (it is small: about 10,000 a day): keep the "
    "ticket cached and shared, as this tool does, and see where else it is fetched; the "
    "quota is reset at midnight, Beijing time",
    40097: "getticket refused its arguments: type must be jsapi or wx_card",
}
_REFUSED_AGAIN = (
    "getticket refused a token fetched just now: check that the AppID and AppSecret are of "
    "the account whose JS-SDK this is, and that nothing else replaces its token all the time"
)
_INVALIDATES = (
    " (a new token from /cgi-bin/token invalidates the one other programs hold, within "
    "5 minutes; --stable does not)"
)

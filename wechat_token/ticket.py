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
from wechat_token.messages import msg

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
                _own_hint(error)
                raise
            # a new token from /cgi-bin/token invalidates the others' (a stable one does not)
            key = "ticket.replacing" if settings.endpoint == TOKEN else "ticket.replacing_stable"
            log(msg(key, errcode=error.errcode))
        try:
            return fetch_with_retries(
                ticket_settings, log, deadline, clock=clock, sleep=sleep, access_token=token(used)
            )
        except WeChatAPIError as error:  # asked once more, never again
            _own_hint(error)
            if error.errcode in TOKEN_REFUSED:  # a token fetched just now: not a stale one
                error.hint = msg("ticket.refused_again")
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


# getticket's own hints (messages keys); WeChat's other errcodes keep the token's hints
_HINTS = {45009: "ticket.hint.45009", 40097: "ticket.hint.40097"}


def _own_hint(error: WeChatAPIError) -> None:
    """Give getticket's refusal getticket's hint, where it has one of its own."""
    if error.errcode in _HINTS:
        error.hint = msg(_HINTS[error.errcode])

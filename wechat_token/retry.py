"""Bounded retries with failover, for failures that can pass, within one deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from wechat_token.endpoints import AccessToken
from wechat_token.errors import TransportError, WeChatAPIError, WeChatTokenError
from wechat_token.messages import msg

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
    deadline: float = float("inf"),
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> AccessToken:
    """Return attempt(api_base, seconds_left), calling it at most 1 + `retries` times.

    Another attempt is made only after a failure that can pass (see worth_retrying),
    after a wait of 0.5 s, then 1 s, 2 s, ...; each attempt goes to the next base in
    `api_bases`, wrapping around, so a dead primary domain costs one timeout, no more.
    No attempt starts, and no wait is made, past `deadline` (on `clock`).
    """
    number = 0
    while True:
        api_base = api_bases[number % len(api_bases)]
        try:
            return attempt(api_base, deadline - clock())
        except WeChatTokenError as error:
            wait = retry_wait(number)
            out_of_time = clock() + wait + MIN_ATTEMPT > deadline
            if number == retries or not worth_retrying(error) or out_of_time:
                if type(error) is TransportError and error.transient:  # no answer: say from where
                    tried = dict.fromkeys(api_bases[: number + 1])  # each one once, in order
                    bases = msg("and").join(tried)
                    error.hint = msg("retry.tried", api_bases=bases, hint=error.hint)
                raise
            following = api_bases[(number + 1) % len(api_bases)]
            log(msg("retry.failed", number=number + 1, attempts=retries + 1, error=error))
            log(msg("retry.next", seconds=wait, api_base=following))
        sleep(wait)
        number += 1


def worth_retrying(error: WeChatTokenError) -> bool:
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
    """The bound on a whole run, waiting for the cache lock included: the attempts and
    waits, plus OWN_WORK (32 s with the defaults)."""
    return longest_wait(retries, timeout) + OWN_WORK

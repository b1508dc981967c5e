"""The Python API: TokenCache, the command's cached token, and get_access_token, one
request. Both check their arguments through wechat_token.config, as the command does."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from wechat_token.cache import CACHE_MARGIN, cached_access_token, margin
from wechat_token.config import api_settings
from wechat_token.endpoints import API_BASE, API_BASES, AccessToken
from wechat_token.errors import WeChatTokenError
from wechat_token.fetch import DEFAULT_TIMEOUT, fetch

# A web worker has a time limit of its own (gunicorn's default kills it after 30 s): with
# these, a get() that cannot reach WeChat ends within time_bound(1, 5.0) = 11 s with a
# TransportError the app can handle. The command's defaults allow 32 s.
TIMEOUT = 5.0
RETRIES = 1


class TokenCache:
    """The command's cached token, for Python programs: web workers, task queues, scripts.

        tokens = TokenCache(appid, secret)       # the command's defaults
        token = tokens.get()                     # AccessToken(access_token, expires_in)
        token = tokens.replace(refused)          # after an API call said 40001/42001/40014

    It shares the command's cache file, lock and rules, so the command, this process's
    threads and every other process on the machine use one token, and one fetch renews it.
    get() keeps the token in memory until the cache margin: a warm get() reads no file.
    Nothing is printed and no signal handler is changed; errors are this package's
    exceptions, with the AppSecret masked, and `log` hears what `-v` would print.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        stable: bool = False,
        cache_file: str | os.PathLike[str] | None = None,
        api_bases: Sequence[str] = API_BASES,
        cacert: str | os.PathLike[str] | None = None,
        proxy: str | None = None,
        timeout: float = TIMEOUT,
        retries: int = RETRIES,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = api_settings(
            appid,
            secret,
            stable=stable,
            cache_file=cache_file,
            api_bases=api_bases,
            cacert=cacert,
            proxy=proxy,
            timeout=timeout,
            retries=retries,
            log=log,
        )
        self._log = log or (lambda _text: None)
        # The token, the time.monotonic() until which it is used (its expiry less the
        # cache margin), and its expiry. Threads that find it stale meet at the cache's
        # lock, as processes do: one fetches, the others read what it stored. There is
        # no lock in memory, so a fork in the middle leaves the child none to wait for.
        self._memo = ("", 0.0, 0.0)

    def get(self) -> AccessToken:
        """The token: from memory while it has more than the margin left, else from the
        cache file, else fetched (and stored for every other caller)."""
        token, until, expiry = self._memo  # one read: another thread may replace it meanwhile
        now = time.monotonic()
        if now < until:
            return AccessToken(token, int(expiry - now))
        return self._renew(None)

    def replace(self, refused: str) -> AccessToken:
        """A new token in place of `refused`, once across threads and processes: if another
        caller has replaced it already, that token is returned and nothing is fetched."""
        token, until, expiry = self._memo
        now = time.monotonic()
        if token and token != refused and now < until:
            return AccessToken(token, int(expiry - now))
        return self._renew(refused)

    def _renew(self, refused: str | None) -> AccessToken:
        """From the cache file, or fetched: threads that waited for the cache's lock find
        the answer that the first one stored, and make no request."""
        try:
            fresh, cached = cached_access_token(
                self._settings, self._log, self._log, refused=refused
            )
        except WeChatTokenError as error:
            error.scrub(self._settings.secret)
            raise
        expiry = time.monotonic() + fresh.expires_in
        # A fetched token's lifetime is known, and so its margin. Of a cached one only the
        # time left is: it is kept in memory until CACHE_MARGIN before expiry, or (with
        # less left) not at all, and the cache file decides at each get().
        kept = CACHE_MARGIN if cached else margin(fresh.expires_in)
        self._memo = (fresh.access_token, expiry - kept, expiry)
        return fresh


def get_access_token(
    appid: str,
    secret: str,
    *,
    api_base: str = API_BASE,
    stable: bool = False,
    force_refresh: bool = False,
    cacert: str | os.PathLike[str] | None = None,
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
    every line passed to `log`, have the AppSecret masked. Arguments are checked as
    TokenCache checks its own: anything wrong is a ConfigError, before any request.
    """
    settings = api_settings(
        appid,
        secret,
        stable=stable,
        cache_file=None,
        api_bases=[api_base],
        cacert=cacert,
        proxy=proxy,
        timeout=timeout,
        retries=0,
        force_refresh=force_refresh,
        use_cache=False,
        bases_origin="api_base",
        log=log,
    )
    return fetch(
        settings.endpoint,
        settings.appid,
        settings.secret,
        settings.api_bases[0],
        settings.force_refresh,
        settings.cacert,
        settings.timeout,
        settings.proxy,
        log,
    )

"""The Python API: TokenCache, the command's cached token, and get_access_token, one
request. Both check their arguments through wechat_token.config, as the command does."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from wechat_token.cache import cached_access_token
from wechat_token.config import (
    MAX_VALID_FOR,
    OFF_CACHE,
    OFF_PROXY,
    Settings,
    flag,
    settings,
)
from wechat_token.config import valid_for as valid_for_setting
from wechat_token.endpoints import API_BASE, API_BASES, TICKETS, AccessToken, Ticket
from wechat_token.entry import CACHE_MARGIN, margin
from wechat_token.errors import ConfigError, WeChatTokenError
from wechat_token.fetch import DEFAULT_TIMEOUT, fetch
from wechat_token.jssdk import check_page, url_warnings, wx_config_fields
from wechat_token.messages import msg
from wechat_token.redact import clean
from wechat_token.ticket import cached_ticket

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
        secret_ = self._settings.secret

        def masked(text: str) -> None:  # every line, from every module, as -v shows it
            if log is not None:
                log(clean(text, secret_))

        self._log = masked
        # The token, the time.monotonic() until which it is used (its expiry less the
        # cache margin), and its expiry. Threads that find it stale meet at the cache's
        # lock, as processes do: one fetches, the others read what it stored. There is
        # no lock in memory, so a fork in the middle leaves the child none to wait for.
        self._memo = ("", 0.0, 0.0)
        self._tickets: dict[str, tuple[str, float, float]] = {}  # the same, for each type

    def get(self, valid_for: int = 0) -> AccessToken:
        """The token: from memory while it has more than the margin left, else from the
        cache file, else fetched (and stored for every other caller).

        `valid_for`: seconds the token returned must stay valid, at least (0 to 7000); a
        cached one with less left is replaced, as the command's --valid-for does it."""
        token, until, expiry = self._memo  # one read: another thread may replace it meanwhile
        now = time.monotonic()
        if now < until and (valid_for == 0 or self._lasts(expiry - now, valid_for)):
            return AccessToken(token, int(expiry - now))
        return self._renew(None, valid_for)

    @staticmethod
    def _lasts(left: float, valid_for: object) -> bool:
        """Whether `left` seconds meet a valid_for that is in range; one that is not goes
        to _renew, which refuses it as the command's --valid-for is refused."""
        return type(valid_for) is int and 0 <= valid_for <= MAX_VALID_FOR and left > valid_for

    def replace(self, refused: str) -> AccessToken:
        """A new token in place of `refused`, once across threads and processes: if another
        caller has replaced it already, that token is returned and nothing is fetched."""
        token, until, expiry = self._memo
        now = time.monotonic()
        if token and token != refused and now < until:
            return AccessToken(token, int(expiry - now))
        return self._renew(refused)

    def ticket(self, kind: str = "jsapi") -> Ticket:
        """The JS-SDK's jsapi_ticket ("jsapi") or the card API's api_ticket ("wx_card"):
        cached and shared as the token is; the token it needs comes from get()'s cache."""
        endpoint = TICKETS.get(kind) if isinstance(kind, str) else None
        if endpoint is None:  # what was given is not repeated: it may be anything
            raise ConfigError(msg("api.bad_kind"), hint=msg("api.bad_kind.hint"))
        ticket, until, expiry = self._tickets.get(kind, ("", 0.0, 0.0))
        now = time.monotonic()
        if now < until:
            return Ticket(ticket, int(expiry - now))
        try:
            fresh, cached = cached_ticket(self._settings, endpoint, self._log, self._log)
        except WeChatTokenError as error:
            error.scrub(self._settings.secret)
            raise
        self._tickets[kind] = self._memo_of(fresh, cached)
        return Ticket(*fresh)

    def wx_config(self, url: str) -> dict[str, str | int]:
        """What wx.config takes for the page at `url`: appId, timestamp, nonceStr and
        signature (and the url signed, without its #fragment); `log` hears of anything in
        the URL that is a known cause of "invalid signature"."""
        check_page(None, None, url)  # before the ticket: a bad URL costs no request
        for _, warning in url_warnings(url):
            self._log(f"wx_config: {warning}")
        return wx_config_fields(
            self._settings.appid, self.ticket("jsapi").ticket, url, secret=self._settings.secret
        )

    def _renew(self, refused: str | None, valid_for: object = 0) -> AccessToken:
        """From the cache file, or fetched: threads that waited for the cache's lock find
        the answer that the first one stored, and make no request."""
        settings = self._settings
        if valid_for != 0:  # checked as the command's --valid-for is
            text = str(valid_for) if type(valid_for) is int and valid_for >= 0 else "?"
            settings = settings._replace(valid_for=valid_for_setting(text, "valid_for"))
        try:
            fresh, cached = cached_access_token(settings, self._log, self._log, refused=refused)
        except WeChatTokenError as error:
            error.scrub(self._settings.secret)
            raise
        self._memo = self._memo_of(fresh, cached)
        return fresh

    @staticmethod
    def _memo_of(fresh: AccessToken, cached: bool) -> tuple[str, float, float]:
        """What memory keeps: the value, the time.monotonic() until which it is used, and
        its expiry. A fetched credential's lifetime is known, and so its margin. Of a
        cached one only the time left is: it is kept until CACHE_MARGIN before expiry,
        or (with less left) not at all, and the cache file decides at each call."""
        expiry = time.monotonic() + fresh.expires_in
        kept = CACHE_MARGIN if cached else margin(fresh.expires_in)
        return (fresh.access_token, expiry - kept, expiry)


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


# --- The Python arguments, narrowed to text as the command has it, then config.settings() ---


def api_settings(
    appid: str,
    secret: str,
    *,
    stable: bool,
    cache_file: str | os.PathLike[str] | None,
    api_bases: Sequence[str],
    cacert: str | os.PathLike[str] | None,
    proxy: str | None,
    timeout: float,
    retries: int,
    force_refresh: bool = False,
    use_cache: bool = True,
    bases_origin: str = "api_bases",
    log: object = None,
) -> Settings:
    """The settings of a TokenCache or of get_access_token. Python values of the wrong
    type are refused here; each value is then checked by settings(), as the command's.
    Anything wrong is a ConfigError, with the AppSecret masked in it."""
    try:
        _of_type("appid", appid, (str,), "api.not_str")
        _of_type("secret", secret, (str,), "api.not_str")
        _of_type("stable", stable, (bool,), "api.not_bool")
        _of_type("force_refresh", force_refresh, (bool,), "api.not_bool")
        _of_type("timeout", timeout, (int, float), "api.not_seconds")
        _of_type("retries", retries, (int,), "api.not_int")
        _of_type("proxy", proxy, (str, type(None)), "api.not_str_or_none")
        if log is not None and not callable(log):
            raise ConfigError(
                msg("api.bad_log", kind=type(log).__name__), hint=msg("config.defaults")
            )
        cacert = _path_or_none("cacert", cacert)
        cache_file = _path_or_none("cache_file", cache_file)
        if isinstance(api_bases, (str, bytes)) or not isinstance(api_bases, (list, tuple)):
            kind = type(api_bases).__name__
            raise ConfigError(msg("api.bases_not_list", kind=kind), hint=msg("config.defaults"))
        if odd := [base for base in api_bases if not isinstance(base, str)]:
            kind = type(odd[0]).__name__
            raise ConfigError(msg("api.bases_not_str", kind=kind), hint=msg("config.defaults"))
        given = {
            "appid": (appid, "appid"),
            "appsecret": (secret, "secret"),
            "stable": flag(stable, "stable"),
            "timeout": (_number(timeout), "timeout"),
            "retries": (_number(retries), "retries"),
            "proxy": None if proxy is None else (proxy, "proxy") if proxy else OFF_PROXY,
            "ca_bundle": None if cacert is None else (cacert, "cacert"),
            "cache_file": (cache_file, "cache_file") if cache_file else None,  # "": the default
        }
        if not use_cache:
            given["cache_file"] = OFF_CACHE
        bases = [(base, bases_origin) for base in api_bases]
        return settings(given, bases, force_refresh, os.environ, [], python=True)
    except ConfigError as error:  # a value may be the secret, pasted in the wrong place
        error.scrub(secret if isinstance(secret, str) else "")
        raise


def _of_type(name: str, value: object, kinds: tuple[type, ...], refusal: str) -> None:
    """Refuse a value of another type (and a bool where a number is asked for), with the
    message `refusal` (a key): "{name} must be a str, not {kind}"."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(
            msg(refusal, name=name, kind=type(value).__name__), hint=msg("config.defaults")
        )


def _number(value: float) -> str:
    """A number as the text a config file would give: 10, 1.5, nan."""
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else msg("api.huge")  # str() has a limit
    return repr(value)


def _path_or_none(name: str, value: object) -> str | None:
    """A path given as str or os.PathLike (pathlib.Path), as a str; None stays None."""
    try:
        path = os.fspath(value) if isinstance(value, os.PathLike) else value
    except TypeError:  # its __fspath__ returned neither str nor bytes
        path = None if value is None else b""
    if path is not None and not isinstance(path, str):
        kind = type(value).__name__
        raise ConfigError(msg("api.not_path", name=name, kind=kind), hint=msg("config.defaults"))
    return path

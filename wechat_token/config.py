"""Settings from flags, the environment and config.ini, checked once, into one record.

Order of precedence: flag, then environment, then config file, then default. Every
value is checked here, before any connection is made, so later code can trust it.
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from collections import namedtuple

from wechat_token import http
from wechat_token.config_file import CONFIG_SECTION, DEFAULT_CONFIG, read_config
from wechat_token.endpoints import API_BASES, STABLE_TOKEN, TOKEN, Endpoint
from wechat_token.errors import CONSOLE, KEYS, ConfigError
from wechat_token.fetch import DEFAULT_TIMEOUT
from wechat_token.messages import msg
from wechat_token.redact import redact
from wechat_token.retry import DEFAULT_RETRIES, MAX_RETRIES

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

MAX_CREDENTIAL = 128  # characters: an AppID has 18
# config.ini.example's placeholders: refused, and never taken for a credential
PLACEHOLDERS = ("your-appid-here", "your-appsecret-here")
# What an AppSecret may be: WeChat's are 32 hex characters, WeCom's 43 of [A-Za-z0-9_-].
# Nothing outside this alphabet is accepted, so that redaction can be exact (see redact).
SECRET = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_VALID_FOR = 7000  # seconds: WeChat's tokens live 7200; a new one has a little less
MAX_CA_BUNDLE = 4 * 2**20  # bytes: certifi's bundle is about 300 KB


class Settings(
    namedtuple(
        "Settings",
        "appid secret endpoint api_bases cacert proxy timeout retries force_refresh cache_file "
        "warnings valid_for",
        defaults=(0,),
    )
):
    __slots__ = ()
    appid: str
    secret: str
    endpoint: Endpoint  # TOKEN, or STABLE_TOKEN
    api_bases: tuple[str, ...]  # tried in turn: each retry moves to the next
    cacert: str | None  # None: certifi's bundle
    proxy: str | None  # None: libcurl reads https_proxy; "": no proxy
    timeout: float  # seconds, for each attempt
    retries: int
    force_refresh: bool
    cache_file: str | None  # None: --no-cache
    warnings: list[str]
    valid_for: int  # seconds the credential printed must stay valid, at least


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Gather the command's settings (flag, environment, config file) and check them."""
    path = args.config or DEFAULT_CONFIG
    section, warnings = read_config(path, must_exist=args.config is not None)
    folder = os.path.dirname(path)  # paths in the config file are relative to it

    def first(
        key: str, flag: str | None = None, env: str = "", name: str = ""
    ) -> tuple[str, str] | None:
        """The first value given (flag, environment, file) and where it came from; a path
        from the config file is relative to its folder."""
        if flag is not None:
            return flag, name or "--" + key.replace("_", "-")
        if env and env in environ:
            return environ[env], env
        if key not in section:
            return None
        value = section[key]
        if key in ("ca_bundle", "cache_file"):
            value = os.path.join(folder, value)
        return value, msg("config.in_file", path=path, key=key)

    given = {
        "appid": first("appid", args.appid, "WECHAT_APPID"),
        "appsecret": first("appsecret", env="WECHAT_APPSECRET"),
        "stable": first("stable") if args.stable is None else flag(args.stable, "--stable"),
        "timeout": first("timeout", args.timeout),
        "retries": first("retries", args.retries),
        "proxy": OFF_PROXY if args.no_proxy else first("proxy", args.proxy),
        "ca_bundle": first("ca_bundle", args.cacert, name="--cacert"),
        "cache_file": OFF_CACHE if args.no_cache else first("cache_file", args.cache_file),
        "valid_for": first("valid_for", args.valid_for),
    }
    if args.api_base:
        bases = [(value, "--api-base") for value in args.api_base]
    elif "api_base" in section:  # a list of URLs separated by spaces, commas or lines
        values = section["api_base"].replace(",", " ").split() or [""]
        bases = [(value, msg("config.in_file", path=path, key="api_base")) for value in values]
    else:
        bases = [(base, "api_base") for base in API_BASES]
    try:
        return settings(given, bases, args.force_refresh, environ, warnings, where=path)
    except ConfigError as error:  # it may quote a value: mask any AppSecret given
        for secret in (environ.get("WECHAT_APPSECRET", ""), section.get("appsecret", "")):
            if secret not in PLACEHOLDERS:  # the example's words are not a secret
                error.scrub(secret)
        raise


OFF_PROXY = ("", "--no-proxy")  # given: no proxy, whatever the environment says
OFF_CACHE = ("", "--no-cache")  # given: no cache file


def settings(
    given: Mapping[str, tuple[str, str] | None],
    bases: Sequence[tuple[str, str]],
    force_refresh: bool,
    environ: Mapping[str, str],
    warnings: list[str],
    where: str = "",
    python: bool = False,
) -> Settings:
    """The one place where every setting is checked, for every entry point: `given` maps
    each key to (value as text, where it came from), or None if not given; `bases` are
    the API bases, each with its origin; `python`: given by a Python program, whose defaults
    are its function's (a hint names the command's only to the command's user). Anything
    wrong is a ConfigError."""
    for found in [*given.values(), *bases]:
        if found is not None and found not in (OFF_PROXY, OFF_CACHE):
            _check_plain(*found)
    appid, appid_origin = _credential(given["appid"], "appid", where)
    secret, _ = _credential(given["appsecret"], "appsecret", where)
    _appid_apart(appid, secret, appid_origin)
    if not re.fullmatch(r"wx[0-9a-f]{16}", appid):
        warnings.append(msg("config.unlike_appid", origin=appid_origin, appid=appid))
    stable = _yes_no(*given["stable"]) if given["stable"] else False
    endpoint = STABLE_TOKEN if stable else TOKEN
    if not bases:
        raise ConfigError(msg("config.no_api_bases"), hint=msg("config.defaults"))
    timeout, retries, proxy = given["timeout"], given["retries"], given["proxy"]
    cacert, cache_file = given["ca_bundle"], given["cache_file"]
    wanted_for = given.get("valid_for")
    return Settings(
        appid=appid,
        secret=secret,
        endpoint=endpoint,
        api_bases=tuple(_api_base(*base) for base in bases),
        cacert=_ca_bundle(*cacert) if cacert else None,
        proxy=None if proxy is None else proxy[0] and http.checked_proxy(*proxy),
        timeout=_seconds(*timeout, python) if timeout else DEFAULT_TIMEOUT,
        retries=_retries(*retries, python) if retries else DEFAULT_RETRIES,
        force_refresh=force_refresh,
        cache_file=default_cache_file(appid, endpoint, environ)
        if cache_file is None
        else cache_file[0] or None,
        warnings=warnings,
        valid_for=valid_for(*wanted_for) if wanted_for else 0,
    )


def default_cache_file(appid: str, endpoint: Endpoint, environ: Mapping[str, str]) -> str:
    """The per-user cache file for this AppID and endpoint, named from the AppID alone."""
    if sys.platform == "win32":
        folder = environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
    elif sys.platform == "darwin":
        folder = os.path.expanduser("~/Library/Caches")
    else:  # XDG: $XDG_CACHE_HOME if it is an absolute path, else ~/.cache
        folder = environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(folder):
            folder = os.path.expanduser("~/.cache")
    if sys.platform != "win32" and not os.path.isabs(folder):  # no HOME, no passwd entry
        raise ConfigError(msg("config.no_home"), hint=msg("config.no_home.hint"))
    name = re.sub(r"[^A-Za-z0-9_-]", "_", appid)  # safe as a file name, whatever it holds
    return os.path.join(folder, "wechat_token", f"{name}.{endpoint.name}.json")


def _api_base(value: str, origin: str) -> str:
    """An API base must be an https:// URL, plain enough to put a path after. It is used
    normalised: scheme and host in lower case, no :443, no trailing slash, so that one
    server has one spelling (and one cache entry)."""
    _check_plain(value, origin)
    if http.matched_url(http.HTTPS_URL, value) is None:
        raise ConfigError(
            msg("config.not_https", origin=origin, value=value), hint=msg("config.not_https.hint")
        )
    host, _, path = value.split("://", 1)[1].partition("/")
    host = re.sub(r"(?<=.)\.(?=(:[0-9]+)?$)", "", host.lower()).removesuffix(":443")  # root dot
    return f"https://{host}/{path.rstrip('/')}" if path.rstrip("/") else f"https://{host}"


def _credential(found: tuple[str, str] | None, key: str, path: str) -> tuple[str, str]:
    """The AppID or AppSecret: required, and a single word."""
    env = "WECHAT_APPID" if key == "appid" else "WECHAT_APPSECRET"

    def hint(for_appid: str, for_secret: str) -> str:  # where the console shows it
        return msg(for_appid if key == "appid" else for_secret, console=CONSOLE, keys=KEYS)

    if found is None:  # name the file looked for in full: cron's folder is not yours
        where = os.path.abspath(path)
        missing = "config.missing" if os.path.exists(where) else "config.missing.no_file"
        raise ConfigError(
            msg(missing, key=key, env=env, section=CONFIG_SECTION, where=where),
            hint=msg("config.missing.hint", where=where),
        )
    value, origin = found
    if not value:
        raise ConfigError(
            msg("config.empty", origin=origin),
            hint=hint("config.appid.give", "config.appsecret.give"),
        )
    if value in PLACEHOLDERS:  # not echoed: as the secret, it would be masked
        raise ConfigError(
            msg("config.placeholder", origin=origin, key=key),
            hint=hint("config.appid.replace", "config.appsecret.replace"),
        )
    if key == "appsecret" and not SECRET.fullmatch(value):  # never echo it, nor any of it
        raise ConfigError(
            msg("config.not_secret", origin=origin, problem=_unlike_a_secret(value)),
            hint=msg("config.not_secret.hint", keys=KEYS),
        )
    if len(value) > MAX_CREDENTIAL:
        raise ConfigError(
            msg("config.too_long", origin=origin, length=len(value)),
            hint=hint("config.appid.again", "config.appsecret.again"),
        )
    if " " in value or not value.isprintable():  # never echo the value: it may be the secret
        raise ConfigError(
            msg("config.not_one_word", origin=origin),
            hint=hint("config.appid.one_word", "config.appsecret.one_word"),
        )
    return found


def _unlike_a_secret(value: str) -> str:
    """What is wrong with a would-be AppSecret, said without showing any of it."""
    # a length out of range is said at once: a huge value is not read through
    if 16 <= len(value) <= 64 and (
        kinds := {_kind(char) for char in value if not SECRET.fullmatch(char * 16)}
    ):
        named = (msg(kind) for kind in sorted(kinds, key=_KINDS.index))
        return msg("config.secret.holds", kinds=msg("and").join(named))
    if len(value) == 1:
        return msg("config.secret.one_character")
    return msg("config.secret.characters", count=len(value))


# What a would-be AppSecret may hold, in the order a message names them
_KINDS = (
    "config.secret.line_break",
    "config.secret.quote",
    "config.secret.space",
    "config.secret.other",
)


def _kind(char: str) -> str:
    if len(f"a{char}a".splitlines()) > 1:  # \n, \r, and the others str.splitlines() knows
        return _KINDS[0]
    if char.isspace():
        return _KINDS[2]
    return _KINDS[1] if char in "'\"`" else _KINDS[3]


# What an AppSecret looks like: WeChat's are 32 hex characters, WeCom's 43 of [A-Za-z0-9_-].
_LIKE_A_SECRET = re.compile(r"[0-9A-Fa-f]{32}|[A-Za-z0-9_-]{43}")


def _appid_apart(appid: str, secret: str, origin: str) -> None:
    """Refuse an AppID that is the AppSecret, or looks like one, without showing it: with
    the two swapped, the secret would be in the warning below, the URL and file names."""
    if (
        appid.lower() == secret.lower()
        or _LIKE_A_SECRET.fullmatch(appid)
        or (
            redact(appid, secret) != appid  # it holds 8 or more of the secret, in any case
        )
    ):
        raise ConfigError(msg("config.swapped", origin=origin), hint=msg("config.swapped.hint"))


def _check_plain(value: str, origin: str) -> None:
    """Refuse empty and quoted values: configparser keeps quotes as part of the value."""
    if not value:
        raise ConfigError(msg("config.empty", origin=origin), hint=msg("config.empty.hint"))
    if value[0] in "\"'" or value[-1] in "\"'":
        raise ConfigError(msg("config.quoted", origin=origin), hint=msg("config.quoted.hint"))
    if "\0" in value:
        raise ConfigError(msg("config.nul", origin=origin), hint=msg("config.nul.hint"))


def _ca_bundle(path: str, origin: str) -> str:
    """A CA bundle: a regular file of a bounded size, checked before anything is locked."""
    hint = msg("config.ca.hint")
    if not os.path.isfile(path):  # also refuses FIFOs and devices: libcurl would block
        raise ConfigError(msg("config.ca_missing", origin=origin, path=path), hint=hint)
    if os.path.getsize(path) > MAX_CA_BUNDLE:  # loading it would take longer than a request
        mib = MAX_CA_BUNDLE // 2**20
        raise ConfigError(msg("config.ca_large", origin=origin, path=path, mib=mib), hint=hint)
    return path


def valid_for(value: str, origin: str) -> int:
    """Seconds the token printed must stay valid: whole, at most MAX_VALID_FOR."""
    if not (re.fullmatch(r"[0-9]{1,5}", value) and int(value) <= MAX_VALID_FOR):
        raise ConfigError(
            msg("config.valid_for", origin=origin, value=value, most=MAX_VALID_FOR),
            hint=msg("config.valid_for.hint"),
        )
    return int(value)


def _retries(value: str, origin: str, python: bool = False) -> int:
    if not (re.fullmatch(r"[0-9]{1,2}", value) and int(value) <= MAX_RETRIES):
        raise ConfigError(
            msg("config.retries", origin=origin, value=value, most=MAX_RETRIES),
            hint=msg(
                "config.defaults" if python else "config.retries.hint", retries=DEFAULT_RETRIES
            ),
        )
    return int(value)


def flag(value: bool, origin: str) -> tuple[str, str]:
    """A yes/no flag as the text a config file would give."""
    return ("yes" if value else "no"), origin


def _yes_no(value: str, origin: str) -> bool:
    answers = configparser.ConfigParser.BOOLEAN_STATES  # yes/no, true/false, on/off, 1/0
    if value.lower() not in answers:
        raise ConfigError(
            msg("config.yes_no", origin=origin, value=value), hint=msg("config.yes_no.hint")
        )
    return answers[value.lower()]


def _seconds(value: str, origin: str, python: bool = False) -> float:
    hint = msg("config.defaults" if python else "config.timeout.hint", seconds=DEFAULT_TIMEOUT)
    try:
        seconds = float(value if value.isascii() else "not ASCII")  # Python reads "٣" as 3
    except ValueError:
        raise ConfigError(msg("config.timeout", origin=origin, value=value), hint=hint) from None
    if not 0 < seconds <= http.MAX_TIMEOUT:  # also refuses nan and inf
        raise ConfigError(
            msg("config.timeout.range", origin=origin, value=value, most=http.MAX_TIMEOUT),
            hint=hint,
        )
    return seconds

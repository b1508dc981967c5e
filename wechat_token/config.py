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
        """The first value given (flag, environment, file) and where it came from."""
        for value, origin in (
            (flag, name or "--" + key.replace("_", "-")),
            (environ.get(env) if env else None, env),
            (section.get(key), f"{path}: {key}"),
        ):
            if value is not None:
                return value, origin
        return None

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
    for key in ("ca_bundle", "cache_file"):  # from the config file: relative to its folder
        found = given[key]
        if found and found[1].startswith(f"{path}: "):
            given[key] = (os.path.join(folder, found[0]), found[1])
    if args.api_base:
        bases = [(value, "--api-base") for value in args.api_base]
    elif "api_base" in section:  # a list of URLs separated by spaces, commas or lines
        values = section["api_base"].replace(",", " ").split() or [""]
        bases = [(value, f"{path}: api_base") for value in values]
    else:
        bases = [(base, "api_base") for base in API_BASES]
    try:
        return settings(given, bases, args.force_refresh, environ, warnings, where=path)
    except ConfigError as error:  # it may quote a value: mask any AppSecret given
        for secret in (environ.get("WECHAT_APPSECRET", ""), section.get("appsecret", "")):
            if secret not in PLACEHOLDERS:  # the example's words are not a secret
                error.scrub(secret)
        raise


DEFAULTS = "leave it out for the default; see docs/python.md for each argument"
OFF_PROXY = ("", "--no-proxy")  # given: no proxy, whatever the environment says
OFF_CACHE = ("", "--no-cache")  # given: no cache file


def settings(
    given: Mapping[str, tuple[str, str] | None],
    bases: Sequence[tuple[str, str]],
    force_refresh: bool,
    environ: Mapping[str, str],
    warnings: list[str],
    where: str = "",
) -> Settings:
    """The one place where every setting is checked, for every entry point: `given` maps
    each key to (value as text, where it came from), or None if not given; `bases` are
    the API bases, each with its origin. Anything wrong is a ConfigError."""
    for found in [*given.values(), *bases]:
        if found is not None and found not in (OFF_PROXY, OFF_CACHE):
            _check_plain(*found)
    appid, appid_origin = _credential(given["appid"], "appid", where)
    secret, _ = _credential(given["appsecret"], "appsecret", where)
    _appid_apart(appid, secret, appid_origin)
    if not re.fullmatch(r"wx[0-9a-f]{16}", appid):
        warnings.append(f"{appid_origin}: '{appid}' does not look like an AppID (wx + 16 hex)")
    stable = _yes_no(*given["stable"]) if given["stable"] else False
    endpoint = STABLE_TOKEN if stable else TOKEN
    if not bases:
        raise ConfigError("api_bases must be a list of https:// URLs, not empty", hint=DEFAULTS)
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
        timeout=_seconds(*timeout) if timeout else DEFAULT_TIMEOUT,
        retries=_retries(*retries) if retries else DEFAULT_RETRIES,
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
        raise ConfigError(
            "no home folder to keep the cache in (HOME is not set)",
            hint="set XDG_CACHE_HOME to a folder, or give --cache-file PATH, or run with "
            "--no-cache",
        )
    name = re.sub(r"[^A-Za-z0-9_-]", "_", appid)  # safe as a file name, whatever it holds
    return os.path.join(folder, "wechat_token", f"{name}.{endpoint.name}.json")


def _api_base(value: str, origin: str) -> str:
    """An API base must be an https:// URL, plain enough to put a path after. It is used
    normalised: scheme and host in lower case, no :443, no trailing slash, so that one
    server has one spelling (and one cache entry)."""
    _check_plain(value, origin)
    if http.matched_url(http.HTTPS_URL, value) is None:
        raise ConfigError(
            f"{origin}: '{value}' is not an https:// URL; refusing",
            hint="write it like https://api.weixin.qq.com, without a path",
        )
    host, _, path = value.split("://", 1)[1].partition("/")
    host = re.sub(r"(?<=.)\.(?=(:[0-9]+)?$)", "", host.lower()).removesuffix(":443")  # root dot
    return f"https://{host}/{path.rstrip('/')}" if path.rstrip("/") else f"https://{host}"


def _credential(found: tuple[str, str] | None, key: str, path: str) -> tuple[str, str]:
    """The AppID or AppSecret: required, and a single word."""
    env, page = ("WECHAT_APPID", CONSOLE) if key == "appid" else ("WECHAT_APPSECRET", KEYS)
    if found is None:  # name the file looked for in full: cron's folder is not yours
        where = os.path.abspath(path)
        missing = "" if os.path.exists(where) else " (no such file; --config names another)"
        raise ConfigError(
            f"no {key}: set {env}, or {key} in [{CONFIG_SECTION}] of {where}{missing}",
            hint=f"copy config.ini.example to {where} and fill in the AppID and AppSecret",
        )
    value, origin = found
    if not value:
        raise ConfigError(f"{origin}: empty value", hint=f"give the {key} shown at {page}")
    if value in PLACEHOLDERS:  # not echoed: as the secret, it would be masked
        raise ConfigError(
            f"{origin}: still the example's placeholder, not your {key}",
            hint=f"replace it with the {key} shown at {page}",
        )
    if key == "appsecret" and not SECRET.fullmatch(value):  # never echo it, nor any of it
        raise ConfigError(
            f"{origin}: not an AppSecret: {_unlike_a_secret(value)}",
            hint=f"copy the AppSecret again from {page}: it is 16 to 64 letters, digits, - or _ "
            "(WeChat's are 32 hex characters, WeCom's 43); a stray quote, space or line "
            "break from a paste is the usual cause",
        )
    if len(value) > MAX_CREDENTIAL:
        raise ConfigError(
            f"{origin}: {len(value)} characters long; an AppID has 18",
            hint=f"copy the {key} again from {page}",
        )
    if " " in value or not value.isprintable():  # never echo the value: it may be the secret
        raise ConfigError(
            f"{origin}: contains whitespace or a non-printable character",
            hint=f"copy the {key} again from {page}: it is one word of letters and digits",
        )
    return found


def _unlike_a_secret(value: str) -> str:
    """What is wrong with a would-be AppSecret, said without showing any of it."""
    if not 16 <= len(value) <= 64:  # said at once: a huge value is not read through
        return f"it has {len(value)} character{'' if len(value) == 1 else 's'}"
    kinds = {_kind(char) for char in value if not SECRET.fullmatch(char * 16)}
    if kinds:
        return f"it holds {' and '.join(sorted(kinds))}"
    return f"it has {len(value)} character{'' if len(value) == 1 else 's'}"


def _kind(char: str) -> str:
    if len(f"a{char}a".splitlines()) > 1:  # \n, \r, and the others str.splitlines() knows
        return "a line break"
    if char.isspace():
        return "a space"
    return "a quote" if char in "'\"`" else "another character"


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
        raise ConfigError(
            f"{origin}: that is not an AppID: it looks like an AppSecret",
            hint="an AppID is wx and 16 hex characters; the AppSecret goes in "
            "WECHAT_APPSECRET or appsecret (are the two swapped?)",
        )


def _check_plain(value: str, origin: str) -> None:
    """Refuse empty and quoted values: configparser keeps quotes as part of the value."""
    if not value:
        raise ConfigError(f"{origin}: empty value", hint="give it a value, or leave it out")
    if value[0] in "\"'" or value[-1] in "\"'":
        raise ConfigError(
            f"{origin}: remove the quotes around the value",
            hint="config.ini takes values as written: appid = wx0123456789abcdef",
        )
    if "\0" in value:
        raise ConfigError(f"{origin}: contains a NUL character", hint="retype the value")


def _ca_bundle(path: str, origin: str) -> str:
    """A CA bundle: a regular file of a bounded size, checked before anything is locked."""
    hint = "give the path of a PEM file with the CA certificates to trust"
    if not os.path.isfile(path):  # also refuses FIFOs and devices: libcurl would block
        raise ConfigError(f"{origin}: CA bundle '{path}' not found, or not a file", hint=hint)
    if os.path.getsize(path) > MAX_CA_BUNDLE:  # loading it would take longer than a request
        raise ConfigError(
            f"{origin}: CA bundle '{path}' is larger than {MAX_CA_BUNDLE // 2**20} MiB", hint=hint
        )
    return path


def valid_for(value: str, origin: str) -> int:
    """Seconds the token printed must stay valid: whole, at most MAX_VALID_FOR."""
    if not (re.fullmatch(r"[0-9]{1,5}", value) and int(value) <= MAX_VALID_FOR):
        raise ConfigError(
            f"{origin}: '{value}' must be a whole number of seconds from 0 to {MAX_VALID_FOR}",
            hint="WeChat's tokens live 7200 s: ask for no more than the job needs, e.g. 3900 "
            "for an hourly job",
        )
    return int(value)


def _retries(value: str, origin: str) -> int:
    if not (re.fullmatch(r"[0-9]{1,2}", value) and int(value) <= MAX_RETRIES):
        raise ConfigError(
            f"{origin}: '{value}' must be a whole number from 0 to {MAX_RETRIES}",
            hint=f"the default is {DEFAULT_RETRIES}",
        )
    return int(value)


def flag(value: bool, origin: str) -> tuple[str, str]:
    """A yes/no flag as the text a config file would give."""
    return ("yes" if value else "no"), origin


def _yes_no(value: str, origin: str) -> bool:
    answers = configparser.ConfigParser.BOOLEAN_STATES  # yes/no, true/false, on/off, 1/0
    if value.lower() not in answers:
        raise ConfigError(f"{origin}: '{value}' must be yes or no", hint="the default is no")
    return answers[value.lower()]


def _seconds(value: str, origin: str) -> float:
    hint = f"the default is {DEFAULT_TIMEOUT:g}"
    try:
        seconds = float(value if value.isascii() else "not ASCII")  # Python reads "٣" as 3
    except ValueError:
        raise ConfigError(f"{origin}: '{value}' is not a number of seconds", hint=hint) from None
    if not 0 < seconds <= http.MAX_TIMEOUT:  # also refuses nan and inf
        raise ConfigError(
            f"{origin}: '{value}' must be more than 0 and at most {http.MAX_TIMEOUT}", hint=hint
        )
    return seconds

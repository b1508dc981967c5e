"""The Python API: get_access_token() for one request, TokenCache for the cached token.

TokenCache and the command share one cache file, so a token fetched by either is reused by
the other; threads and processes that ask at once make one request; a refused token is
replaced exactly once, however many callers saw it refused. Errors are this package's
exceptions, with the AppSecret masked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wechat_token
import wechat_token.errors
import wechat_token.fetch
import wechat_token.http
import wechat_token.retry
from wechat_token import AccessToken, TokenCache, get_access_token
from wechat_token.redact import redact

from conftest import CLI, Result, token_cache
from fake_wechat import APPID, SECRET, FakeWeChat

REFUSED = "fake_token_1"


def test_all_names_the_public_api() -> None:
    assert set(wechat_token.__all__) <= set(dir(wechat_token))
    assert {"get_access_token", "WeChatAPIError", "TransportError", "TokenCache"} <= set(
        wechat_token.__all__
    )
    assert issubclass(wechat_token.TLSError, wechat_token.TransportError)
    assert issubclass(wechat_token.ResponseError, wechat_token.TransportError)


# --- get_access_token(): one request ----------------------------------------------------


def test_get_access_token_returns_token_and_lifetime(fake: FakeWeChat, ca_file: str) -> None:
    token, expires_in = get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file)
    assert (token, expires_in) == ("fake_token_1", 7200)
    assert get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file) == AccessToken(
        access_token="fake_token_2", expires_in=7200
    )


def test_get_access_token_stable(fake: FakeWeChat, ca_file: str) -> None:
    token = get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file, stable=True)
    assert token == AccessToken("fake_token_1", 7200)
    assert [request.method for request in fake.requests] == ["POST"]


def test_get_access_token_raises_wechat_error_with_fields(fake: FakeWeChat, ca_file: str) -> None:
    fake.behaviour = 40013
    with pytest.raises(wechat_token.WeChatAPIError) as caught:
        get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file)
    assert (caught.value.errcode, caught.value.errmsg) == (40013, "invalid appid")
    assert str(caught.value) == "errcode 40013: invalid appid"
    assert caught.value.hint == wechat_token.errors.hint_for(40013, "")


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [("502", wechat_token.ResponseError), ("hang", wechat_token.TransportError)],
)
def test_get_access_token_raises_transport_errors(
    fake: FakeWeChat, ca_file: str, behaviour: str, error_class: type[Exception]
) -> None:
    fake.behaviour = behaviour
    with pytest.raises(error_class):
        get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file, timeout=0.3)


def test_get_access_token_masks_the_secret_in_errors_and_log(
    fake: FakeWeChat, ca_file: str
) -> None:
    fake.behaviour = "echo-secret"
    lines: list[str] = []
    with pytest.raises(wechat_token.WeChatAPIError) as caught:
        get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file, log=lines.append)
    assert caught.value.errmsg == "invalid appsecret *** (in capitals: ***)"
    assert str(caught.value) == "errcode 40125: invalid appsecret *** (in capitals: ***)"
    assert lines[0].endswith("&secret=***")
    assert SECRET not in repr(lines)


# --- TokenCache.get(): the command's cache, both ways ----------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "token.json"


def _api_call(fake: FakeWeChat, ca_file: str, token: str) -> int:
    """The fake's API call, as a program would make it: its errcode (0: it worked)."""
    url = f"{fake.base_url}/cgi-bin/get_api_domain_ip?access_token={token}"
    response = wechat_token.http.request(url, ca_file, 5)
    return int(json.loads(response.output).get("errcode", 0))


def test_the_command_fills_the_cache_and_get_reuses_it(
    cli: CLI, fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    assert cli.main("--cache-file", str(cache)) == Result(0, "fake_token_1\n", "")
    token = token_cache(fake, ca_file, cache).get()
    assert token.access_token == "fake_token_1"
    assert 7200 - 5 <= token.expires_in <= 7200
    assert len(fake.requests) == 1


def test_get_fills_the_cache_and_the_command_reuses_it(
    cli: CLI, fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    assert token_cache(fake, ca_file, cache).get().access_token == "fake_token_1"
    assert cli.main("--cache-file", str(cache)) == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 1


def test_a_cached_token_is_not_kept_in_memory_past_the_files_margin(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    """Issue 18, item 11: memory kept a token read from the file to half of the time it had
    left, below the file's margin (here half of a 400 s lifetime): a token the file would
    no longer give out was still served."""
    fake.expires_in = 400  # margin 200 s
    token_cache(fake, ca_file, cache).get()
    entry = json.loads(cache.read_text())
    entry.update(expires_at=time.time() + 250)  # past the margin: the file gives it out
    cache.write_text(json.dumps(entry))
    tokens = token_cache(fake, ca_file, cache)
    assert tokens.get().access_token == "fake_token_1"  # from the file, 250 s left
    cache.write_text(json.dumps({**entry, "value": "newer_token"}))  # another process's
    assert tokens.get().access_token == "newer_token"  # the file decides, not memory
    assert len(fake.requests) == 1


def test_a_warm_get_reads_no_file(fake: FakeWeChat, ca_file: str, cache: Path) -> None:
    tokens = token_cache(fake, ca_file, cache)
    first = tokens.get()
    cache.unlink()  # were it read, the next get() would fetch again
    start = time.perf_counter()
    for _ in range(10000):
        again = tokens.get()
    per_call = (time.perf_counter() - start) / 10000
    assert again.access_token == first.access_token
    assert len(fake.requests) == 1
    assert per_call < 100e-6  # the benchmark measures it; 20 us is the target


def test_get_defaults_share_the_commands_cache_and_fit_a_web_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 18, item 14: with the command's defaults a get() could take 32 s, and gunicorn
    kills a worker at 30 s, before the app gets the TransportError it could handle."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = TokenCache(APPID, SECRET)._settings
    assert settings.api_bases == wechat_token.API_BASES
    assert settings.cache_file == str(tmp_path / "wechat_token" / f"{APPID}.token.json")
    assert (settings.timeout, settings.retries) == (5.0, 1)
    assert wechat_token.retry.time_bound(settings.retries, settings.timeout) == 11 < 20


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_bases": ["http://x"]}, "api_bases: 'http://x' is not an https:// URL; refusing"),
        # Issue 18, item 1: checked by the command's own checks, with their words
        ({"timeout": 0}, "timeout: '0' must be more than 0 and at most 3600"),
        ({"timeout": 3600.5}, "timeout: '3600.5' must be more than 0 and at most 3600"),
        ({"timeout": float("inf")}, "timeout: 'inf' must be more than 0 and at most 3600"),
        ({"retries": 9}, "retries: '9' must be a whole number from 0 to 5"),
        ({"retries": -1}, "retries: '-1' must be a whole number from 0 to 5"),
        ({"retries": 10**10}, "retries: '10000000000' must be a whole number from 0 to 5"),
        # Issue 18: the wrong type of value was a TypeError or IndexError, then or at get()
        ({"api_bases": "https://x"}, "api_bases must be a list of https:// URLs, not str"),
        ({"api_bases": []}, "api_bases must be a list of https:// URLs, not empty"),
        ({"api_bases": [7]}, "api_bases must be a list of https:// URLs, not a list with int"),
        ({"retries": 1.5}, "retries must be an int, not float"),
        ({"retries": True}, "retries must be an int, not bool"),
        ({"timeout": "10"}, "timeout must be a number of seconds, not str"),
        ({"proxy": 3128}, "proxy must be a str or None, not int"),
        ({"cacert": b"/ca.pem"}, "cacert must be a str, a path or None, not bytes"),
        ({"cache_file": 7}, "cache_file must be a str, a path or None, not int"),
        ({"stable": "yes"}, "stable must be True or False, not str"),
    ],
)
def test_bad_options_are_a_config_error(
    fake: FakeWeChat, ca_file: str, cache: Path, options: dict[str, object], message: str
) -> None:
    arguments = {"cache_file": str(cache), "cacert": ca_file, **options}
    with pytest.raises(wechat_token.ConfigError) as caught:
        TokenCache(APPID, SECRET, **arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message
    if {"timeout", "retries"} & set(options):  # the command's defaults are not TokenCache's
        assert (
            caught.value.hint
            == "leave it out for the default; see docs/python.md for each argument"
        )


@pytest.mark.parametrize("which", ["appid", "secret"])
def test_credentials_that_are_not_text_are_a_config_error(which: str) -> None:
    values: dict[str, object] = {"appid": APPID, "secret": SECRET, which: 12345}
    with pytest.raises(wechat_token.ConfigError) as caught:
        TokenCache(values["appid"], values["secret"])  # type: ignore[arg-type]
    assert str(caught.value) == f"{which} must be a str, not int"


def test_paths_may_be_pathlib_paths(fake: FakeWeChat, ca_file: str, cache: Path) -> None:
    """cache_file=Path(...) was a TypeError at get(), while cacert=Path(...) worked."""
    path_to_ca = Path(ca_file)
    tokens = TokenCache(
        APPID, SECRET, cache_file=cache, cacert=path_to_ca, api_bases=[fake.base_url]
    )
    assert tokens.get().access_token == "fake_token_1"
    assert json.loads(cache.read_text())["value"] == "fake_token_1"


def test_errors_have_the_secret_masked(fake: FakeWeChat, ca_file: str, cache: Path) -> None:
    """The secret as sent and in capitals: masked in every part of the exception."""
    fake.behaviour = "echo-secret"
    with pytest.raises(wechat_token.WeChatAPIError) as caught:
        token_cache(fake, ca_file, cache).get()
    error = caught.value
    assert str(error) == "errcode 40125: invalid appsecret *** (in capitals: ***)"
    assert error.args == ("errcode 40125: invalid appsecret *** (in capitals: ***)",)
    assert repr(error) == (
        "WeChatAPIError('errcode 40125: invalid appsecret *** (in capitals: ***)')"
    )
    assert (error.errcode, error.errmsg) == (40125, "invalid appsecret *** (in capitals: ***)")
    assert error.hint == wechat_token.errors.hint_for(40125, "")


# Issue 18, item 1: an AppSecret is 16 to 64 of [A-Za-z0-9_-]; anything else is refused
# before any request, and no part of it is in the exception.
SECRET_HINT = (
    f"copy the AppSecret again from {wechat_token.errors.KEYS}: it is 16 to 64 letters, "
    "digits, - or _ (WeChat's are 32 hex characters, WeCom's 43); a stray quote, space or "
    "line break from a paste is the usual cause"
)


@pytest.mark.parametrize(
    ("secret", "what"),
    [
        ("Q7zXw9Vt+/&%=Q7zXw9Vt", "it holds another character"),
        ("Q7zXw9Vt\\Q7zXw9Vt", "it holds another character"),
        ("Q7zXw9Vté中Q7zXw9Vt", "it holds another character"),
        ('Q7zXw9Vt"Q7zXw9Vt', "it holds a quote"),
        ("Q7zXw9Vt Q7zXw9Vt", "it holds a space"),
        ("Q7zXw9Vt\nQ7zXw9Vt", "it holds a line break"),
        ("Q7zXw9VtQ7zXw9V", "it has 15 characters"),
        ("Q7zXw9Vt" * 8 + "Q", "it has 65 characters"),
    ],
)
@pytest.mark.parametrize("entry", ["TokenCache", "get_access_token"])
def test_a_secret_outside_the_alphabet_is_a_config_error_that_shows_none_of_it(
    fake: FakeWeChat, ca_file: str, cache: Path, secret: str, what: str, entry: str
) -> None:
    def make() -> object:
        if entry == "TokenCache":
            return TokenCache(APPID, secret, cache_file=cache, api_bases=[fake.base_url])
        return get_access_token(APPID, secret, api_base=fake.base_url, cacert=ca_file)

    with pytest.raises(wechat_token.ConfigError) as caught:
        make()
    error = caught.value
    assert error.args == (f"secret: not an AppSecret: {what}",)
    assert error.hint == SECRET_HINT
    assert "Q7z" not in repr(error) + str(error) + error.hint
    assert fake.requests == []
    assert not cache.exists()


# --- TokenCache.replace(): a refused token is replaced exactly once ---------------------------


def test_replacing_the_cached_token_fetches_a_new_one(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    tokens = token_cache(fake, ca_file, cache)
    assert tokens.get().access_token == REFUSED
    assert tokens.replace(REFUSED).access_token == "fake_token_2"
    assert tokens.get().access_token == "fake_token_2"  # remembered
    assert json.loads(cache.read_text())["value"] == "fake_token_2"
    assert len(fake.requests) == 2


def test_replacing_an_older_token_returns_the_current_one_without_a_request(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    first, second = token_cache(fake, ca_file, cache), token_cache(fake, ca_file, cache)
    assert first.get().access_token == REFUSED
    assert second.replace(REFUSED).access_token == "fake_token_2"  # another program's
    assert first.replace(REFUSED).access_token == "fake_token_2"  # read from the cache
    assert len(fake.requests) == 2


def test_a_second_replace_of_the_same_token_reads_no_file(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    """Two threads saw the same token refused: the second gets the first one's new token
    from memory."""
    tokens = token_cache(fake, ca_file, cache)
    assert tokens.get().access_token == REFUSED
    assert tokens.replace(REFUSED).access_token == "fake_token_2"
    cache.unlink()  # were it read, the next replace() would fetch again
    assert tokens.replace(REFUSED).access_token == "fake_token_2"
    assert len(fake.requests) == 2


def test_replacing_with_no_entry_fetches(fake: FakeWeChat, ca_file: str, cache: Path) -> None:
    assert token_cache(fake, ca_file, cache).replace("some_old_token").access_token == REFUSED
    assert len(fake.requests) == 1


def test_stable_does_not_force_a_refresh_when_wechat_hands_back_the_refused_token(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    said: list[str] = []
    tokens = token_cache(fake, ca_file, cache, stable=True, log=said.append)
    assert tokens.get().access_token == REFUSED
    assert tokens.replace(REFUSED).access_token == REFUSED  # the stable token is still that
    assert [json.loads(request.body)["force_refresh"] for request in fake.requests] == [
        False,
        False,
    ]
    assert (
        "WeChat handed back the very token that was refused; not forcing a refresh on its "
        "own: if that token leaked, run with --force-refresh"
    ) in said


def test_the_whole_story_call_refused_replace_call_again(
    fake: FakeWeChat, ca_file: str, cache: Path
) -> None:
    """A program holds a token; another program replaces it; the API refuses the old one
    (40001); replace() gets the current token without a request; the call works."""
    tokens = token_cache(fake, ca_file, cache)
    token = tokens.get().access_token
    assert _api_call(fake, ca_file, token) == 0
    token_cache(fake, ca_file, cache).replace(token)  # elsewhere, someone replaces it
    assert _api_call(fake, ca_file, token) == 40001
    requests = len(fake.requests)
    token = tokens.replace(token).access_token
    assert len(fake.requests) == requests  # someone else already did
    assert _api_call(fake, ca_file, token) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": -1}, "timeout: '-1' must be more than 0 and at most 3600"),
        ({"timeout": 1e400}, "timeout: 'inf' must be more than 0 and at most 3600"),
        ({"api_base": ""}, "api_base: empty value"),
        ({"api_base": "http://x"}, "api_base: 'http://x' is not an https:// URL; refusing"),
        ({"appid": ""}, "appid: empty value"),
        ({"secret": ""}, "secret: empty value"),
        ({"stable": 1}, "stable must be True or False, not int"),
        ({"cacert": 7}, "cacert must be a str, a path or None, not int"),
    ],
)
def test_get_access_token_checks_its_arguments_as_tokencache_does(
    fake: FakeWeChat, options: dict[str, object], message: str
) -> None:
    """Issue 18, item 2: get_access_token checked nothing: timeout=-1 made a request,
    api_base="http://..." was a TransportError, empty credentials were sent to WeChat."""
    arguments: dict[str, object] = {"appid": APPID, "secret": SECRET, **options}
    appid, secret = arguments.pop("appid"), arguments.pop("secret")
    with pytest.raises(wechat_token.ConfigError) as caught:
        get_access_token(appid, secret, **arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert fake.requests == []


def test_a_fifo_as_cacert_is_refused_before_any_lock(tmp_path: Path, cache: Path) -> None:
    """Issue 18, item 2: with a FIFO as cacert, TokenCache and get_access_token blocked
    forever, holding the cache lock."""
    import os

    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    message = f"cacert: CA bundle '{fifo}' not found, or not a file"
    with pytest.raises(wechat_token.ConfigError, match=f"^{message}$"):
        TokenCache(APPID, SECRET, cache_file=cache, cacert=str(fifo))
    with pytest.raises(wechat_token.ConfigError, match=f"^{message}$"):
        get_access_token(APPID, SECRET, cacert=fifo)
    assert not cache.exists()


# --- Any argument: only the documented exceptions ---------------------------------------

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.lists(st.one_of(st.text(), st.integers(), st.none())),
    st.tuples(st.text()),
    st.dictionaries(st.text(), st.text()),
    st.builds(object),
    st.sampled_from([SECRET, SECRET.upper(), [SECRET], "wx" + SECRET[:16], "https://" + SECRET]),
)
DOCUMENTED = (
    wechat_token.ConfigError,
    wechat_token.WeChatAPIError,
    wechat_token.TransportError,  # TLSError and ResponseError are kinds of it
)
TOKEN_CACHE_ARGUMENTS = ["appid", "secret", "stable", "cache_file", "api_bases", "cacert"]
TOKEN_CACHE_ARGUMENTS += ["proxy", "timeout", "retries", "log"]
GET_ARGUMENTS = ["appid", "secret", "api_base", "stable", "force_refresh", "cacert", "timeout"]
GET_ARGUMENTS += ["proxy", "log"]


def _harmless(name: str, value: object, closed_proxy: str) -> object:
    """The value, unless it would send a request beyond 127.0.0.1: a valid proxy URL (a
    bare word is a host name) goes to a closed port on loopback instead."""
    if name != "proxy" or not isinstance(value, str) or not value:
        return value
    valid = wechat_token.http.matched_url(wechat_token.http.PROXY_URL, value) is not None
    return closed_proxy if valid else value


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(TOKEN_CACHE_ARGUMENTS + GET_ARGUMENTS), value=ANYTHING)
def test_any_argument_gives_a_token_or_a_documented_exception_and_never_the_secret(
    fake: FakeWeChat,
    ca_file: str,
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    closed_port: int,
    name: str,
    value: object,
) -> None:
    """Every argument of TokenCache and get_access_token, given any value: the call works,
    or raises one of the documented exceptions, and nothing it raises shows the secret.
    (`env` works in an empty folder: a cache_file named by a relative path goes there.)"""
    closed_proxy = f"http://127.0.0.1:{closed_port}"
    value = _harmless(name, value, closed_proxy)
    try:
        if name in TOKEN_CACHE_ARGUMENTS:
            arguments: dict[str, object] = {
                "appid": APPID,
                "secret": SECRET,
                "cache_file": str(tmp_path / "token.json"),
                "api_bases": [fake.base_url],
                "cacert": ca_file,
                "timeout": 2,
                name: value,
            }
            TokenCache(**arguments).get()  # type: ignore[arg-type]
        if name in GET_ARGUMENTS:
            arguments = {"api_base": fake.base_url, "cacert": ca_file, "timeout": 2, name: value}
            appid, secret = arguments.pop("appid", APPID), arguments.pop("secret", SECRET)
            get_access_token(appid, secret, **arguments)  # type: ignore[arg-type]
    except DOCUMENTED as error:
        shown = f"{error} {error!r} {error.args!r} {error.hint}"
        assert redact(shown, SECRET) == shown, shown


@pytest.mark.parametrize("base", ["https://apí.weixin.qq.com", "https://api.weixin.qq.com/é"])
def test_a_non_ascii_api_base_is_a_config_error_before_any_request(base: str) -> None:
    """It raised UnicodeEncodeError, whose args held the whole URL with the secret."""
    with pytest.raises(wechat_token.ConfigError) as caught:
        get_access_token(APPID, SECRET, api_base=base)
    assert caught.value.args == (f"api_base: '{base}' is not an https:// URL; refusing",)


def test_every_line_log_hears_is_masked_whatever_module_says_it(
    fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    """The cache's and the retries' lines too, not only the request's: a cache path and an
    API base that hold the secret (by mistake) are masked in what `log` hears."""
    said: list[str] = []
    folder = tmp_path / f"cache-{SECRET.lower()}"
    fake.behaviour = -1
    tokens = TokenCache(
        APPID,
        SECRET,
        cache_file=str(folder / "t.json"),
        api_bases=[fake.base_url, f"{fake.base_url}/{SECRET}"],
        cacert=ca_file,
        log=said.append,
    )
    with pytest.raises(wechat_token.ResponseError):  # the second base's path: 404
        tokens.get()
    assert said[0] == f"cache: nothing in {tmp_path}/cache-***/t.json yet"
    assert f"next attempt in 0.5 s, via {fake.base_url}/***" in said
    assert [line for line in said if redact(line, SECRET) != line] == []


class _BadPath:
    """An os.PathLike whose __fspath__ returns neither str nor bytes."""

    def __fspath__(self) -> int:
        return 7


@pytest.mark.parametrize("name", ["cacert", "cache_file"])
def test_a_path_object_that_gives_no_path_is_a_config_error(name: str) -> None:
    with pytest.raises(wechat_token.ConfigError) as caught:
        TokenCache(APPID, SECRET, **{name: _BadPath()})  # type: ignore[arg-type]
    assert caught.value.args == (f"{name} must be a str, a path or None, not _BadPath",)


def test_a_huge_secret_is_refused_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(wechat_token.ConfigError) as caught:
        TokenCache(APPID, "a" * 4_000_000, timeout="x")  # type: ignore[arg-type]
    assert time.monotonic() - start < 1
    assert str(caught.value) == "timeout must be a number of seconds, not str"
    with pytest.raises(wechat_token.ConfigError) as caught:
        TokenCache(APPID, "a" * 4_000_000)
    assert time.monotonic() - start < 2
    assert str(caught.value) == "secret: not an AppSecret: it has 4000000 characters"

"""--proxy, `proxy =` in config.ini, https_proxy and --no-proxy, through a real proxy.

The proxy is tests/loopback_proxy.py, its own process on 127.0.0.1: libcurl sends it
CONNECT, and TLS to the fake WeChat runs end to end through the tunnel, verified as ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trustme

import wechat_token

from conftest import CLI, Result
from fake_wechat import APPID, SECRET, FakeWeChat
from loopback_proxy import running_proxy, unused_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FAST = ("--no-cache", "--retries", "0")


def _target(fake: FakeWeChat) -> str:
    return fake.base_url.removeprefix("https://")


def _tunnels(log: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(entry["target"], entry["status"]) for entry in log]


def test_the_request_goes_through_the_proxy(cli: CLI, fake: FakeWeChat) -> None:
    with running_proxy() as proxy:
        result = cli.main(*FAST, "--proxy", proxy.url, "-v")
        log = proxy.log(at_least=1)
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert f"* proxy: {proxy.url}\n" in result.err
    assert _tunnels(log) == [(_target(fake), 200)]
    assert len(fake.requests) == 1  # it reached the fake, through the tunnel


def test_the_proxy_can_be_set_in_the_config_file(cli: CLI, fake: FakeWeChat) -> None:
    """cron jobs have no https_proxy: the setting has a place in config.ini."""
    with running_proxy() as proxy:
        with open("config.ini", "w", encoding="utf-8") as file:
            file.write(f"[wechat]\nproxy = {proxy.url}\n")
        result = cli.main(*FAST)
        log = proxy.log(at_least=1)
    assert result == Result(0, "fake_token_1\n", "")
    assert _tunnels(log) == [(_target(fake), 200)]


def test_https_proxy_in_the_environment_is_used_and_no_proxy_ignores_it(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    with running_proxy() as proxy:
        env.setenv("https_proxy", proxy.url)
        used = cli.main(*FAST, "-v")
        assert _tunnels(proxy.log(at_least=1)) == [(_target(fake), 200)]
        ignored = cli.main(*FAST, "-v", "--no-proxy")
        assert len(proxy.log()) == 1  # no second tunnel: --no-proxy went direct
    assert (used.code, used.out) == (0, "fake_token_1\n")
    assert f"* proxy: {proxy.url} (https_proxy in the environment)\n" in used.err
    assert ignored.code == 0
    assert "* proxy:" not in ignored.err
    assert len(fake.requests) == 2


def test_the_proxy_password_is_masked(cli: CLI, fake: FakeWeChat) -> None:
    with running_proxy("--auth", "robot:s3cret-pw") as proxy:
        url = proxy.url.replace("http://", "http://robot:s3cret-pw@")
        result = cli.main(*FAST, "--proxy", url, "-v")
        log = proxy.log(at_least=1)
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert f"* proxy: http://robot:***@127.0.0.1:{proxy.port}\n" in result.err
    assert "s3cret-pw" not in result.err
    assert log[0]["auth"] == "robot:s3cret-pw"


@pytest.fixture(scope="module")
def impostor() -> Iterator[FakeWeChat]:
    """A server posing as the fake, with a certificate from a CA nobody here trusts."""
    with FakeWeChat(trustme.CA().issue_cert("127.0.0.1", "localhost")) as server:
        yield server


def test_verification_still_refuses_an_impostor_behind_the_proxy(
    cli: CLI, fake: FakeWeChat, impostor: FakeWeChat
) -> None:
    impostor.reset()
    with running_proxy("--to", _target(impostor)) as proxy:
        result = cli.main(*FAST, "--proxy", proxy.url)
        log = proxy.log(at_least=1)
    host = _target(fake).rsplit(":", 1)[0]
    assert result == Result(
        3,
        "",
        f"error: TLS: the certificate of {host} is not from a CA in {cli.ca_file} (untrusted "
        "CA); nothing was sent\n"
        "hint: behind a corporate proxy that re-signs TLS, give its CA with --cacert; "
        "elsewhere, something is posing as WeChat: do not turn verification off\n",
    )
    assert _tunnels(log) == [(_target(fake), 200)]  # the tunnel was made ...
    assert impostor.requests == []  # ... and nothing went through it
    assert fake.requests == []


@pytest.mark.parametrize(
    ("options", "error", "hint"),
    [
        (
            ("--auth", "robot:pw"),
            "the proxy {url} wants a user and password (HTTP 407) to reach {target}",
            "write them in the proxy's URL, http://user:password@host:port; if they are "
            "there, they are not the right ones",
        ),
        (
            ("--deny",),
            "the proxy {url} refused the tunnel to {target}: HTTP 403",
            "ask the proxy's administrator to allow {target}, or use another proxy "
            "(--no-proxy for none)",
        ),
    ],
    ids=["407", "403"],
)
def test_a_proxy_that_refuses_the_tunnel_is_named_and_not_retried(
    cli: CLI, fake: FakeWeChat, options: tuple[str, ...], error: str, hint: str
) -> None:
    with running_proxy(*options) as proxy:
        result = cli.main("--no-cache", "--retries", "2", "--proxy", proxy.url)
        log = proxy.log(at_least=1)
    names = {"url": proxy.url, "target": _target(fake)}
    assert result == Result(
        3, "", f"error: {error.format(**names)}\nhint: {hint.format(**names)}\n"
    )
    assert len(log) == 1  # asked once: the same proxy gives the same answer
    assert fake.requests == []


def test_a_proxy_that_is_not_there(cli: CLI, fake: FakeWeChat) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    result = cli.main(*FAST, "--proxy", url)
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith(f"error: cannot connect to the proxy {url}: ")
    assert result.err.endswith(
        "hint: check the proxy's address and that it runs; --no-proxy ignores https_proxy\n"
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    "value",
    [
        "ftp://host:21",
        "http://host:port",
        "http://a b:3128",
        "http://host/path",
        "http://me:pa55@word@host:3128",  # an '@' in the password must be %-encoded
        "http://me:pässword@host:3128",  # pycurl takes ASCII only
    ],
)
def test_a_proxy_that_is_not_a_url_is_a_usage_error_and_not_echoed(
    cli: CLI, fake: FakeWeChat, value: str
) -> None:
    assert cli.main(*FAST, "--proxy", value) == Result(
        2,
        "",
        "error: --proxy: not a proxy URL; refusing\n"
        "hint: write it like http://proxy.example.com:3128 or http://user:password@host:port; "
        "%-encode any '@', '/' or ':' in the password, and letters beyond ASCII\n",
    )
    assert fake.requests == []


def test_a_bad_proxy_in_the_environment_is_not_shown(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """libcurl quotes a proxy URL it cannot parse, password and all."""
    env.setenv("https_proxy", "http://me:pa55@word@127.0.0.1:1")
    result = cli.main(*FAST, "-v")
    assert (result.code, result.out) == (3, "")
    assert "pa55" not in result.err
    assert "word@" not in result.err
    assert "* proxy: (a value that is not a proxy URL) (https_proxy in the environment)\n" in (
        result.err
    )


def test_a_bad_proxy_in_the_config_is_not_shown(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text("[wechat]\nproxy = http://me:pa55word@host:port\n")
    result = cli.main(*FAST)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: config.ini: proxy: not a proxy URL; refusing\n")
    assert "pa55word" not in result.err


def test_token_cache_takes_the_same_proxy_setting(
    fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    with running_proxy() as proxy:
        tokens = wechat_token.TokenCache(
            APPID,
            SECRET,
            api_bases=[fake.base_url],
            cacert=ca_file,
            cache_file=str(tmp_path / "token.json"),
            proxy=proxy.url,
        )
        assert tokens.get().access_token == "fake_token_1"
        assert _tunnels(proxy.log(at_least=1)) == [(_target(fake), 200)]
    with pytest.raises(wechat_token.ConfigError, match=r"^proxy: not a proxy URL; refusing$"):
        wechat_token.TokenCache(APPID, SECRET, proxy="http://me:pa55@word@host:1")


# --- Every shape of proxy URL: the password masked, the proxy named -----------------------


def test_a_proxy_url_without_a_scheme_has_its_password_masked_too(
    cli: CLI, fake: FakeWeChat
) -> None:
    """curl takes bob:pw@host:port as http://: -v and the error mask its password too."""
    url = f"bob:Pr0xyPassw0rdXYZ@127.0.0.1:{unused_port()}"
    result = cli.main(*FAST, "-v", "--proxy", url)
    assert (result.code, result.out) == (3, "")
    assert "Pr0xyPassw0rdXYZ" not in result.err
    shown = url.replace("Pr0xyPassw0rdXYZ", "***")
    assert f"* proxy: {shown}\n" in result.err
    assert f"error: cannot connect to the proxy {shown}: " in result.err


@pytest.mark.parametrize("port", ["0", "99999"])
def test_a_proxy_port_out_of_range_is_a_usage_error(cli: CLI, fake: FakeWeChat, port: str) -> None:
    """Refused before libcurl sees it (libcurl would quote the URL, password and all)."""
    result = cli.main(*FAST, "--proxy", f"http://u:SekritProxyPw@127.0.0.1:{port}")
    assert (result.code, result.err.splitlines()[0]) == (
        2,
        "error: --proxy: not a proxy URL; refusing",
    )
    assert "SekritProxyPw" not in result.err


def test_a_non_ascii_proxy_is_a_config_error_from_python_too(ca_file: str) -> None:
    """pycurl takes ASCII only: get_access_token() refuses the rest as the command does."""
    with pytest.raises(wechat_token.ConfigError, match=r"^proxy: not a proxy URL; refusing$"):
        wechat_token.get_access_token(
            APPID, SECRET, cacert=ca_file, proxy="http://u:pässwörd12345@127.0.0.1:1"
        )


def test_no_proxy_does_not_bypass_a_proxy_named_on_purpose(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """no_proxy exempts hosts from the environment's proxy only: a proxy named on purpose
    (whose fixed IP may be the one on WeChat's whitelist) carries every request."""
    env.setenv("no_proxy", "*")
    with running_proxy() as proxy:
        result = cli.main(*FAST, "--proxy", proxy.url)
        log = proxy.log(at_least=1)
    assert result == Result(0, "fake_token_1\n", "")
    assert _tunnels(log) == [(_target(fake), 200)]


def test_verbose_says_no_proxy_may_exempt_a_host_from_the_environments_proxy(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("https_proxy", "http://127.0.0.1:1")
    env.setenv("no_proxy", "127.0.0.1")  # libcurl goes direct, as curl would
    result = cli.main(*FAST, "-v")
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert (
        "* proxy: http://127.0.0.1:1 (https_proxy in the environment; not for the hosts in "
        "no_proxy)\n"
    ) in result.err


def test_a_proxy_that_never_answers_is_named(cli: CLI, fake: FakeWeChat, stalled_port: int) -> None:
    """The message and the hint name the proxy, not WeChat."""
    url = f"http://127.0.0.1:{stalled_port}"
    result = cli.main("--no-cache", "--retries", "0", "--timeout", "0.5", "--proxy", url)
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith(f"error: no answer from the proxy {url} within 0.5 s: ")
    assert result.err.endswith(
        "hint: check the proxy's address and port, and that it speaks HTTP (or the scheme in "
        "its URL); --no-proxy ignores https_proxy\n"
    )
    assert fake.requests == []

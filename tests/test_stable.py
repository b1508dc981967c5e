"""The stable endpoint: POST /cgi-bin/stable_token with a JSON body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wechat_token
from wechat_token.endpoints import STABLE_TOKEN, token_request

from conftest import CLI, Result
from fake_wechat import APPID, SECRET, FakeWeChat


def expected_body(force_refresh: str) -> bytes:
    return (
        f'{{"grant_type": "client_credential", "appid": "{APPID}", '
        f'"secret": "{SECRET}", "force_refresh": {force_refresh}}}'
    ).encode()


@pytest.mark.parametrize(("args", "force_refresh"), [((), "false"), (("--force-refresh",), "true")])
def test_stable_sends_the_exact_body(
    cli: CLI, fake: FakeWeChat, args: tuple[str, ...], force_refresh: str
) -> None:
    assert cli.main("--stable", *args) == Result(0, "fake_token_1\n", "")
    [request] = fake.requests
    assert (request.method, request.path, request.raw_query) == (
        "POST",
        "/cgi-bin/stable_token",
        "",
    )
    assert request.content_type == "application/json"
    assert request.body == expected_body(force_refresh)


def test_stable_token_request_builds_url_and_body() -> None:
    url, body = token_request(STABLE_TOKEN, "https://x.test/", APPID, SECRET)
    assert url == "https://x.test/cgi-bin/stable_token"
    assert body == expected_body("false")


def test_stable_gives_every_caller_the_same_token_until_forced(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main("--stable", "--no-cache").out == "fake_token_1\n"
    assert cli.main("--stable", "--no-cache").out == "fake_token_1\n"  # not invalidated
    assert cli.main("--stable", "--force-refresh").out == "fake_token_2\n"
    assert cli.main("--stable").out == "fake_token_2\n"  # from the cache
    assert len(fake.requests) == 3


def test_stable_and_classic_tokens_are_cached_apart(
    cli: CLI, fake: FakeWeChat, tmp_path: Path
) -> None:
    assert cli.main().out == "fake_token_1\n"
    assert cli.main("--stable").out == "fake_token_2\n"  # not the classic token
    assert cli.main().out == "fake_token_1\n"
    assert cli.main("--stable").out == "fake_token_2\n"
    folder = tmp_path / "cache" / "wechat_token"
    assert sorted(p.name for p in folder.glob("*.json")) == [
        f"{APPID}.stable_token.json",
        f"{APPID}.token.json",
    ]
    assert len(fake.requests) == 2


def test_verbose_shows_the_post_without_the_secret(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("--stable", "-v", "--no-cache")
    assert result.err.splitlines()[0] == f"* POST {fake.base_url}/cgi-bin/stable_token"


def test_stable_from_the_config_file_and_no_stable_flag(cli: CLI, fake: FakeWeChat) -> None:
    Path("config.ini").write_text("[wechat]\nstable = yes\n")
    cli.main("--no-cache")
    cli.main("--no-cache", "--no-stable")
    assert [r.method for r in fake.requests] == ["POST", "GET"]


def test_stable_config_value_must_be_yes_or_no(cli: CLI, fake: FakeWeChat) -> None:
    Path("config.ini").write_text("[wechat]\nstable = maybe\n")
    assert cli.main() == Result(
        2, "", "error: config.ini: stable: 'maybe' must be yes or no\nhint: the default is no\n"
    )
    assert fake.requests == []


def test_stable_errors_are_reported_like_the_classic_ones(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("WECHAT_APPID", "wx00000000000000ff")
    result = cli.main("--stable", "--json")
    assert result.code == 1
    assert json.loads(result.out)["errcode"] == 40013


def test_get_access_token_stable(fake: FakeWeChat, ca_file: str) -> None:
    token = wechat_token.get_access_token(
        APPID, SECRET, api_base=fake.base_url, cacert=ca_file, stable=True
    )
    assert token == wechat_token.AccessToken("fake_token_1", 7200)

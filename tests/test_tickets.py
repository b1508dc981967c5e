"""Tickets (jsapi_ticket, the card api_ticket) and the JS-SDK signature.

A ticket is cached and shared as the token is; it is asked for with the token from the
token's cache; a token that getticket refuses is replaced once, as --replace does it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import wechat_token
import wechat_token.jssdk
import wechat_token.redact
import wechat_token.ticket
from wechat_token import jsapi_signature
from wechat_token.messages import msg

from conftest import CLI, ROOT, Children, Result, token_cache
from fake_wechat import APPID, ERRMSG, SECRET, FakeWeChat

# WeChat's worked example, JS-SDK documentation appendix 1
OFFICIAL: dict[str, str | int] = {
    "ticket": "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-"
    "HhTdfl2fzFy1AOcHKP7qg",
    "noncestr": "Wm3WZYTPz0wzccnW",
    "timestamp": 1414587457,
    "url": "http://mp.weixin.qq.com?params=value",
}
OFFICIAL_SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
OFFICIAL_URL = "http://mp.weixin.qq.com?params=value"
GETTICKET = "/cgi-bin/ticket/getticket"


@pytest.fixture
def cache_file_for_tickets(tmp_path: Path) -> Path:
    """Where cli.main() keeps the jsapi_ticket: beside the default token cache file."""
    return tmp_path / "cache" / "wechat_token" / "wx0123456789abcdef.token.jsapi_ticket.json"


def _paths(fake: FakeWeChat) -> list[str]:
    return [request.path for request in fake.requests]


# --- The signature -----------------------------------------------------------------------


def test_the_official_example_signs_as_wechat_says() -> None:
    assert jsapi_signature(**OFFICIAL) == OFFICIAL_SIGNATURE  # type: ignore[arg-type]


def test_the_fragment_is_not_signed() -> None:
    with_fragment = {**OFFICIAL, "url": OFFICIAL_URL + "#/home?x=1"}
    assert jsapi_signature(**with_fragment) == OFFICIAL_SIGNATURE  # type: ignore[arg-type]


def test_a_timestamp_as_text_signs_the_same() -> None:
    assert jsapi_signature(**{**OFFICIAL, "timestamp": "1414587457"}) == OFFICIAL_SIGNATURE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ticket": ""}, "ticket must be printable ASCII with no spaces"),
        ({"noncestr": "a b"}, "noncestr must be printable ASCII with no spaces"),
        ({"timestamp": -1}, "timestamp must be a whole number of seconds"),
        ({"timestamp": True}, "timestamp must be a whole number of seconds"),
        ({"timestamp": 1.5}, "timestamp must be a whole number of seconds"),
        ({"url": ""}, "url must be the page's URL, printable, before any #"),
        ({"url": None}, "url must be the page's URL, printable, before any #"),
    ],
)
def test_what_cannot_be_signed_is_a_config_error(change: dict[str, object], message: str) -> None:
    with pytest.raises(wechat_token.ConfigError) as caught:
        jsapi_signature(**{**OFFICIAL, **change})  # type: ignore[arg-type]
    assert caught.value.args == (message,)


def test_sign_reproduces_the_official_example_offline(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main(
        "sign",
        OFFICIAL_URL + "#section",
        "--ticket",
        str(OFFICIAL["ticket"]),
        "--noncestr",
        str(OFFICIAL["noncestr"]),
        "--timestamp",
        str(OFFICIAL["timestamp"]),
    )
    fields = {
        "appId": APPID,
        "timestamp": 1414587457,
        "nonceStr": "Wm3WZYTPz0wzccnW",
        "signature": OFFICIAL_SIGNATURE,
        "url": OFFICIAL_URL,
    }
    assert result == Result(0, json.dumps(fields) + "\n", "")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("url", "warning"),
    [
        (
            "https%3A%2F%2Fexample.com%2Fpage",
            "warning: sign: the URL looks percent-encoded as a whole (https%3A%2F%2F...): "
            "sign it as the page's address bar shows it, decoded\n",
        ),
        (
            "example.com/page",
            "warning: sign: the URL has no http:// or https://: sign the page's full URL\n",
        ),
    ],
)
def test_sign_warns_of_a_url_that_will_not_match(cli: CLI, url: str, warning: str) -> None:
    result = cli.main("sign", url, "--ticket", "t", "--noncestr", "n", "--timestamp", "1")
    assert (result.code, result.err) == (0, warning)


def test_sign_says_under_v_that_the_fragment_is_not_signed(cli: CLI) -> None:
    result = cli.main("-v", "sign", "https://a.example/#x", "--ticket", "t", "--noncestr", "n")
    assert result.code == 0
    assert "* sign: the #fragment is not signed: signing the URL without it\n" in result.err


def test_sign_with_the_cached_ticket_and_a_random_nonce(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("sign", "https://a.example/page")
    fields = json.loads(result.out)
    assert result.code == 0
    assert len(fields["nonceStr"]) == 16
    assert fields["nonceStr"].isalnum()
    assert fields["signature"] == jsapi_signature(
        ticket="fake_jsapi_ticket_1",
        noncestr=fields["nonceStr"],
        timestamp=fields["timestamp"],
        url="https://a.example/page",
    )
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET]


# --- The ticket, from the command ---------------------------------------------------------


def test_a_ticket_is_fetched_once_and_then_read_from_the_cache(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main("ticket", "jsapi") == Result(0, "fake_jsapi_ticket_1\n", "")
    assert cli.main("ticket", "jsapi") == Result(0, "fake_jsapi_ticket_1\n", "")
    assert cli.main() == Result(0, "fake_token_1\n", "")  # the token it used, cached too
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET]
    assert fake.requests[1].query == {"access_token": "fake_token_1", "type": "jsapi"}


def test_the_card_ticket_is_its_own_credential(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main("ticket", "jsapi").out == "fake_jsapi_ticket_1\n"
    assert cli.main("ticket", "wx_card").out == "fake_wx_card_ticket_2\n"
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET, GETTICKET]


def test_ticket_as_json(cli: CLI) -> None:
    result = cli.main("ticket", "jsapi", "--json")
    fields = json.loads(result.out)
    assert result.code == 0
    assert (fields["ticket"], fields["expires_in"], fields["cached"]) == (
        "fake_jsapi_ticket_1",
        7200,
        False,
    )
    assert list(fields) == ["ticket", "expires_in", "expires_at", "cached"]


def test_a_revoked_token_is_replaced_once_and_the_ticket_asked_again(
    cli: CLI, fake: FakeWeChat
) -> None:
    """Another program took a new token: the cached one is refused by getticket (40001).
    It is replaced as --replace does it, and the ticket asked for once more; -v says the
    new token invalidates the one other programs hold."""
    assert cli.main().out == "fake_token_1\n"
    fake.revoke_tokens()
    fake.requests.clear()
    result = cli.main("-v", "ticket", "jsapi")
    assert (result.code, result.out) == (0, "fake_jsapi_ticket_1\n")
    assert _paths(fake) == [GETTICKET, "/cgi-bin/token", GETTICKET]
    assert [request.query["access_token"] for request in fake.requests[::2]] == [
        "fake_token_1",
        "fake_token_2",
    ]
    assert (
        "* getticket: errcode 40001: the access_token it was given is no longer good; "
        "replacing it, once (a new token from /cgi-bin/token invalidates the one other "
        "programs hold, within 5 minutes; --stable does not)\n"
    ) in result.err
    assert "fake_token_" not in result.err  # the token is as secret as the AppSecret


def test_a_token_refused_again_is_not_asked_for_a_third_time(cli: CLI, fake: FakeWeChat) -> None:
    """getticket refuses the new token too: the run stops there, it never loops."""
    assert cli.main().out == "fake_token_1\n"
    fake.revoke_tokens()
    fake.requests.clear()
    fake.ticket_behaviour = 40001  # whatever the token
    result = cli.main("ticket", "jsapi")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"error: errcode 40001: {ERRMSG[40001]}\nhint: {msg('ticket.refused_again')}\n"
    )
    assert _paths(fake) == [GETTICKET, "/cgi-bin/token", GETTICKET]


@pytest.mark.parametrize(("errcode", "requests"), [(45009, 1), (40097, 1)])
def test_getticket_refusals_are_errors_with_hints(
    cli: CLI, fake: FakeWeChat, errcode: int, requests: int
) -> None:
    fake.ticket_behaviour = errcode
    result = cli.main("ticket", "jsapi", "--retries", "0")
    assert (result.code, result.out) == (1, "")
    errmsg = ERRMSG.get(errcode, "")
    shown = f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}"
    hint = msg(wechat_token.ticket._HINTS[errcode])
    assert result.err == f"error: {shown}\nhint: {hint}\n"
    assert _paths(fake).count(GETTICKET) == requests


def test_a_busy_getticket_is_retried(cli: CLI, fake: FakeWeChat) -> None:
    fake.ticket_behaviour = [-1, "ok"]
    assert cli.main("ticket", "jsapi") == Result(0, "fake_jsapi_ticket_1\n", "")
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET, GETTICKET]


def test_ticket_usage_errors_name_no_value(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main("ticket", SECRET) == Result(
        2, "", "error: usage: wechat-token ticket jsapi, or ticket wx_card\nhint: see --help\n"
    )
    assert cli.main(SECRET) == Result(
        2, "", "error: unrecognized arguments: (values)\nhint: see --help\n"
    )
    assert cli.main("ticket", "jsapi", "--ticket", "x") == Result(
        2, "", "error: --ticket is for the sign command\nhint: see --help\n"
    )
    assert fake.requests == []


# --- The ticket, from Python ----------------------------------------------------------------


def test_tokencache_ticket_is_cached_in_memory_and_in_the_file(
    fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    tokens = token_cache(fake, ca_file, cache)
    assert tokens.ticket("jsapi") == wechat_token.Ticket("fake_jsapi_ticket_1", 7200)
    assert tokens.ticket().ticket == "fake_jsapi_ticket_1"  # from memory
    assert token_cache(fake, ca_file, cache).ticket().ticket == "fake_jsapi_ticket_1"  # the file
    assert (tmp_path / "token.jsapi_ticket.json").exists()
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET]


@pytest.mark.parametrize("kind", ["card", "", None, 1])
def test_tokencache_ticket_of_an_unknown_kind(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, kind: object
) -> None:
    with pytest.raises(wechat_token.ConfigError):
        token_cache(fake, ca_file, tmp_path / "t.json").ticket(kind)  # type: ignore[arg-type]
    assert fake.requests == []


def test_wx_config_signs_the_page_with_the_cached_ticket(
    fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    said: list[str] = []
    tokens = token_cache(fake, ca_file, tmp_path / "t.json", log=said.append)
    fields = tokens.wx_config("https://a.example/page#top")
    assert list(fields) == ["appId", "timestamp", "nonceStr", "signature", "url"]
    assert (fields["appId"], fields["url"]) == (APPID, "https://a.example/page")
    assert fields["signature"] == jsapi_signature(
        ticket="fake_jsapi_ticket_1",
        noncestr=str(fields["nonceStr"]),
        timestamp=fields["timestamp"],
        url="https://a.example/page",
    )
    assert "wx_config: the #fragment is not signed: signing the URL without it" in said


# --- Crowds ---------------------------------------------------------------------------------

CROWD = """
import sys, threading
sys.path.insert(0, {root!r})
from wechat_token import TokenCache
tokens = TokenCache({appid!r}, {secret!r}, cache_file={cache!r}, api_bases=[{base!r}],
                    cacert={ca!r})
got = []
threads = [threading.Thread(target=lambda: got.append(tokens.ticket("jsapi").ticket))
           for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join(30)
print(" ".join(got))
"""


def _crowd(fake: FakeWeChat, ca_file: str, cache: Path, children: Children) -> list[Result]:
    code = CROWD.format(
        root=str(ROOT), appid=APPID, secret=SECRET, cache=str(cache), base=fake.base_url, ca=ca_file
    )
    procs = [children.start([sys.executable, "-c", code]) for _ in range(8)]
    return [children.finish(proc) for proc in procs]


def test_eight_processes_of_four_threads_make_one_getticket_and_one_token_request(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    fake.behaviour = "slow"
    results = _crowd(fake, ca_file, tmp_path / "token.json", children)
    assert [(r.code, r.out.split(), r.err) for r in results] == [
        (0, ["fake_jsapi_ticket_1"] * 4, "")
    ] * 8
    assert sorted(_paths(fake)) == sorted(["/cgi-bin/token", GETTICKET])


def test_eight_processes_on_a_revoked_token_replace_it_once(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    cache = tmp_path / "token.json"
    assert token_cache(fake, ca_file, cache).get().access_token == "fake_token_1"
    fake.revoke_tokens()
    fake.requests.clear()
    results = _crowd(fake, ca_file, cache, children)
    assert [(r.code, r.out.split(), r.err) for r in results] == [
        (0, ["fake_jsapi_ticket_1"] * 4, "")
    ] * 8
    assert _paths(fake) == [GETTICKET, "/cgi-bin/token", GETTICKET]


def test_a_warm_ticket_reads_no_file(fake: FakeWeChat, ca_file: str, tmp_path: Path) -> None:
    """As fast as a warm get(): from memory, with no file read and no request."""
    cache = tmp_path / "token.json"
    tokens = token_cache(fake, ca_file, cache)
    first = tokens.ticket()
    (tmp_path / "token.jsapi_ticket.json").unlink()  # were it read, a fetch would follow
    start = time.perf_counter()
    for _ in range(10000):
        again = tokens.ticket()
    per_call = (time.perf_counter() - start) / 10000
    assert again.ticket == first.ticket
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET]
    assert per_call < 100e-6


def test_a_shared_getticket_refusal_keeps_its_own_hint(cli: CLI, fake: FakeWeChat) -> None:
    """The second caller gets the first one's answer from the cache, and the same hint:
    getticket's, not the token's for that errcode."""
    fake.ticket_behaviour = 45009
    first = cli.main("ticket", "jsapi")
    second = cli.main("ticket", "jsapi")
    hint = f"hint: {msg('ticket.hint.45009')}\n"
    assert (first.code, first.err.endswith(hint)) == (1, True)
    assert (second.code, second.err.endswith(hint)) == (1, True)
    assert "WeChat's answer to another caller" in second.err
    assert _paths(fake).count(GETTICKET) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timestamp", "abc"), "timestamp must be a whole number of seconds"),
        (("--noncestr", "a b"), "noncestr must be printable ASCII with no spaces"),
    ],
)
def test_sign_checks_its_arguments_before_any_request(
    cli: CLI, fake: FakeWeChat, args: tuple[str, ...], message: str
) -> None:
    result = cli.main("sign", "https://a.example/", *args)
    assert result == Result(
        2, "", f"error: {message}\nhint: see docs/jssdk.md for what wx.config signs\n"
    )
    assert fake.requests == []


def test_sign_refuses_a_url_with_nothing_before_its_fragment(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("sign", "#top", "--ticket", "t")
    assert result.code == 2
    assert result.err.startswith("error: url must be the page's URL, printable, before any #\n")


def test_a_kind_that_is_not_one_is_not_repeated(
    fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    with pytest.raises(wechat_token.ConfigError) as caught:
        token_cache(fake, ca_file, tmp_path / "t.json").ticket(SECRET)
    assert caught.value.args == ("kind must be 'jsapi' or 'wx_card'",)


def test_a_huge_timestamp_is_a_config_error() -> None:
    with pytest.raises(wechat_token.ConfigError):
        jsapi_signature(ticket="t", noncestr="n", timestamp=10**5000, url="https://a/")


def test_a_random_nonce_is_drawn_again_when_the_signature_holds_the_secret() -> None:
    """With a secret that shares 8 characters with the official example's signature, the
    example's nonce is given up for another: the signature printed is never masked."""
    secret = OFFICIAL_SIGNATURE[:16]
    fields = wechat_token.jssdk.wx_config_fields(
        APPID, str(OFFICIAL["ticket"]), OFFICIAL_URL, timestamp=1414587457, secret=secret
    )
    assert wechat_token.redact.redact(str(fields["signature"]), secret) == fields["signature"]


def test_valid_for_with_a_ticket_does_not_replace_the_token(
    cli: CLI, fake: FakeWeChat, tmp_path: Path
) -> None:
    """The token needs to last only for the getticket request; --valid-for is the ticket's."""
    fake.expires_in = 4000
    assert cli.main().out == "fake_token_1\n"
    assert cli.main("ticket", "jsapi", "--valid-for", "3900").out == "fake_jsapi_ticket_1\n"
    assert _paths(fake) == ["/cgi-bin/token", GETTICKET]


def test_a_getticket_that_refuses_every_token_replaces_it_once_in_5_minutes(
    cli: CLI, fake: FakeWeChat, cache_file_for_tickets: Path
) -> None:
    """A new token refused at once is not stale: the refusal is kept 5 minutes, so a page
    that asks again and again does not cut a new token (and invalidate the others') each
    time. An outside review saw one every 5 s."""
    assert cli.main().out == "fake_token_1\n"
    fake.revoke_tokens()
    fake.ticket_behaviour = 40001
    assert cli.main("ticket", "jsapi").code == 1
    entry = json.loads(cache_file_for_tickets.read_text())
    entry["refusal"]["at"] -= 60  # a minute later: still the answer
    cache_file_for_tickets.write_text(json.dumps(entry))
    again = cli.main("ticket", "jsapi")
    assert again.code == 1
    assert "it is asked again 300 s after" in again.err
    assert _paths(fake).count("/cgi-bin/token") == 2  # the first, and the one replacement

"""The command's contract: what `wechat-token` prints, where, and how it exits.

stdout holds the token alone, or with --json one JSON object; stderr holds the messages:
`error:` then `hint:` after a failure, `* ` lines with -v, `warning:` lines. Exit codes:
0 token, 1 WeChat's errcode, 2 usage or configuration, 3 network, TLS, HTTP or not a token,
74 stdout cannot take the token, 141 stdout closed early. Most runs are in-process
(cli.main); a real process only where the streams or the interpreter are the point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import wechat_token
import wechat_token.cli
import wechat_token.errors
import wechat_token.messages
import wechat_token.output
from wechat_token.endpoints import STABLE_TOKEN, token_request

from conftest import CLI, COMMAND, OUTPUTS, Result, VirtualClock
from fake_wechat import APPID, ERRMSG, SECRET, WHITELIST_IP, FakeWeChat

# --- The token ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["main", "run"])
def test_prints_the_token_alone_and_nothing_else(cli: CLI, fake: FakeWeChat, how: str) -> None:
    """In-process (main returns the exit code) and as a user runs it."""
    assert getattr(cli, how)() == Result(0, "fake_token_1\n", "")
    # One GET, with the three parameters of the PHP URL, URL-encoded.
    assert [(r.method, r.path, r.query) for r in fake.requests] == [
        (
            "GET",
            "/cgi-bin/token",
            {"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        )
    ]
    # An AppSecret's characters are the same URL-encoded: sent as it is.
    assert fake.requests[0].raw_query == (
        f"grant_type=client_credential&appid={APPID}&secret={SECRET}"
    )


def test_json_success_is_one_object(cli: CLI, fake: FakeWeChat) -> None:
    fake.expires_in = 300  # passed through, not assumed to be 7200
    before = int(time.time())
    result = cli.main("--json")
    after = int(time.time())
    assert (result.code, result.err) == (0, "")
    assert result.out.count("\n") == 1
    answer = json.loads(result.out)
    assert list(answer) == ["access_token", "expires_in", "expires_at", "cached"]
    assert answer["cached"] is False
    assert answer["access_token"] == "fake_token_1"
    assert answer["expires_in"] == 300
    assert before + 300 <= answer["expires_at"] <= after + 300


def test_verbose_shows_url_masked_status_address_and_timings(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("-v", "--no-cache")  # the cache's own notes: see test_cache.py
    port = fake.base_url.rsplit(":", 1)[1]
    assert (result.code, result.out) == (0, "fake_token_1\n")
    lines = result.err.splitlines()
    query = f"grant_type=client_credential&appid={APPID}&secret=***"
    assert lines[:3] == [
        f"* GET {fake.base_url}/cgi-bin/token?{query}",
        f"* CA bundle: {cli.ca_file}",
        f"* HTTP 200 from 127.0.0.1:{port}",
    ]
    ms = r"\d+\.\d ms"
    assert re.fullmatch(
        f"\\* time since start: DNS {ms}, connect {ms}, TLS handshake {ms}, "
        f"first byte {ms}, total {ms}",
        lines[3],
    )
    assert len(lines) == 4


def test_errcode_zero_with_a_token_is_success(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = b'{"errcode":0,"errmsg":"ok","access_token":"tok","expires_in":7200}'
    assert cli.main() == Result(0, "tok\n", "")


def test_a_lifetime_over_a_day_is_cut_to_a_day(cli: CLI, fake: FakeWeChat) -> None:
    """Even 400 digits (now + 10**400 would overflow): a lifetime over a day is not trusted."""
    fake.behaviour = b'{"access_token":"abc","expires_in":1' + b"0" * 400 + b"}"
    result = cli.main("--json")
    assert result.code == 0
    answer = json.loads(result.out)
    assert (answer["access_token"], answer["expires_in"]) == ("abc", 86400)


# --- The stable endpoint: POST /cgi-bin/stable_token -----------------------------------------


def stable_body(force_refresh: str) -> bytes:
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
    assert request.body == stable_body(force_refresh)


def test_stable_token_request_builds_url_and_body() -> None:
    url, body = token_request(STABLE_TOKEN, "https://x.test/", APPID, SECRET)
    assert url == "https://x.test/cgi-bin/stable_token"
    assert body == stable_body("false")


def test_stable_gives_every_caller_the_same_token_until_forced(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main("--stable", "--no-cache").out == "fake_token_1\n"
    assert cli.main("--stable", "--no-cache").out == "fake_token_1\n"  # not invalidated
    assert cli.main("--stable", "--force-refresh").out == "fake_token_2\n"
    assert cli.main("--stable").out == "fake_token_2\n"  # from the cache
    assert len(fake.requests) == 3


def test_verbose_shows_the_post_without_the_secret(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("--stable", "-v", "--no-cache")
    assert result.err.splitlines()[0] == f"* POST {fake.base_url}/cgi-bin/stable_token"


def test_stable_errors_are_reported_like_the_classic_ones(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("WECHAT_APPID", "wx00000000000000ff")
    result = cli.main("--stable", "--json")
    assert result.code == 1
    assert json.loads(result.out)["errcode"] == 40013


# --- WeChat refuses: exit 1, the errcode, and a hint -------------------------------------

# errcode -> a phrase its hint must contain (the console page, the IP WeChat saw, ...)
WECHAT_ERRORS = [
    (-1, "wait a few seconds"),
    (40001, "another program fetched a newer token"),
    (40013, "check the AppID at 微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务"),
    (40125, "check or reset the AppSecret at 微信开发者平台 (developers.weixin.qq.com/platform)"),
    (40164, f"add {WHITELIST_IP} to the IP whitelist (API IP 白名单) at 微信开发者平台"),
    (45009, "daily quota"),
    (61004, f"add {WHITELIST_IP} to the IP whitelist (API IP 白名单)"),  # other wording
    (99999, "全局返回码"),  # unknown errcode: where to look it up
]


@pytest.mark.parametrize(("errcode", "phrase"), WECHAT_ERRORS)
def test_wechat_error_exit_1_with_errcode_and_hint(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, errcode: int, phrase: str
) -> None:
    fake.behaviour = errcode
    result = cli.main(clock=clock)  # -1 is retried: see test_retries.py
    assert (result.code, result.out) == (1, "")
    error, hint = result.err.splitlines()
    errmsg = ERRMSG.get(errcode, "")
    assert error == (
        f"error: errcode {errcode}: {errmsg}" if errmsg else f"error: errcode {errcode}"
    )
    assert hint.startswith("hint: ")
    assert phrase in hint


@pytest.mark.parametrize(
    ("errmsg", "ip"),
    [
        ("invalid ip 2001:db8::7 ipv6 2001:db8::7, not in whitelist", "2001:db8::7"),
        ("ip not in whitelist", "this machine's public IP"),  # no address to name
    ],
)
def test_whitelist_hint_names_the_address_wechat_saw(errmsg: str, ip: str) -> None:
    assert wechat_token.errors.hint_for(40164, errmsg).startswith(f"add {ip} to the IP whitelist")


# Errcodes fixed in WeChat's console: the hint names the page where it is now, as the
# console names it; the AppID and AppSecret ones also say where a Mini Program has them.
CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
KEYS = f"{CONSOLE} → 开发密钥"  # the AppSecret and the API IP whitelist
MINI_PROGRAM = "(a Mini Program's: 微信公众平台 → 管理 → 开发管理 → 开发设置)"


@pytest.mark.parametrize(
    ("errcode", "page", "mini_program"),
    [
        (40001, KEYS, False),
        (40013, CONSOLE, True),
        (40125, KEYS, True),
        (40164, KEYS, False),
        (40243, KEYS, False),
        (61004, KEYS, False),
    ],
)
def test_hint_names_the_console_page_where_it_is_now(
    errcode: int, page: str, mini_program: bool
) -> None:
    hint = wechat_token.errors.hint_for(errcode, ERRMSG.get(errcode, ""))
    assert f" {page}" in hint
    assert (KEYS in hint) == (page == KEYS)
    assert (MINI_PROGRAM in hint) == mini_program
    assert ("API IP 白名单" in hint) == (errcode in (40164, 61004))
    assert "基本配置" not in hint
    assert "设置与开发" not in hint


@pytest.mark.parametrize("how", ["main", "run"])
def test_wechat_error_as_json(cli: CLI, fake: FakeWeChat, how: str) -> None:
    fake.behaviour = 40164
    result = getattr(cli, how)("--json")
    assert result.code == 1
    assert json.loads(result.out) == {
        "errcode": 40164,
        "errmsg": ERRMSG[40164],
        "hint": wechat_token.errors.hint_for(40164, ERRMSG[40164]),
        "kind": "refused",
    }
    assert result.err.startswith("error: errcode 40164: ")


def test_wrong_secret_is_40125_from_the_fake(cli: CLI, env: pytest.MonkeyPatch) -> None:
    env.setenv("WECHAT_APPSECRET", "another-secret-9876543210")
    result = cli.main()
    assert result.code == 1
    assert result.err.startswith("error: errcode 40125: invalid appsecret\n")


def test_an_empty_errmsg_leaves_no_dangling_colon(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = b'{"errcode": 40013, "errmsg": ""}'
    result = cli.main()
    assert result.err.splitlines()[0] == "error: errcode 40013"


# --- Not a token: exit 3, a short excerpt, and what may be in the way ---------------------

EXCERPT_1000 = "'" + "x" * 80 + "...'"

# The hint line after each failure, by the kind of failure
RESPONSE_HINT = (
    "hint: this is not WeChat's API answering: check --api-base, and whether a proxy or a "
    "Wi-Fi login page is in the way"
)
PORTAL_HINT = (
    "hint: a Wi-Fi or office login page (captive portal) or a proxy answered instead of "
    "WeChat: log in with a browser on this machine, or set the proxy this network needs "
    "(https_proxy, or proxy in config.ini)"
)
NETWORK_HINT = (
    "hint: check that this machine reaches WeChat (DNS, firewall, proxy); "
    "if it usually does, try again in a minute"
)

# what the server sends -> the exact error (exit 3)
BAD_ANSWERS = [
    ("redirect", "HTTP 302 instead of 200: (empty body)"),  # not followed
    ("huge", "response larger than 64 KiB from 127.0.0.1: refused"),
    ("huge-chunked", "response larger than 64 KiB from 127.0.0.1: refused"),  # no length
    ("truncated", "the answer from 127.0.0.1 was cut off: end of response with 80 bytes missing"),
    ("empty", "empty response (HTTP 200 with no body)"),
    (b"  \n", "empty response (HTTP 200 with no body)"),
    (b"x" * 1000, f"response is not JSON: {EXCERPT_1000}"),  # a short excerpt only
    (
        b'{"access_token": "tok", "expires_in": 72',  # cut JSON
        """response is not JSON: '{"access_token": "tok", "expires_in": 72'""",
    ),
    (b"[" * 60_000, "response is not JSON: '" + "[" * 80 + "...'"),  # RecursionError deep
    (b"\xff\xfe\xfa not utf-8", "response is not JSON: '\ufffd\ufffd\ufffd not utf-8'"),
    # Not web pages, though they start with '<': quoted like any text that is not JSON
    (b"[1, 2]", "response is not a JSON object: '[1, 2]'"),
    (
        b'{"expires_in": 7200}',
        """no usable access_token in the response: '{"expires_in": 7200}'""",
    ),
    (
        b'{"access_token": "", "expires_in": 7200}',
        """no usable access_token in the response: '{"access_token": "", "expires_in": 7200}'""",
    ),
    (
        b'{"access_token": 42, "expires_in": 7200}',
        """no usable access_token in the response: '{"access_token": 42, "expires_in": 7200}'""",
    ),
    (
        b'{"access_token": "a b", "expires_in": 7200}',
        "no usable access_token in the response: "
        """'{"access_token": "a b", "expires_in": 7200}'""",
    ),
    (
        b'{"access_token": "t\\u001b[2J", "expires_in": 7200}',
        "no usable access_token in the response: "
        """'{"access_token": "t\\\\u001b[2J", "expires_in": 7200}'""",
    ),
    (
        b'{"access_token": "tok"}',
        """no usable expires_in in the response: '{"access_token": "tok"}'""",
    ),
    (
        b'{"access_token": "tok", "expires_in": "7200"}',
        """no usable expires_in in the response: '{"access_token": "tok", "expires_in": "7200"}'""",
    ),
    (
        b'{"access_token": "tok", "expires_in": true}',
        """no usable expires_in in the response: '{"access_token": "tok", "expires_in": true}'""",
    ),
    (
        b'{"access_token": "tok", "expires_in": 0}',
        """no usable expires_in in the response: '{"access_token": "tok", "expires_in": 0}'""",
    ),
    (
        b'{"access_token": "tok", "expires_in": 7200.5}',
        """no usable expires_in in the response: '{"access_token": "tok", "expires_in": 7200.5}'""",
    ),
    (
        b'{"errcode": "40013", "errmsg": "x"}',
        """malformed error answer: '{"errcode": "40013", "errmsg": "x"}'""",
    ),
    (
        b'{"errcode": 40013, "errmsg": 5}',
        """malformed error answer: '{"errcode": 40013, "errmsg": 5}'""",
    ),
]


@pytest.mark.parametrize(("behaviour", "message"), BAD_ANSWERS)
def test_bad_answer_exit_3_with_a_short_excerpt(
    cli: CLI, fake: FakeWeChat, behaviour: str | bytes, message: str
) -> None:
    fake.behaviour = behaviour
    result = cli.main("--retries", "0")  # which answers are retried: see test_retries.py
    if behaviour == "truncated":  # no whole answer: it says where it asked
        hint = NETWORK_HINT.replace("hint: ", f"hint: tried {fake.base_url}: ")
    elif behaviour == "redirect":  # WeChat's API never redirects
        hint = PORTAL_HINT
    else:
        hint = RESPONSE_HINT
    assert result == Result(3, "", f"error: {message}\n{hint}\n")
    assert len(fake.requests) == 1  # a redirect is not followed


def _page(title: str) -> bytes:
    return f"<!DOCTYPE html>\n<html><head><title>{title}</title></head></html>".encode()


# A web page where WeChat's answer should be (a Wi-Fi login, a proxy's error page) is
# named by its status, Content-Type, size and title, never quoted; exit 3 with PORTAL_HINT.
# (status, body, Content-Type) -> the exact error
WEB_PAGES = [
    # a page by its first character (JSON never starts with '<'), or by its Content-Type
    (
        (200, b"<p>Welcome</p>", "application/json"),
        "HTTP 200: a web page, not WeChat's answer (application/json, 14 bytes)",
    ),
    (
        (200, b"\xef\xbb\xbf<html><title>Hotel</title>", "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 29 bytes, titled 'Hotel')",
    ),
    (
        (200, b"  <!-- portal --><html>", "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 23 bytes)",
    ),
    (
        (200, b"<?xml version='1.0'?><!DOCTYPE html><html/>", "application/xhtml+xml"),
        "HTTP 200: a web page, not WeChat's answer (application/xhtml+xml, 43 bytes)",
    ),
    (
        (200, b"Please log in", "text/html; charset=utf-8"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 13 bytes)",
    ),
    ("html", "HTTP 200: a web page, not WeChat's answer (text/html, 47 bytes)"),
    (
        (404, b"<html>Not Found</html>", "text/html"),
        "HTTP 404: a web page, not WeChat's answer (text/html, 22 bytes)",
    ),
    (
        (200, b"<!DOCTYPE html>\n<title>Log in</title>", "text/html; charset=utf-8"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 37 bytes, titled 'Log in')",
    ),
    (  # what the server calls it is named as it is: a page is a page, whatever the type
        (200, b"<!DOCTYPE html>\n<title>Log in</title>", "application/json"),
        "HTTP 200: a web page, not WeChat's answer (application/json, 37 bytes, titled 'Log in')",
    ),
    (
        (200, b"<html><body>Sign in</body></html>", ""),
        "HTTP 200: a web page, not WeChat's answer (no Content-Type, 33 bytes)",
    ),
    (  # tags in any case, after white space; white space in the title made one space
        (403, b"\r\n  <HEAD><TITLE lang=en>Access \n\t Denied </TITLE>", "text/html"),
        "HTTP 403: a web page, not WeChat's answer (text/html, 50 bytes, titled 'Access Denied')",
    ),
    (
        (200, b"<meta http-equiv=refresh content='0;url=/login'>", "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 48 bytes)",
    ),
    (
        (200, b"<script>location='/portal'</script>", "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 35 bytes)",
    ),
    (
        (200, b"<body></body>", "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 13 bytes)",
    ),
    (
        (200, _page(""), "text/html"),  # an empty title: none named
        "HTTP 200: a web page, not WeChat's answer (text/html, 57 bytes)",
    ),
    (
        (200, _page("登录 Wi-Fi"), "text/html"),  # the size in bytes, not characters
        "HTTP 200: a web page, not WeChat's answer (text/html, 69 bytes, titled '登录 Wi-Fi')",
    ),
    (
        (200, _page("It's a portal"), "text/html"),
        "HTTP 200: a web page, not WeChat's answer "
        """(text/html, 70 bytes, titled "It's a portal")""",
    ),
    (
        (200, _page("t" * 100), "text/html"),  # a title is cut to 80 characters
        f"HTTP 200: a web page, not WeChat's answer (text/html, 157 bytes, titled '{'t' * 80}')",
    ),
    (  # what could act on a terminal, shown as escapes
        (200, _page("\x1b[2J\x1b]0;pwned\x07\u202e"), "text/html"),
        "HTTP 200: a web page, not WeChat's answer "
        r"(text/html, 74 bytes, titled '\x1b[2J\x1b]0;pwned\x07\u202e')",
    ),
    (  # the AppSecret in the title: masked, as it is, in capitals, or a run of 8 of it
        (200, _page(f"Wrong key {SECRET}"), "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 100 bytes, titled 'Wrong key ***')",
    ),
    (
        (200, _page(f"Bad {SECRET.upper()[3:11]}!"), "text/html"),
        "HTTP 200: a web page, not WeChat's answer (text/html, 70 bytes, titled 'Bad ***!')",
    ),
    (  # cut to 80 characters first, then masked: 10 of the secret's characters are left
        (200, _page("x" * 70 + SECRET), "text/html"),
        f"HTTP 200: a web page, not WeChat's answer (text/html, 160 bytes, titled '{'x' * 70}***')",
    ),
    (  # the page itself is never quoted: the secret in its body is not shown either
        (403, b"<html><p>secret=" + SECRET.encode() + b"</p></html>", "text/html"),
        "HTTP 403: a web page, not WeChat's answer (text/html, 60 bytes)",
    ),
]


@pytest.mark.parametrize(("behaviour", "message"), WEB_PAGES)
def test_a_web_page_is_named_not_quoted(
    cli: CLI, fake: FakeWeChat, behaviour: str | tuple[int, bytes, str], message: str
) -> None:
    fake.behaviour = behaviour
    result = cli.main("--retries", "0")
    assert result == Result(3, "", f"error: {message}\n{PORTAL_HINT}\n")
    assert len(fake.requests) == 1


def test_bad_answer_as_json(cli: CLI, fake: FakeWeChat, clock: VirtualClock) -> None:
    fake.behaviour = "502"
    result = cli.main("--json", clock=clock)
    error = "HTTP 502: a web page, not WeChat's answer (text/html, 28 bytes)"
    hint = wechat_token.messages.msg(
        "hint.server_trouble"
    )  # a 5xx: the server's trouble, page or not
    assert result == Result(
        3,
        json.dumps({"error": error, "hint": hint, "kind": "busy"}) + "\n",
        f"error: {error}\nhint: {hint}\n",
    )
    assert len(fake.requests) == 3  # a 5xx page is the server's trouble: retried


def test_connection_refused_exit_3(cli: CLI, closed_port: int) -> None:
    result = cli.main(
        "--api-base", f"https://127.0.0.1:{closed_port}", "--retries", "0", base=False
    )
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith("error: request to 127.0.0.1 failed: Failed to connect")
    assert result.err.endswith(
        f"(curl error 7)\nhint: tried https://127.0.0.1:{closed_port}: check the route and "
        "firewall from this machine to 127.0.0.1; where the web is reached only through a "
        "proxy, set https_proxy, or proxy in config.ini\n"
    )


# --- What a fetch needs: pycurl and certifi, named when missing ----------------------------


@pytest.mark.parametrize("package", ["pycurl", "certifi"])
def test_a_missing_package_is_one_line_that_says_how_to_install_it(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    # Both are imported when a request is made; certifi only when no --cacert is given.
    monkeypatch.setitem(sys.modules, package, None)
    result = cli.main("--api-base", cli.fake.base_url, "--no-cache", base=False)
    assert result == Result(
        2,
        "",
        f"error: {package} cannot be imported (import of {package} halted; None in "
        f"sys.modules); install it: python -m pip install {package}\n"
        "hint: a fetch needs pycurl and certifi (pip install -r requirements.txt); "
        "a cached token needs neither\n",
    )


# --- --help and --version: printed like a token ------------------------------------------


def test_help_goes_to_stdout_like_a_token_and_lists_the_options(cli: CLI) -> None:
    result = cli.main("--help")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("usage: wechat-token [-h]")
    for option in ("--config", "--appid", "--api-base", "--cacert", "--timeout", "--json"):
        assert option in result.out
    assert "--verbose" in result.out
    assert "--appsecret" not in result.out


def test_help_gives_the_exit_codes_where_config_is_looked_for_and_what_stdout_holds(
    cli: CLI,
) -> None:
    help_text = cli.main("--help").out
    assert help_text.endswith(
        "\noutput:\n"
        "  stdout carries the token alone, or with --json one JSON object, so that\n"
        "  TOKEN=$(wechat-token) works; messages go to stderr.\n"
        "\n"
        "configuration:\n"
        "  WECHAT_APPID and WECHAT_APPSECRET, else config.ini in the current folder\n"
        "  (or --config PATH); config.ini.example shows every key. A proxy: --proxy, or\n"
        "  proxy in the config; else https_proxy and no_proxy, as curl reads them.\n"
        "\n"
        "exit codes:\n"
        "  0 token printed, 1 WeChat answered an errcode, 2 usage or configuration,\n"
        "  3 network, TLS, HTTP or response failure, 74 stdout cannot take the token,\n"
        "  141 stdout closed early, 70 a bug in this tool. Ctrl-C: killed by SIGINT.\n"
    )


def test_version(cli: CLI) -> None:
    assert cli.main("--version") == Result(0, f"wechat-token {wechat_token.__version__}\n", "")


@pytest.mark.parametrize("order", [("--json", "--version"), ("--version", "--json")])
def test_version_with_json_is_json(cli: CLI, order: tuple[str, str]) -> None:
    """Issue 18, item 13: --version --json printed plain text."""
    version = wechat_token.__version__
    assert cli.main(*order) == Result(0, f'{{"version": "{version}"}}\n', "")


CLOSED_STDOUT = (
    "error: stdout was closed before the output was written\n"
    "hint: the program reading this command's output stopped before the token arrived\n"
)
FULL = (
    "error: cannot write to stdout: No space left on device\n"
    f"hint: {wechat_token.messages.msg('hint.output')}\n"
)

# --- stdout and stderr in trouble, in this process (as a real process has them: below) ------

INTERNAL_HINT = "this is a bug in wechat-token: please report it, with the command you ran"


@pytest.fixture
def broken_pipe() -> Iterator[object]:
    """A stdout whose reader has gone: writing to it raises BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", encoding="utf-8") as stream:
        yield stream


@pytest.fixture
def full_disk() -> Iterator[object]:
    """A stdout on a full disk: every write fails with ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with open("/dev/full", "w", encoding="utf-8") as stream:
        yield stream


@pytest.mark.parametrize(
    ("stream", "args", "code", "err"),
    [
        ("broken_pipe", (), 141, CLOSED_STDOUT),
        ("full_disk", (), 74, FULL),
        ("full_disk", ("--help",), 74, FULL),
        (
            "broken_pipe",
            ("--json", "--retries", "0", "--appid", "wx00000000000000ff"),
            141,
            "error: errcode 40013: invalid appid\n"
            f"hint: {wechat_token.errors.hint_for(40013, '')}\n" + CLOSED_STDOUT,
        ),
    ],
    ids=["token-broken-pipe", "token-full-disk", "help-full-disk", "json-error-broken-pipe"],
)
def test_a_stdout_that_cannot_take_the_output_is_an_exit_code_of_its_own(
    cli: CLI,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    stream: str,
    args: tuple[str, ...],
    code: int,
    err: str,
) -> None:
    monkeypatch.setattr(sys, "stdout", request.getfixturevalue(stream))
    assert cli.main(*args) == Result(code, "", err)


def test_no_stdout_at_all_is_exit_74_and_nothing_is_fetched(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's sys.stdout is None when it started with its stdout closed."""
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main() == Result(
        74,
        "",
        "error: stdout is closed: there is nowhere to print the token\n"
        f"hint: {wechat_token.messages.msg('hint.output')}\n",
    )
    assert fake.requests == []


@pytest.mark.parametrize("stream", ["none", "full_disk"])
def test_messages_are_lost_not_moved_when_stderr_cannot_take_them(
    cli: CLI, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, stream: str
) -> None:
    """stdout carries the token alone, whatever becomes of stderr."""
    monkeypatch.setattr(
        sys, "stderr", None if stream == "none" else request.getfixturevalue(stream)
    )
    with open("config.ini", "w", encoding="utf-8") as config:
        config.write("[wechat]\ncolour = blue\n")  # a warning: unknown key
    assert cli.main("-v") == Result(0, "fake_token_1\n", "")


def test_a_bug_is_one_line_and_exit_70_never_a_traceback(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(wechat_token.cli, "cached_access_token", broken)
    assert cli.main() == Result(
        70,
        "",
        f"error: internal error: RuntimeError: something unforeseen\nhint: {INTERNAL_HINT}\n",
    )


# --- The streams, as a real process has them ------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "args", "err"),
    [
        ("ok", (), CLOSED_STDOUT),  # closed while printing the token
        (
            "502",
            ("--json", "--retries", "0"),
            "error: HTTP 502: a web page, not WeChat's answer (text/html, 28 bytes)\n"
            f"hint: {wechat_token.messages.msg('hint.server_trouble')}\n{CLOSED_STDOUT}",
        ),
    ],
)
def test_closed_stdout_exits_141_without_a_traceback(
    cli: CLI, fake: FakeWeChat, behaviour: str, args: tuple[str, ...], err: str
) -> None:
    fake.behaviour = behaviour
    with cli.popen(*args) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            proc.stdout.close()  # like `wechat-token | head -c0`
            _, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    OUTPUTS.append(stderr)
    assert (proc.returncode, stderr) == (141, err)  # 128 + SIGPIPE, like `yes | head`


def _run(cli: CLI, *args: str, env: object = None, stdout: object = None) -> Result:
    """`python -m wechat_token ARGS` with this environment and stdout; bounded in time."""
    done = subprocess.run(
        [*COMMAND, *cli.argv(args, True)],
        env=env,  # type: ignore[arg-type]
        stdin=subprocess.DEVNULL,
        stdout=stdout or subprocess.PIPE,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        timeout=30,
    )
    out, err = (done.stdout or b"").decode(errors="replace"), done.stderr.decode(errors="replace")
    OUTPUTS.extend((out, err))
    return Result(done.returncode, out, err)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [(), ("--help",)], ids=["token", "help"])
def test_a_full_stdout_is_exit_74(cli: CLI, args: tuple[str, ...]) -> None:
    """The token, or --help (which argparse alone would print and exit 0 regardless)."""
    with open("/dev/full", "wb") as full:
        result = _run(cli, *args, stdout=full)
    assert (result.code, result.err) == (
        74,
        "error: cannot write to stdout: No space left on device\n"
        f"hint: {wechat_token.messages.msg('hint.output')}\n",
    )


def _with_closed(redirect: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the command from sh with one of its streams closed: '>&-' or '2>&-'."""
    done = subprocess.run(
        ["/bin/sh", "-c", f'"$0" "$@" {redirect}', *COMMAND, *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    OUTPUTS.extend((done.stdout, done.stderr))
    return done


@pytest.mark.skipif(os.name != "posix", reason="closes a file descriptor")
def test_a_closed_stdout_is_exit_74_and_nothing_is_fetched(cli: CLI, fake: FakeWeChat) -> None:
    done = _with_closed(">&-", cli.argv((), True))
    assert (done.returncode, done.stderr) == (
        74,
        "error: stdout is closed: there is nowhere to print the token\n"
        f"hint: {wechat_token.messages.msg('hint.output')}\n",
    )
    assert fake.requests == []


@pytest.mark.skipif(os.name != "posix", reason="closes a file descriptor")
def test_messages_never_move_to_stdout_when_stderr_is_closed(cli: CLI, tmp_path: object) -> None:
    """print(file=sys.stderr) writes to stdout when sys.stderr is None."""
    with open("config.ini", "w", encoding="utf-8") as config:
        config.write("[wechat]\ncolour = blue\n")  # a warning: unknown key
    done = _with_closed("2>&-", cli.argv(("-v",), True))
    assert (done.returncode, done.stdout) == (0, "fake_token_1\n")


def test_json_is_ascii_whatever_the_console_encoding(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PYTHONIOENCODING", "latin-1")
    fake.behaviour = json.dumps({"errcode": 40013, "errmsg": "appid inválido ✗"}).encode()
    result = _run(cli, "--json")
    assert result.code == 1
    assert result.out.isascii()
    assert json.loads(result.out)["errmsg"] == "appid inválido ✗"


def test_a_console_that_cannot_show_chinese_gets_escapes(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PYTHONIOENCODING", "ascii")  # like a Windows console redirected to a file
    fake.behaviour = 40013
    result = _run(cli)
    assert result.code == 1
    assert result.err.splitlines()[1] == (
        r"hint: check the AppID at \u5fae\u4fe1\u5f00\u53d1\u8005\u5e73\u53f0 "
        r"(developers.weixin.qq.com/platform) \u2192 \u6211\u7684\u4e1a\u52a1 \u2192 "
        r"\u516c\u4f17\u53f7 \u2192 \u57fa\u7840\u4fe1\u606f (a Mini Program's: "
        r"\u5fae\u4fe1\u516c\u4f17\u5e73\u53f0 \u2192 \u7ba1\u7406 \u2192 "
        r"\u5f00\u53d1\u7ba1\u7406 \u2192 \u5f00\u53d1\u8bbe\u7f6e)"
    )
    assert result.err.splitlines()[1].encode("ascii").decode("unicode_escape") == (
        f"hint: check the AppID at {CONSOLE} {MINI_PROGRAM}"
    )


def test_a_chinese_locale_on_a_console_that_cannot_show_chinese_gets_english(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """Chinese written as \\u escapes reads worse than English: a Chinese locale on an
    ASCII console gets English, unless --lang zh asks for Chinese all the same."""
    env.setenv("LANG", "zh_CN.UTF-8")
    env.setenv("PYTHONIOENCODING", "ascii")
    fake.behaviour = 40013
    first = "error: errcode 40013: invalid appid"
    assert _run(cli).err.splitlines()[0] == first
    chinese = _run(cli, "--lang", "zh").err.splitlines()[0]
    assert chinese.startswith(r"error: \u5fae\u4fe1")  # 微信返回 errcode 40013
    env.setenv("PYTHONIOENCODING", "gb18030")  # a Chinese Windows console's: it can
    assert _run(cli).err.splitlines()[0] != first


# --- Failure kinds, for a monitor -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "behaviour", "args"),
    [
        ("refused", 1, 40164, ()),
        ("quota", 1, 45009, ()),
        ("busy", 1, -1, ("--retries", "0")),
        ("busy", 1, 45011, ()),  # this minute's limit: it passes by itself
        ("busy", 3, "503", ("--retries", "0")),
        ("config", 2, "ok", ("--timeout", "abc")),
        ("response", 3, "html", ()),
        ("network", 3, "hang", ("--timeout", "0.2", "--retries", "0")),
        ("proxy", 3, "ok", ("--proxy", "http://127.0.0.1:{closed_port}", "--retries", "0")),
        ("tls", 3, "ok", ("--cacert", "{other_ca}")),
    ],
)
def test_every_failure_kind_in_json(
    cli: CLI,
    fake: FakeWeChat,
    closed_port: int,
    tmp_path: Path,
    kind: str,
    code: int,
    behaviour: str | int,
    args: tuple[str, ...],
) -> None:
    """--json's "kind" refines the exit code: refused, quota and busy (1); config (2);
    network, tls, proxy, response and busy (3)."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    fake.behaviour = behaviour
    given = [arg.format(closed_port=closed_port, other_ca=other_ca) for arg in args]
    result = cli.main("--json", "--no-cache", *given)
    assert (result.code, json.loads(result.out)["kind"]) == (code, kind)


def test_the_whitelist_hint_names_both_kinds_of_account_and_cidr(
    cli: CLI, fake: FakeWeChat
) -> None:
    """A 服务号's owner looks under 服务号; a NAT pool's changing address needs a range."""
    fake.behaviour = 40164
    hint = cli.main().err.splitlines()[1]
    assert hint.startswith(f"hint: add {WHITELIST_IP} to the IP whitelist (API IP 白名单) at ")
    assert "(the same pages for a 服务号)" in hint
    assert "a range in CIDR form (203.0.113.0/24) covers egress addresses that change" in hint


def test_json_writes_chinese_as_itself_where_stdout_can(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """A UTF-8 console reads 白名单, not \\u767d\\u540d\\u5355; the JSON is valid either way."""
    env.setenv("PYTHONIOENCODING", "utf-8")
    fake.behaviour = json.dumps({"errcode": 40013, "errmsg": "AppID 不在白名单"}).encode()
    result = _run(cli, "--json")
    assert result.code == 1
    assert '"errmsg": "AppID 不在白名单"' in result.out
    assert json.loads(result.out)["errmsg"] == "AppID 不在白名单"


# --- --lang, and --help in Chinese ----------------------------------------------------------

# What --help shows as it is typed, in any language: options, metavars, {en,zh}; once they
# are left out, a run of 3 English words in Chinese help is a phrase left untranslated.
TYPED = re.compile(r"(?<![\w-])--?[a-z][a-z-]*|\b[A-Z]+\b|\{en,zh\}")
ENGLISH_RUN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?: [A-Za-z]+(?:'[a-z]+)?){2,}")


def columns(line: str) -> int:
    """The width of `line` on a terminal: a wide (CJK) character takes two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("how", ["LANG", "--lang"])
def test_help_is_chinese_under_a_chinese_locale_or_lang_zh(
    cli: CLI, env: pytest.MonkeyPatch, how: str
) -> None:
    env.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    if how == "LANG":
        env.setenv("LANG", "zh_CN.UTF-8")
    result = cli.main(*(["--lang", "zh"] if how == "--lang" else []), "--help")
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines[0].startswith("用法：wechat-token [-h] [--config PATH] [--appid APPID]")
    # the usage's later lines start under its first option, on screen
    assert columns(lines[1]) - len(lines[1].lstrip()) == columns("用法：wechat-token ")
    for line in [
        "获取微信公众号的 access_token（接口调用凭据），全程使用经过证书校验的 TLS。",
        "位置参数：",
        "选项：",
        "  -h, --help            显示本帮助信息并退出",
        "  --no-cache            不读也不写缓存",
        "  --version             显示版本号并退出",
        "sign URL（离线复现签名）：",
        "  --ticket TICKET       用这个 jsapi_ticket 签名：不发请求",
        "输出：",
        "  所以 TOKEN=$(wechat-token) 可以直接使用；提示信息都写到标准错误（stderr）。",
        "配置：",
        "退出码：",
        "  0 已打印 access_token，1 微信返回了 errcode，2 用法或配置错误，",
    ]:
        assert line in lines
    assert any(line.startswith("  --lang {en,zh}        提示信息和帮助的语言") for line in lines)
    for line in lines:
        assert ENGLISH_RUN.findall(TYPED.sub(" ", line)) == [], line
        assert columns(line) <= 80, line


def test_lang_en_under_a_chinese_locale_is_english(cli: CLI, env: pytest.MonkeyPatch) -> None:
    english = cli.main("--help").out
    assert "\n  --lang {en,zh}        the language of messages and --help: " in english
    env.setenv("LANG", "zh_CN.UTF-8")
    assert cli.main("--help").out != english
    assert cli.main("--lang", "en", "--help") == Result(0, english, "")
    assert cli.main("--lang=en", "--timeout") == Result(
        2, "", "error: argument --timeout: expected one argument\nhint: see --help\n"
    )


LANG_HINT = (
    "en: English, zh: 简体中文; without --lang, the locale decides (LC_ALL, LC_MESSAGES, LANG)"
)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--lang", "fr"), "--lang: 'fr' must be en or zh"),
        (("--lang=zh_TW",), "--lang: 'zh_TW' must be en or zh"),
        (("--lang", "zh", "--lang", "fr"), "--lang: 'fr' must be en or zh"),
        (("--lang", "-"), "--lang: the value given must be en or zh"),
        (("--lang=",), "--lang: the value given must be en or zh"),
        # what is not a short word may be the AppSecret, typed in the wrong place
        ((f"--lang={SECRET}",), "--lang: the value given must be en or zh"),
        (("--lang", SECRET[:8]), "--lang: the value given must be en or zh"),
    ],
)
def test_an_unknown_lang_is_a_usage_error(cli: CLI, args: tuple[str, ...], error: str) -> None:
    assert cli.main(*args) == Result(2, "", f"error: {error}\nhint: {LANG_HINT}\n")


def test_an_unknown_lang_is_told_in_the_locales_language(cli: CLI, env: pytest.MonkeyPatch) -> None:
    env.setenv("LANG", "zh_CN.UTF-8")
    assert cli.main("--lang", "fr") == Result(
        2,
        "",
        "error: --lang：'fr' 不是可选的语言，只能是 en 或 zh\n"
        "hint: en 是英文，zh 是简体中文；"
        "不加 --lang 时按语言环境（LC_ALL、LC_MESSAGES、LANG）决定\n",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--timeout",), "选项 --timeout：后面需要一个值"),
        (("--no-cache", "--cache-file", "x"), "选项 --cache-file：不能与 --no-cache 同时使用"),
        ((f"--stable={SECRET}",), "选项 --stable/--no-stable：不接受值"),
        (("--bogus", "value"), "无法识别的参数：--bogus"),
        (("stray",), "无法识别的参数：（值不予显示）"),
        (("ticket",), "wechat-token ticket 后面要写 jsapi 或 wx_card"),
        (("--noncestr", "x"), "--noncestr 只用于 sign 命令"),
        (("--lang",), "选项 --lang：后面需要一个值"),  # the locale's: --lang has no value
    ],
)
def test_a_usage_error_under_lang_zh_is_chinese(
    cli: CLI, env: pytest.MonkeyPatch, args: tuple[str, ...], error: str
) -> None:
    if args != ("--lang",):
        args = ("--lang", "zh", *args)
    else:
        env.setenv("LANG", "zh_CN.UTF-8")
    assert cli.main(*args) == Result(2, "", f"error: {error}\nhint: 请查看 --help\n")


@pytest.mark.parametrize(
    ("message", "said"),
    [  # argparse's words, and ours: what it quotes from the command line is left out
        ("argument --x: expected one argument", "argument --x: expected one argument"),
        (
            "argument --x: expected at most one argument",
            "argument --x: expected at most one argument",
        ),
        ("argument --x: ignored explicit argument 'SECRET'", "argument --x: it takes no value"),
        (
            "argument --x: invalid choice: 'SECRET' (choose from 'a', 'b')",
            "argument --x: invalid choice (choose from 'a', 'b')",
        ),
        ("argument --x: invalid float value: 'SECRET'", "argument --x: invalid float value"),
        ("unrecognized arguments: SECRET", "unrecognized arguments: (values)"),
        (
            "the following arguments are required: --x, Y",
            "the following arguments are required: --x, Y",
        ),
        ("one of the arguments --x --y is required", "one of the arguments --x --y is required"),
    ],
)
def test_argparse_errors_are_said_without_the_values_they_quote(message: str, said: str) -> None:
    parser = wechat_token.cli._ArgumentParser(prog="wechat-token")
    with pytest.raises(wechat_token.errors.ConfigError) as raised:
        parser.error(message.replace("SECRET", SECRET))
    assert str(raised.value) == said


def test_main_puts_the_language_back_as_it_found_it(cli: CLI) -> None:
    """A program that calls main() in-process keeps its own choice (None: the locale's)."""
    cli.main("--lang", "zh", "--help")
    assert wechat_token.messages.chosen() is None
    wechat_token.messages.use("zh")
    try:
        assert cli.main("--lang", "en", "--timeout").err.startswith("error: argument --timeout")
        assert wechat_token.messages.chosen() == "zh"
    finally:
        wechat_token.messages.use(None)

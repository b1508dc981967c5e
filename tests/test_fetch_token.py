"""The happy path, WeChat's errors, bad answers, and the transport: through the real tool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

import wechat_token
import wechat_token.errors
import wechat_token.http
from wechat_token import AccessToken, get_access_token

from conftest import CLI, Result
from fake_wechat import APPID, ERRMSG, SECRET, WHITELIST_IP, FakeWeChat


def test_prints_the_token_alone(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.run() == Result(0, "fake_token_1\n", "")
    # One GET, with the three parameters of the PHP URL, URL-encoded.
    assert [(r.method, r.path, r.query) for r in fake.requests] == [
        (
            "GET",
            "/cgi-bin/token",
            {"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        )
    ]
    assert "secret=Sup3r%2BSecret%2F%26%25%3D9f2c" in fake.requests[0].raw_query


def test_main_in_process_returns_the_exit_code(cli: CLI) -> None:
    assert cli.main() == Result(0, "fake_token_1\n", "")


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


def test_quiet_without_verbose(cli: CLI) -> None:
    assert cli.main().err == ""


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


@pytest.mark.parametrize(("errcode", "phrase"), WECHAT_ERRORS)
def test_wechat_error_exit_1_with_errcode_and_hint(
    cli: CLI, fake: FakeWeChat, errcode: int, phrase: str
) -> None:
    fake.behaviour = errcode
    result = cli.main()
    assert (result.code, result.out) == (1, "")
    error, hint = result.err.splitlines()
    errmsg = ERRMSG.get(errcode, "")
    assert error == (
        f"error: errcode {errcode}: {errmsg}" if errmsg else f"error: errcode {errcode}"
    )
    assert hint.startswith("hint: ")
    assert phrase in hint


@pytest.mark.parametrize("how", ["main", "run"])
def test_wechat_error_as_json(cli: CLI, fake: FakeWeChat, how: str) -> None:
    fake.behaviour = 40164
    result = getattr(cli, how)("--json")
    assert result.code == 1
    assert json.loads(result.out) == {
        "errcode": 40164,
        "errmsg": ERRMSG[40164],
        "hint": wechat_token.errors.hint_for(40164, ERRMSG[40164]),
    }
    assert result.err.startswith("error: errcode 40164: ")


def test_wrong_secret_is_40125_from_the_fake(cli: CLI, env: pytest.MonkeyPatch) -> None:
    env.setenv("WECHAT_APPSECRET", "another-secret-0123456789")
    result = cli.main()
    assert result.code == 1
    assert result.err.startswith("error: errcode 40125: invalid appsecret\n")


def test_errcode_zero_with_a_token_is_success(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = b'{"errcode":0,"errmsg":"ok","access_token":"tok","expires_in":7200}'
    assert cli.main() == Result(0, "tok\n", "")


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
    ("html", "response is a web page, not JSON: '<html><body>Welcome to Hotel WiFi</body></html>'"),
    (b"<!DOCTYPE html>\n<title>Log in</title>", "response is a web page, not JSON: "),
    ("502", "HTTP 502 instead of 200: '<html>502 Bad Gateway</html>'"),
    ("redirect", "HTTP 302 instead of 200: (empty body)"),  # not followed
    ("huge", "response larger than 64 KiB from 127.0.0.1: refused"),
    ("huge-chunked", "response larger than 64 KiB from 127.0.0.1: refused"),  # no length
    ("truncated", "the answer from 127.0.0.1 was cut off: end of response with 80 bytes missing"),
    ("empty", "empty response (HTTP 200 with no body)"),
    (b"  \n", "empty response (HTTP 200 with no body)"),
    (b"x" * 1000, f"response is not JSON: {EXCERPT_1000}"),  # a short excerpt only
    (b'{"access_token": "tok", "expires_in": 72', "response is not JSON: "),  # cut JSON
    (b"[" * 60_000, "response is not JSON: "),  # nesting deep enough for RecursionError
    (b"\xff\xfe\xfa not utf-8", "response is not JSON: "),
    (b"[1, 2]", "response is not a JSON object: '[1, 2]'"),
    (b'{"expires_in": 7200}', "no usable access_token in the response: "),
    (b'{"access_token": "", "expires_in": 7200}', "no usable access_token in the response: "),
    (b'{"access_token": 42, "expires_in": 7200}', "no usable access_token in the response: "),
    (b'{"access_token": "a b", "expires_in": 7200}', "no usable access_token in the response: "),
    (b'{"access_token": "t\\u001b[2J", "expires_in": 7200}', "no usable access_token in "),
    (b'{"access_token": "tok"}', "no usable expires_in in the response: "),
    (b'{"access_token": "tok", "expires_in": "7200"}', "no usable expires_in in the response: "),
    (b'{"access_token": "tok", "expires_in": true}', "no usable expires_in in the response: "),
    (b'{"access_token": "tok", "expires_in": 0}', "no usable expires_in in the response: "),
    (b'{"access_token": "tok", "expires_in": 7200.5}', "no usable expires_in in the response: "),
    (b'{"errcode": "40013", "errmsg": "x"}', "malformed error answer: "),
    (b'{"errcode": 40013, "errmsg": 5}', "malformed error answer: "),
]


@pytest.mark.parametrize(("behaviour", "message"), BAD_ANSWERS)
def test_bad_answer_exit_3_with_a_short_excerpt(
    cli: CLI, fake: FakeWeChat, behaviour: str | bytes, message: str
) -> None:
    fake.behaviour = behaviour
    result = cli.main("--retries", "0")  # which answers are retried: see test_retries.py
    assert (result.code, result.out) == (3, "")
    error, hint = result.err.splitlines()
    assert error.startswith(f"error: {message}")
    if behaviour == "truncated":  # no whole answer: it says where it asked
        assert hint == NETWORK_HINT.replace("hint: ", f"hint: tried {fake.base_url}: ")
    elif "web page" in message or behaviour == "redirect":  # WeChat's API never redirects
        assert hint == PORTAL_HINT
    else:
        assert hint == RESPONSE_HINT
    assert result.err.count("\n") == 2
    assert len(error) < 200
    assert len(fake.requests) == 1  # a redirect is not followed


def test_bad_answer_as_json(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "502"
    result = cli.run("--json")
    assert result.code == 3
    assert json.loads(result.out) == {
        "error": "HTTP 502 instead of 200: '<html>502 Bad Gateway</html>'",
        "hint": RESPONSE_HINT.removeprefix("hint: "),
    }


def test_server_that_never_answers_is_bounded_by_timeout(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "hang"
    start = time.monotonic()
    result = cli.main("--timeout", "0.5", "--retries", "0")
    elapsed = time.monotonic() - start
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith(
        "error: no answer from 127.0.0.1 within 0.5 s: Operation timed out"
    )
    assert 0.5 <= elapsed < 2.5


def test_a_tiny_timeout_is_still_a_timeout(cli: CLI, fake: FakeWeChat) -> None:
    """To libcurl 0 ms means "no timeout": 0.0001 s must not round down to it."""
    fake.behaviour = "hang"
    start = time.monotonic()
    assert cli.main("--timeout", "0.0001", "--retries", "0").code == 3
    assert time.monotonic() - start < 2


def test_connect_has_its_own_shorter_timeout(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, stalled_port: int
) -> None:
    monkeypatch.setattr(wechat_token.http, "CONNECT_TIMEOUT", 0.3)
    start = time.monotonic()
    result = cli.main(
        *("--api-base", f"https://127.0.0.1:{stalled_port}", "--timeout", "5", "--retries", "0"),
        base=False,
    )
    assert result.code == 3
    assert result.err.startswith("error: no answer from 127.0.0.1 within 5 s: Connection timed out")
    assert time.monotonic() - start < 2


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


def test_runs_where_fcntl_does_not_exist(cli: CLI) -> None:
    """Windows has no fcntl: importing and running must not need it."""
    code = (
        "import runpy, sys; sys.modules['fcntl'] = None; "
        f"sys.argv = ['wechat-token', *{cli.argv((), True)!r}]; "
        f"runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "fake_token_1\n", "")


def test_console_that_cannot_show_chinese(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PYTHONIOENCODING", "ascii")  # like a Windows console redirected to a file
    fake.behaviour = 40013
    result = cli.run()
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


CLOSED_STDOUT = (
    "error: stdout was closed before the output was written\n"
    "hint: the program reading this command's output stopped before the token arrived\n"
)


@pytest.mark.parametrize(
    ("behaviour", "args", "err"),
    [
        ("ok", (), CLOSED_STDOUT),  # closed while printing the token
        (
            "502",
            ("--json",),
            "error: HTTP 502 instead of 200: '<html>502 Bad Gateway</html>'\n"
            f"{RESPONSE_HINT}\n{CLOSED_STDOUT}",
        ),
    ],
)
def test_closed_stdout_exits_141_without_a_traceback(
    cli: CLI, fake: FakeWeChat, behaviour: str, args: tuple[str, ...], err: str
) -> None:
    fake.behaviour = behaviour
    with cli.popen(*args) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # like `python fetch_token.py | head -c0`
        stderr = proc.stderr.read()
        proc.wait(timeout=30)
    assert (proc.returncode, stderr) == (141, err)  # 128 + SIGPIPE, like `yes | head`


# --- the importable API ------------------------------------------------------------


def test_get_access_token_returns_token_and_lifetime(fake: FakeWeChat, ca_file: str) -> None:
    token, expires_in = get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file)
    assert (token, expires_in) == ("fake_token_1", 7200)
    assert get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file) == AccessToken(
        access_token="fake_token_2", expires_in=7200
    )


def test_get_access_token_raises_wechat_error_with_fields(fake: FakeWeChat, ca_file: str) -> None:
    fake.behaviour = 40013
    with pytest.raises(wechat_token.WeChatAPIError) as caught:
        get_access_token(APPID, SECRET, api_base=fake.base_url, cacert=ca_file)
    assert (caught.value.errcode, caught.value.errmsg) == (40013, "invalid appid")
    assert str(caught.value) == "errcode 40013: invalid appid"
    assert caught.value.hint == wechat_token.errors.HINTS[40013]


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
    assert caught.value.errmsg == "invalid appsecret *** (raw query: secret=***)"
    assert str(caught.value) == "errcode 40125: invalid appsecret *** (raw query: secret=***)"
    assert lines[0].endswith("&secret=***")
    assert SECRET not in repr(lines)


def test_only_https_is_spoken_even_when_a_caller_skips_the_checks(fake: FakeWeChat) -> None:
    """The command line refuses http:// early; libcurl itself refuses it too."""
    http_base = fake.base_url.replace("https://", "http://")
    with pytest.raises(wechat_token.TransportError, match=r"curl error 1\)$"):
        get_access_token(APPID, SECRET, api_base=http_base)
    assert fake.requests == []


def test_all_names_the_public_api() -> None:
    assert set(wechat_token.__all__) <= set(dir(wechat_token))
    assert {"get_access_token", "WeChatAPIError", "TransportError", "TokenCache"} <= set(
        wechat_token.__all__
    )
    assert issubclass(wechat_token.TLSError, wechat_token.TransportError)
    assert issubclass(wechat_token.ResponseError, wechat_token.TransportError)

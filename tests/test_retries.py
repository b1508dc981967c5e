"""Bounded retries, only for failures that can pass, moving through the API bases."""

from __future__ import annotations

import time

import pytest
import trustme

import wechat_token
import wechat_token.retry

from conftest import CLI, Result
from fake_wechat import FakeWeChat


def test_busy_once_then_success_is_two_requests(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = [-1, "ok"]
    start = time.monotonic()
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 2
    assert time.monotonic() - start >= 0.5  # the first wait


@pytest.mark.parametrize(("retries", "requests"), [("0", 1), ("1", 2), (None, 3), ("3", 4)])
def test_busy_forever_is_one_plus_retries_requests(
    cli: CLI, fake: FakeWeChat, retries: str | None, requests: int
) -> None:
    fake.behaviour = -1
    args = ("--retries", retries) if retries else ()
    result = cli.main(*args)
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith("error: errcode -1: system error\n")
    assert len(fake.requests) == requests


@pytest.mark.parametrize("status", ["502", "503"])
def test_server_error_then_success(cli: CLI, fake: FakeWeChat, status: str) -> None:
    fake.behaviour = [status, "ok"]
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "behaviour",
    [
        40013,  # invalid appid: asking again gets the same answer
        40164,  # IP not whitelisted
        45009,  # daily quota: retrying would only burn more of it
        45011,
        "redirect",  # HTTP 302
        "html",  # HTTP 200 that is not JSON
        "huge",  # over the size cap
    ],
)
def test_answers_that_cannot_pass_are_not_retried(
    cli: CLI, fake: FakeWeChat, behaviour: str | int
) -> None:
    fake.behaviour = behaviour
    result = cli.main("--api-base", fake.base_url)  # two bases: no failover either
    assert result.code in (1, 3)
    assert len(fake.requests) == 1


def test_http_4xx_is_not_retried(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("--api-base", fake.base_url + "/no/such", "--cacert", cli.ca_file, base=False)
    assert result.code == 3
    assert result.err.startswith("error: HTTP 404 instead of 200: 'not found'")
    assert len(fake.requests) == 1


def test_unreachable_first_base_fails_over_within_one_timeout(
    cli: CLI, fake: FakeWeChat, stalled_port: int
) -> None:
    start = time.monotonic()
    result = cli.main(
        *("--api-base", f"https://127.0.0.1:{stalled_port}", "--api-base", fake.base_url),
        *("--cacert", cli.ca_file, "--timeout", "1"),
        base=False,
    )
    elapsed = time.monotonic() - start
    assert result == Result(0, "fake_token_1\n", "")
    assert elapsed < 1 + 1  # one timeout on the dead base, then the wait of 0.5 s
    assert len(fake.requests) == 1


def test_refused_first_base_fails_over(cli: CLI, fake: FakeWeChat, closed_port: int) -> None:
    dead = f"https://127.0.0.1:{closed_port}"
    result = cli.main(
        *("--api-base", dead, "--api-base", fake.base_url, "--cacert", cli.ca_file),
        *("-v", "--no-cache"),
        base=False,
    )
    assert (result.code, result.out) == (0, "fake_token_1\n")
    query = "grant_type=client_credential&appid=wx0123456789abcdef&secret=***"
    lines = result.err.splitlines()
    assert lines[0] == f"* GET {dead}/cgi-bin/token?{query}"
    assert lines[2].startswith(
        "* attempt 1 of 3 failed: request to 127.0.0.1 failed: "
        f"Failed to connect to 127.0.0.1:{closed_port}"
    )
    assert lines[2].endswith("(curl error 7)")
    assert lines[3:5] == [
        f"* next attempt in 0.5 s, via {fake.base_url}",
        f"* GET {fake.base_url}/cgi-bin/token?{query}",
    ]


def test_each_retry_moves_to_the_next_base_wrapping_around(cli: CLI, fake: FakeWeChat) -> None:
    by_name = fake.base_url.replace("127.0.0.1", "localhost")  # the same server, another name
    fake.behaviour = [-1, -1, "ok"]
    assert cli.main("--api-base", by_name).out == "fake_token_1\n"
    port = fake.base_url.rsplit(":", 1)[1]
    assert [r.host for r in fake.requests] == [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"127.0.0.1:{port}",
    ]


def test_verbose_shows_each_attempt_and_wait(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = [-1, "503", "ok"]
    result = cli.main("-v", "--no-cache")
    notes = [line for line in result.err.splitlines() if "attempt" in line]
    assert notes == [
        "* attempt 1 of 3 failed: errcode -1: system error",
        f"* next attempt in 0.5 s, via {fake.base_url}",
        "* attempt 2 of 3 failed: HTTP 503 instead of 200: '<html>503 Service Unavailable</html>'",
        f"* next attempt in 1 s, via {fake.base_url}",
    ]
    assert result.out == "fake_token_1\n"


def test_tls_failure_is_tried_once_only(cli: CLI, fake: FakeWeChat) -> None:
    impostor_ca = trustme.CA()  # a certificate the client's CA bundle does not vouch for
    with FakeWeChat(impostor_ca.issue_cert("127.0.0.1")) as impostor:
        result = cli.main(
            *("--api-base", impostor.base_url, "--api-base", fake.base_url),
            *("--cacert", cli.ca_file, "--retries", "5"),
            base=False,
        )
        assert result.code == 3
        assert result.err.startswith("error: TLS: the certificate of 127.0.0.1 is not from a CA")
        assert impostor.connections == 1
        assert impostor.requests == []
    assert fake.requests == []  # not even the second base: that would hide the attack


def test_total_time_is_bounded(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "hang"
    start = time.monotonic()
    result = cli.main("--timeout", "0.3", "--retries", "2")
    elapsed = time.monotonic() - start
    assert result.code == 3
    assert len(fake.requests) == 3
    bound = wechat_token.retry.longest_wait(2, 0.3)
    assert bound == pytest.approx(3 * 0.3 + 0.5 + 1)
    assert bound - 0.1 <= elapsed < bound + 1


@pytest.mark.parametrize("value", ["-1", "6", "two", "1.5", "²", ""])
def test_bad_retries_is_a_usage_error(cli: CLI, value: str) -> None:
    result = cli.main("--retries", value)
    assert result.code == 2
    if value:
        assert result.err == (
            f"error: --retries: '{value}' must be a whole number from 0 to 5\n"
            "hint: the default is 2\n"
        )


# (error, worth another attempt?)
WORTH_RETRYING = [
    (wechat_token.WeChatAPIError(-1, "system error"), True),
    (wechat_token.WeChatAPIError(40001, "invalid credential"), False),
    (wechat_token.WeChatAPIError(45011, "api minute-quota reach limit"), False),
    (wechat_token.TransportError("timed out", transient=True), True),
    (wechat_token.TransportError("curl error 1", transient=False), False),
    (wechat_token.ResponseError("HTTP 503", transient=True), True),
    (wechat_token.ResponseError("HTTP 404"), False),
    (wechat_token.TLSError("untrusted"), False),
    (wechat_token.ConfigError("bad CA bundle"), False),
]


@pytest.mark.parametrize(("error", "retry"), WORTH_RETRYING)
def test_worth_retrying(error: wechat_token.WeChatTokenError, retry: bool) -> None:
    assert wechat_token.retry.worth_retrying(error) is retry


def test_retry_waits_double() -> None:
    assert [wechat_token.retry.retry_wait(n) for n in range(5)] == [0.5, 1, 2, 4, 8]
    assert wechat_token.retry.longest_wait(0, 10) == 10
    assert wechat_token.retry.longest_wait(5, 10) == 60 + 15.5

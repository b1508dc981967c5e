"""Retries, failover and the deadline: failures that can pass are tried again, on the next
API base, after waits of 0.5 s, 1 s, 2 s ...; nothing else is; and a run ends in time.

The in-process runs take the `clock` fixture: its sleep() returns at once and moves the
clock on, so the waits are checked exactly (clock.waits) without being waited. Only the
requests' own timeouts take real time here.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from pathlib import Path

import pytest
import trustme

import wechat_token
import wechat_token.http
import wechat_token.retry

from conftest import CLI, COMMAND, OUTPUTS, Children, Result, VirtualClock
from fake_wechat import FakeWeChat

# --- What is retried, and how often -----------------------------------------------------


def test_busy_once_then_success_is_two_requests_half_a_second_apart(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock
) -> None:
    fake.behaviour = [-1, "ok"]
    assert cli.main(clock=clock) == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 2
    assert clock.waits == [0.5]


@pytest.mark.parametrize(
    ("retries", "requests", "waits"),
    [("0", 1, []), ("1", 2, [0.5]), (None, 3, [0.5, 1]), ("3", 4, [0.5, 1, 2])],
)
def test_busy_forever_is_one_plus_retries_requests_with_doubling_waits(
    cli: CLI,
    fake: FakeWeChat,
    clock: VirtualClock,
    retries: str | None,
    requests: int,
    waits: list[float],
) -> None:
    fake.behaviour = -1
    args = ("--retries", retries) if retries else ()
    result = cli.main(*args, clock=clock)
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith("error: errcode -1: system error\n")
    assert len(fake.requests) == requests
    assert clock.waits == waits


@pytest.mark.parametrize(
    "status",
    [
        "502",  # a web page, named: still the server's trouble, worth another attempt
        "503",
        (500, b"<title>Internal Server Error</title>", "text/html"),
        (500, b"busy", "text/plain"),  # not a page: quoted, and retried all the same
    ],
)
def test_server_error_then_success(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, status: str | tuple[int, bytes, str]
) -> None:
    fake.behaviour = [status, "ok"]
    assert cli.main(clock=clock) == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 2
    assert clock.waits == [0.5]


@pytest.mark.parametrize(
    "behaviour",
    [
        40013,  # invalid appid: asking again gets the same answer
        40164,  # IP not whitelisted
        45009,  # daily quota: retrying would only burn more of it
        45011,
        "redirect",  # HTTP 302
        "html",  # HTTP 200 that is not JSON
        (403, b"<html><title>Forbidden</title></html>", "text/html"),  # a 4xx web page
        "huge",  # over the size cap
    ],
)
def test_answers_that_cannot_pass_are_not_retried(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, behaviour: str | int | tuple[int, bytes, str]
) -> None:
    fake.behaviour = behaviour
    result = cli.main("--api-base", fake.base_url, clock=clock)  # two bases: no failover either
    assert result.code == (1 if isinstance(behaviour, int) else 3)
    assert len(fake.requests) == 1
    assert clock.waits == []


def test_http_4xx_is_not_retried(cli: CLI, fake: FakeWeChat, clock: VirtualClock) -> None:
    result = cli.main(
        "--api-base", fake.base_url + "/no/such", "--cacert", cli.ca_file, base=False, clock=clock
    )
    assert result.code == 3
    assert result.err.startswith("error: HTTP 404 instead of 200: 'not found'")
    assert len(fake.requests) == 1


def test_a_tls_failure_is_tried_once_only_and_never_elsewhere(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock
) -> None:
    impostor_ca = trustme.CA()  # a certificate the client's CA bundle does not vouch for
    with FakeWeChat(impostor_ca.issue_cert("127.0.0.1")) as impostor:
        result = cli.main(
            *("--api-base", impostor.base_url, "--api-base", fake.base_url),
            *("--cacert", cli.ca_file, "--retries", "5"),
            base=False,
            clock=clock,
        )
        assert result.code == 3
        assert result.err.startswith("error: TLS: the certificate of 127.0.0.1 is not from a CA")
        assert impostor.connections == 1
        assert impostor.requests == []
    assert fake.requests == []  # not even the second base: that would hide the attack
    assert clock.waits == []


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


@pytest.mark.parametrize("value", ["-1", "6", "two", "1.5", "²", "9" * 5000, ""])
def test_bad_retries_is_a_usage_error(cli: CLI, value: str) -> None:
    """Even 5000 digits, which int() refuses with a ValueError of its own."""
    result = cli.main("--retries", value)
    assert result.code == 2
    if value:
        assert result.err == (
            f"error: --retries: '{value}' must be a whole number from 0 to 5\n"
            "hint: the default is 2\n"
        )


# --- Failover: each attempt on the next API base ------------------------------------------


def test_unreachable_first_base_fails_over_within_one_timeout(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, stalled_port: int
) -> None:
    start = clock()
    result = cli.main(
        *("--api-base", f"https://127.0.0.1:{stalled_port}", "--api-base", fake.base_url),
        *("--cacert", cli.ca_file, "--timeout", "0.5"),
        base=False,
        clock=clock,
    )
    assert result == Result(0, "fake_token_1\n", "")
    assert clock.waits == [0.5]
    assert clock() - start < 0.5 + 0.5 + 0.5  # one timeout on the dead base, the wait, slack
    assert len(fake.requests) == 1


def test_refused_first_base_fails_over(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, closed_port: int
) -> None:
    dead = f"https://127.0.0.1:{closed_port}"
    result = cli.main(
        *("--api-base", dead, "--api-base", fake.base_url, "--cacert", cli.ca_file),
        *("-v", "--no-cache"),
        base=False,
        clock=clock,
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


def test_each_retry_moves_to_the_next_base_wrapping_around(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock
) -> None:
    by_name = fake.base_url.replace("127.0.0.1", "localhost")  # the same server, another name
    fake.behaviour = [-1, -1, "ok"]
    assert cli.main("--api-base", by_name, clock=clock).out == "fake_token_1\n"
    port = fake.base_url.rsplit(":", 1)[1]
    assert [r.host for r in fake.requests] == [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"127.0.0.1:{port}",
    ]


def test_verbose_shows_each_attempt_and_wait(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock
) -> None:
    fake.behaviour = [-1, "503", "ok"]
    result = cli.main("-v", "--no-cache", clock=clock)
    notes = [line for line in result.err.splitlines() if "attempt" in line]
    assert notes == [
        "* attempt 1 of 3 failed: errcode -1: system error",
        f"* next attempt in 0.5 s, via {fake.base_url}",
        "* attempt 2 of 3 failed: HTTP 503: a web page, not WeChat's answer (text/html, 36 bytes)",
        f"* next attempt in 1 s, via {fake.base_url}",
    ]
    assert result.out == "fake_token_1\n"
    assert clock.waits == [0.5, 1]


# --- Time bounds: each request, and the whole run -----------------------------------------


def test_a_server_that_never_answers_is_cut_by_the_timeout(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "hang"
    start = time.monotonic()
    result = cli.main("--timeout", "0.3", "--retries", "0")
    elapsed = time.monotonic() - start
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith(
        "error: no answer from 127.0.0.1 within 0.3 s: Operation timed out"
    )
    assert 0.3 <= elapsed < 2.3


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
    # Issue 18, item 13: it said "no answer ... within 5 s" of a connect cut at 0.3 s
    assert result.err.startswith(
        "error: no connection to 127.0.0.1 within 0.3 s: Connection timed out"
    )
    assert time.monotonic() - start < 2


def test_retries_and_their_waits_end_by_the_deadline(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock
) -> None:
    """A server that never answers: 3 attempts of 0.3 s and the waits of 0.5 s and 1 s,
    and the run is over, within longest_wait(retries, timeout)."""
    fake.behaviour = "hang"
    start = clock()
    result = cli.main("--timeout", "0.3", "--retries", "2", clock=clock)
    elapsed = clock() - start
    assert result.code == 3
    assert len(fake.requests) == 3
    assert clock.waits == [0.5, 1]
    bound = wechat_token.retry.longest_wait(2, 0.3)
    assert bound == pytest.approx(3 * 0.3 + 0.5 + 1)
    assert bound - 0.1 <= elapsed < bound + 1


def test_no_wait_or_attempt_is_started_past_the_deadline(clock: VirtualClock) -> None:
    """with_retries stops when the next wait and a minimal attempt would pass the deadline,
    and says which API bases it tried."""
    asked: list[tuple[str, float]] = []

    def attempt(api_base: str, seconds_left: float) -> wechat_token.AccessToken:
        asked.append((api_base, round(seconds_left, 1)))
        raise wechat_token.TransportError("no answer", transient=True, hint="check it")

    deadline = clock() + 2.0
    with pytest.raises(wechat_token.TransportError) as caught:
        wechat_token.retry.with_retries(
            attempt,
            ["https://a", "https://b"],
            5,
            deadline=deadline,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.waits == [0.5, 1]  # a wait of 2 s would end past the deadline
    assert asked == [("https://a", 2.0), ("https://b", 1.5), ("https://a", 0.5)]
    assert caught.value.hint == "tried https://a and https://b: check it"


# --- The deadline, for real processes sharing a cache -----------------------------------------


class _Watched:
    """A run's stderr, read as it comes: when its first line came (its main() had started:
    -v says where the cache is, or that it waits for the lock) and when the run ended."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.first_line = math.inf
        self.ended = math.inf
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if not self.err:
                self.first_line = time.monotonic()
            self.err.append(line)

    def result(self) -> Result:
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        OUTPUTS.extend((out, "".join(self.err)))
        return Result(self.proc.returncode, out, "".join(self.err))


@pytest.mark.parametrize(
    ("count", "timeout", "retries"),
    [(10, 1, 1), (2, 0.5, 0)],
    ids=["10", "2-no-retry"],
)
def test_runs_sharing_a_cache_all_end_by_the_deadline(
    count: int,
    timeout: float,
    retries: int,
    cli: CLI,
    fake: FakeWeChat,
    children: Children,
    tmp_path: Path,
) -> None:
    """Runs started together against a silent server each end within time_bound(retries,
    timeout) of their start: (retries + 1) * timeout, the waits 0.5 s, 1 s, ..., and 0.5 s
    of their own. The bound is counted from a run's first line (its main() has begun), not
    from the spawn, so that a busy machine's slow start of ten Pythons does not count.

    One of them (the lock holder) asks WeChat; the others wait for it. A failure on the
    way is not shared (it belongs to the holder's path): a waiter that gets the lock with
    time left tries its own path, and one that does not says how long the lock was held.
    """
    fake.behaviour = "hang"
    cache = str(tmp_path / "token.json")
    bound = wechat_token.retry.time_bound(retries, timeout)
    args = ("-v", "--cache-file", cache, "--timeout", str(timeout), "--retries", str(retries))
    runs = [_Watched(children.start([*COMMAND, *cli.argv(args, True)])) for _ in range(count)]
    give_up = time.monotonic() + bound + 10  # a run still going then hangs: it fails
    while any(run.ended == math.inf for run in runs) and time.monotonic() < give_up:
        for run in runs:
            if run.ended == math.inf and run.proc.poll() is not None:
                run.ended = time.monotonic()
        time.sleep(0.01)
    took = [run.ended - run.first_line for run in runs]
    assert max(took) <= bound, f"bound {bound} s; took {[f'{t:.2f}' for t in took]}"
    results = [run.result() for run in runs]
    assert [(result.code, result.out) for result in results] == [(3, "")] * count
    errors = [_error_line(result.err) for result in results]
    failure = "no answer from 127.0.0.1 within "
    gave_up = "gave up at the time bound of this run: another caller "
    assert [error for error in errors if failure not in error and gave_up not in error] == []
    assert sum(failure in error for error in errors) >= 1
    assert 1 <= len(fake.requests) <= count * (retries + 1)


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, f"not one error line: {err!r}"
    return lines[0]

"""What callers share, and what they do not: WeChat's answer (a token, or a refusal) is
shared by every thread and process through the cache; a failure on the way is not, and
each caller ends within its own time bound. And a fork in the middle of a fetch leaves
the child nothing to wait for.

The crowds are real: processes of 16 threads each, against the local fake of WeChat.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import wechat_token
from wechat_token import TokenCache
from wechat_token.retry import time_bound

from conftest import CLI, COMMAND, ROOT, Children, Result
from fake_wechat import APPID, ERRMSG, SECRET, FakeWeChat

# One process of the crowd: THREADS threads of one TokenCache call get() at once, when
# the file GO appears; it prints, for each, how long get() took and what it gave.
CROWD = """
import json, os, sys, threading, time
sys.path.insert(0, {root!r})
import wechat_token
tokens = wechat_token.TokenCache({appid!r}, {secret!r}, cache_file={cache!r},
    api_bases=[{base!r}], cacert={ca!r}, timeout={timeout!r}, retries={retries!r})
until = time.monotonic() + 20
while not os.path.exists({go!r}) and time.monotonic() < until:
    time.sleep(0.005)
results = []
def one():
    start = time.monotonic()
    try:
        outcome = tokens.get().access_token
    except wechat_token.WeChatTokenError as error:
        outcome = type(error).__name__ + ": " + str(error)
    results.append((time.monotonic() - start, outcome))
threads = [threading.Thread(target=one) for _ in range({threads})]
for thread in threads: thread.start()
for thread in threads: thread.join(60)
print(json.dumps(results))
"""


def _crowd(
    fake: FakeWeChat,
    ca_file: str,
    tmp_path: Path,
    children: Children,
    *,
    processes: int = 4,
    threads: int = 16,
    timeout: float = 5.0,
    retries: int = 0,
) -> list[tuple[float, str]]:
    """Start the processes, let them all go at once, and gather every get()'s result."""
    go = tmp_path / "go"
    code = CROWD.format(
        root=str(ROOT),
        appid=APPID,
        secret=SECRET,
        cache=str(tmp_path / "token.json"),
        base=fake.base_url,
        ca=ca_file,
        timeout=timeout,
        retries=retries,
        go=str(go),
        threads=threads,
    )
    procs = [children.start([sys.executable, "-c", code]) for _ in range(processes)]
    time.sleep(0.3)  # most are ready; the rest start late, as a real crowd does
    go.touch()
    results = [children.finish(proc) for proc in procs]
    assert [(result.code, result.err) for result in results] == [(0, "")] * processes
    return [(each[0], each[1]) for result in results for each in json.loads(result.out)]


def test_a_crowd_on_a_refused_account_makes_one_request(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    """16 threads in each of 4 processes: WeChat refuses the first (40164, this machine's
    IP is not on the whitelist); every other caller gets that answer, and asks nothing."""
    fake.behaviour = 40164
    outcomes = [outcome for _took, outcome in _crowd(fake, ca_file, tmp_path, children)]
    assert len(outcomes) == 64
    assert {outcome.split(" (")[0] for outcome in outcomes} == {
        f"WeChatAPIError: errcode 40164: {ERRMSG[40164]}"
    }
    assert len(fake.requests) == 1


def test_a_crowd_on_an_empty_cache_makes_one_request(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    fake.behaviour = "slow"
    outcomes = [outcome for _took, outcome in _crowd(fake, ca_file, tmp_path, children)]
    assert outcomes == ["fake_token_1"] * 64
    assert len(fake.requests) == 1


def test_a_crowd_on_a_server_that_never_answers_ends_within_each_callers_bound(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    """No answer is no answer to share: the lock holder's timeout belongs to its path.
    Each caller waits for the lock, tries its own path if time is left, and gives up at
    its own bound, saying how long the lock has been held."""
    fake.behaviour = "hang"
    bound = time_bound(0, 0.5)  # 1 s: one attempt of 0.5 s, and 0.5 s of its own
    results = _crowd(fake, ca_file, tmp_path, children, timeout=0.5)
    assert len(results) == 64
    slowest = max(took for took, _outcome in results)
    assert slowest <= bound, f"the slowest get() took {slowest:.2f} s, over {bound} s"
    for _took, outcome in results:
        assert outcome.startswith(
            (
                "TransportError: no answer from 127.0.0.1 within ",
                "TransportError: no connection to 127.0.0.1 within ",
                "TransportError: gave up at the time bound of this run: another caller ",
            )
        ), outcome
    assert len(fake.requests) >= 1


# --- A fork while another thread fetches -------------------------------------------------


def _child_get(tokens: TokenCache, answers: multiprocessing.Queue[object]) -> None:
    """In the forked child: get a token, say it, and stay alive a while (as a worker does)."""
    try:
        answers.put(tokens.get().access_token)
    except wechat_token.WeChatTokenError as error:
        answers.put(f"{type(error).__name__}: {error}")
    time.sleep(10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_fork_while_a_thread_fetches_leaves_the_child_a_working_cache(
    cli: CLI, fake: FakeWeChat, ca_file: str, tmp_path: Path
) -> None:
    """A web server forks its workers while a thread of the parent is fetching, and holds
    the cache's lock. The child has no copy of that lock to wait for: it gets the token
    the parent's thread stores. Nor does it keep the parent's lock held for its own life:
    another process takes the lock at once while the child is still alive."""
    fake.behaviour = "slow"  # 0.5 s, the fork comes in the middle
    cache = tmp_path / "token.json"
    tokens = TokenCache(
        APPID, SECRET, cache_file=str(cache), api_bases=[fake.base_url], cacert=ca_file
    )
    fetching = threading.Thread(target=tokens.get)
    fetching.start()
    until = time.monotonic() + 10
    while not fake.requests and time.monotonic() < until:  # the thread is in its fetch
        time.sleep(0.005)
    context = multiprocessing.get_context("fork")
    answers: multiprocessing.Queue[object] = context.Queue()
    with warnings.catch_warnings():  # 3.12+: "use of fork() may lead to deadlocks"
        warnings.simplefilter("ignore", DeprecationWarning)
        child = context.Process(target=_child_get, args=(tokens, answers), daemon=True)
        child.start()
    try:
        fetching.join(10)
        assert answers.get(timeout=10) == "fake_token_1"
        assert child.is_alive()
        started = time.monotonic()
        result = cli.main("--cache-file", str(cache), "--force-refresh", "--timeout", "2")
        assert result == Result(0, "fake_token_2\n", "")
        assert time.monotonic() - started < 1.9  # not the time bound: nobody held the lock
    finally:
        child.kill()
        child.join(5)
    assert len(fake.requests) == 2


def test_a_refusal_with_a_huge_errmsg_is_still_shared(
    fake: FakeWeChat, ca_file: str, tmp_path: Path, children: Children
) -> None:
    """A 40164 whose errmsg names a 10 KiB "IP": the refusal is kept (its errmsg cut to
    2,000 characters) and read back, so the crowd still makes one request."""
    errmsg = "invalid ip " + "1" * 10_000 + ", not in whitelist"
    fake.behaviour = json.dumps({"errcode": 40164, "errmsg": errmsg}).encode()
    outcomes = [outcome for _took, outcome in _crowd(fake, ca_file, tmp_path, children)]
    assert {outcome[:50] for outcome in outcomes} == {
        "WeChatAPIError: errcode 40164: invalid ip 11111111"
    }
    assert len(fake.requests) == 1


def _holding_the_lock_behind_a_silent_proxy(
    cli: CLI,
    env: pytest.MonkeyPatch,
    children: Children,
    stalled_port: int,
    args: tuple[str, ...],
) -> subprocess.Popen[str]:
    """A run whose https_proxy never answers, started alone with it; once this returns it
    holds the cache lock, waiting for its proxy."""
    env.setenv("https_proxy", f"http://127.0.0.1:{stalled_port}")
    holder = children.start([*COMMAND, *cli.argv(args, True)])
    env.delenv("https_proxy")
    time.sleep(0.3)
    return holder


def test_a_failure_on_another_callers_path_is_not_this_callers_answer(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    children: Children,
    stalled_port: int,
    tmp_path: Path,
) -> None:
    """One run has https_proxy set to a proxy that never answers, and holds the lock
    meanwhile; one started without it waits. The first fails on its path; the second then
    takes its own, and gets a token, not the first one's "no answer from the proxy"."""
    cache = str(tmp_path / "token.json")
    through = ("--cache-file", cache, "--retries", "0", "--timeout")
    proxied = _holding_the_lock_behind_a_silent_proxy(
        cli, env, children, stalled_port, (*through, "1")
    )
    direct = children.start([*COMMAND, *cli.argv((*through, "5"), True)])
    assert children.finish(direct) == Result(0, "fake_token_1\n", "")
    failed = children.finish(proxied)
    assert (failed.code, failed.out) == (3, "")
    assert "proxy" in failed.err.splitlines()[0]
    assert len(fake.requests) == 1


def test_a_holder_stuck_on_its_path_does_not_fail_a_caller_with_a_working_one(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    children: Children,
    stalled_port: int,
    tmp_path: Path,
) -> None:
    """The holder's proxy never answers, and its time bound (32 s) is longer than the
    other caller's (2.5 s): that caller waits half its time, then takes its own path and
    gets a token, within its own bound (an outside review found it failed without asking)."""
    cache = str(tmp_path / "token.json")
    stuck = _holding_the_lock_behind_a_silent_proxy(
        cli, env, children, stalled_port, ("--cache-file", cache)
    )
    started = time.monotonic()
    direct = children.start(
        [*COMMAND, *cli.argv(("--cache-file", cache, "--timeout", "2", "--retries", "0"), True)]
    )
    assert children.finish(direct) == Result(0, "fake_token_1\n", "")
    assert time.monotonic() - started < time_bound(0, 2) + 0.5  # + Python's start
    assert stuck.poll() is None  # still stuck: killed when the test ends
    assert len(fake.requests) == 1

"""Fixtures shared by every test: one fake WeChat, and two ways to run the tool.

`cli.main(...)` calls wechat_token.cli.main(argv) in this process (fast, measured by
coverage), on the real clock or on a `clock` fixture that skips the waits; `cli.run(...)`
and `cli.popen(...)` run `python -m wechat_token` as a user would, for what only a real
process shows. Both record what the tool printed, and after each test
`_no_secret_in_output` fails it if 8 characters of the AppSecret in a row, in any letter
case, appear anywhere in that output: the contract's promise (an AppSecret is 16 to 64 of
[A-Za-z0-9_-], which no escaping changes, so there is no other spelling to look for).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
# The tests read the tool's English unless a test asks for Chinese (LANG=zh_CN.UTF-8, or
# --lang zh): whatever this machine's locale, for this process and every child it starts.
for _name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"
sys.path.insert(0, str(ROOT))

import wechat_token.cli  # noqa: E402
from wechat_token import TokenCache  # noqa: E402

from fake_wechat import APPID, SECRET, FakeWeChat  # noqa: E402

PORT = str(ROOT / "fetch_token.py")  # the port of the PHP example
COMMAND = [sys.executable, "-m", "wechat_token"]  # the tool, as `wechat-token` runs it
SECRET_RUN = 8  # no 8 consecutive characters of the AppSecret may be shown
# Every run of SECRET_RUN characters of the fake's AppSecret, in lower case
SECRET_RUNS = {SECRET[i : i + SECRET_RUN].lower() for i in range(len(SECRET) - SECRET_RUN + 1)}
OUTPUTS: list[str] = []  # everything the tool printed during the whole suite
# Cleared for each test: the account, and the proxy variables that libcurl reads (a
# developer's own proxy would carry the tests' requests).
ENV_TO_CLEAR = (
    "WECHAT_APPID",
    "WECHAT_APPSECRET",
    *("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"),
)

# Property-based tests: CI runs a fixed, repeatable set ("ci", the default); run
# `pytest --hypothesis-profile=hunt` to let Hypothesis search far longer for new cases.
_PATIENT = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, max_examples=60, **_PATIENT)
settings.register_profile("hunt", max_examples=3000, **_PATIENT)
settings.load_profile("ci")


class Result(NamedTuple):
    code: int
    out: str
    err: str


class VirtualClock:
    """A clock on which waiting takes no time: sleep(s) returns at once and moves the clock
    on by s. Passed to wechat_token.cli.main as clock= and sleep=, it lets a test run the
    retries, the backoff and the deadline as they are, without their waits; what the run
    really spends (requests, timeouts) still counts. `waits` lists the sleeps asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._skipped += seconds


def find_secret(texts: list[str]) -> list[str]:
    """The texts that hold 8 characters of the AppSecret in a row, in any letter case."""
    return [t for t in texts if any(run in t.lower() for run in SECRET_RUNS)]


@pytest.fixture(autouse=True)
def _no_secret_in_output() -> Iterator[None]:
    start = len(OUTPUTS)
    yield
    leaks = find_secret(OUTPUTS[start:])
    assert not leaks, f"the AppSecret was printed: {leaks}"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "fake-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def _server(ca: trustme.CA) -> Iterator[FakeWeChat]:
    with FakeWeChat(ca.issue_cert("127.0.0.1", "localhost")) as server:
        yield server


@pytest.fixture
def stalled_port() -> Iterator[int]:
    """A port whose listen queue is full: a connection attempt gets no answer at all."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    time.sleep(0.1)
    yield port
    for sock in [server, *fillers]:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port that was free a moment ago: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def signals_delivered() -> Iterator[None]:
    """Children inherit ignored signals (nohup, `pytest &`): un-ignore them for the test,
    so that a child can be stopped as from a terminal, then put them back."""
    watched = (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))
    ignored = [signum for signum in watched if signal.getsignal(signum) == signal.SIG_IGN]
    for signum in ignored:
        handler = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, handler)
    yield
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)


@pytest.fixture
def fake(_server: FakeWeChat) -> Iterator[FakeWeChat]:
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment holding the fake account, in an empty working folder."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WECHAT_APPID", APPID)
    monkeypatch.setenv("WECHAT_APPSECRET", SECRET)
    # The cache goes under this test's folder, never the real home.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


class CLI:
    def __init__(self, fake: FakeWeChat, ca_file: str, capsys: pytest.CaptureFixture[str]):
        self.fake = fake
        self.ca_file = ca_file
        self.capsys = capsys

    def argv(self, args: tuple[str, ...], base: bool) -> list[str]:
        """The arguments, after --api-base and --cacert for the fake unless base=False."""
        return (
            ["--api-base", self.fake.base_url, "--cacert", self.ca_file, *args] if base else [*args]
        )

    def main(self, *args: str, base: bool = True, clock: VirtualClock | None = None) -> Result:
        """wechat_token.cli.main(ARGS) in this process; on `clock` if given, else in real time."""
        self.capsys.readouterr()
        if clock is None:
            code = wechat_token.cli.main(self.argv(args, base))
        else:
            code = wechat_token.cli.main(self.argv(args, base), clock=clock, sleep=clock.sleep)
        out, err = self.capsys.readouterr()
        OUTPUTS.extend((out, err))
        return Result(code, out, err)

    def popen(self, *args: str, base: bool = True) -> subprocess.Popen[str]:
        """`python -m wechat_token ARGS`; the caller bounds its wait and reaps it."""
        return subprocess.Popen(
            [*COMMAND, *self.argv(args, base)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, base: bool = True) -> Result:
        """`python -m wechat_token ARGS` to its end (killed after 30 s: a hang fails)."""
        with self.popen(*args, base=base) as proc:
            try:
                out, err = proc.communicate(timeout=30)
            finally:
                proc.kill()  # a no-op once it ended; else no child outlives a failed test
        OUTPUTS.extend((out, err))
        return Result(proc.returncode, out, err)


class Children:
    """Processes a test starts, each in a session of its own so that a signal can reach all
    it started; whatever the test does, every one is killed and reaped when it ends."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[str], timeout: float = 30) -> Result:
        """Its exit status and output, once it ends; a child still running after `timeout`
        seconds fails the test (and is killed with the others)."""
        out, err = proc.communicate(timeout=timeout)
        OUTPUTS.extend((out, err))
        return Result(proc.returncode, out, err)

    def reap(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    try:
        yield started
    finally:
        started.reap()


@pytest.fixture
def cli(
    fake: FakeWeChat, ca_file: str, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CLI:
    return CLI(fake, ca_file, capsys)


def token_cache(fake: FakeWeChat, ca_file: str, cache: Path, **options: object) -> TokenCache:
    """A TokenCache of the fake's account, on `cache`, trusting the fake's CA."""
    return TokenCache(
        APPID,
        SECRET,
        cache_file=str(cache),
        api_bases=[fake.base_url],
        cacert=ca_file,
        **options,  # type: ignore[arg-type]
    )

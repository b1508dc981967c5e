"""Signals, through the real process.

The promises:
- SIGINT, SIGTERM and SIGHUP end the run within 0.5 s at any moment, as killed by that
  signal (so a shell loop stops at the first Ctrl-C), with nothing on stdout (even with
  --json) and no traceback; the cache file stays whole and its lock is released.
- wechat_token.cli.main() hands Ctrl-C to its default action while it runs, and leaves the
  signal handlers as it found them.
The time bound of runs sharing a cache is in test_retries.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import wechat_token.cache
import wechat_token.cli
import wechat_token.entry
from wechat_token.files import replace_file

from conftest import CLI, COMMAND, OUTPUTS, Result
from fake_wechat import APPID, FakeWeChat

if os.name == "posix":
    import fcntl

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fcntl locks"),
    pytest.mark.usefixtures("signals_delivered"),  # even when pytest runs in the background
]

SIGNAL_BOUND = 0.5  # seconds from the signal to the end of the process, at any moment
GRACE = 2.0  # a process still running this long after its signal is killed, and fails
PATIENCE = 5.0  # seconds to wait for a run to reach the moment a test needs
HAS_PROC = os.path.isdir(f"/proc/{os.getpid()}/fd")  # Linux: see what a child is doing
WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if os.name == "posix" else (signal.SIGINT,)


# --- Starting, watching and stopping the real process ---------------------------------


def _spawn(cli: CLI, *args: str, base: bool = True) -> subprocess.Popen[str]:
    """`python -m wechat_token ARGS` in its own process group, as a terminal would run it."""
    return subprocess.Popen(
        [*COMMAND, *cli.argv(args, base)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill the process (group) if it still runs, wait for it, close its pipes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


@contextlib.contextmanager
def _started(cli: CLI, *args: str, base: bool = True) -> Iterator[subprocess.Popen[str]]:
    proc = _spawn(cli, *args, base=base)
    try:
        yield proc
    finally:
        _reap(proc)


def _wait_for(proc: subprocess.Popen[str], condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition` holds; fail at once if the process ends before."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate(timeout=5)
            pytest.fail(f"the run ended ({proc.returncode}) before {what}: {out!r} {err!r}")
        assert time.monotonic() < deadline, f"no {what} within {PATIENCE} s"
        time.sleep(0.01)


def _signal_and_wait(proc: subprocess.Popen[str], signum: int) -> tuple[float, str, str]:
    """Send `signum`; the seconds until the process ended (inf: killed after GRACE), output."""
    start = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=GRACE)
        elapsed = time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=5)
        elapsed = math.inf
    OUTPUTS.extend((out, err))
    return elapsed, out, err


def _assert_killed_by(
    proc: subprocess.Popen[str], signum: int, elapsed: float, out: str, err: str
) -> None:
    name = signal.Signals(signum).name
    if elapsed == math.inf:
        pytest.fail(f"still running {GRACE} s after {name}; stderr: {err!r}")
    assert elapsed < SIGNAL_BOUND, f"{elapsed:.2f} s from {name} to exit; stderr: {err!r}"
    assert proc.returncode == -signum, (
        f"exit status {proc.returncode}, not killed by {name}; stderr: {err!r}"
    )
    assert out == ""
    assert "Traceback" not in err


# --- What a run can be waiting for -----------------------------------------------------


class _SilentServer:
    """Accepts TCP connections on 127.0.0.1 and reads them, but never says a word.

    A TLS client connects, sends its ClientHello, and waits for an answer that never comes.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.received = 0  # bytes read from all clients
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener, *self._clients], [], [], 0.05)
            for sock in readable:
                if sock is self._listener:
                    self._clients.append(self._listener.accept()[0])
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                self.received += len(data)
                if not data:  # the client went away
                    self._clients.remove(sock)
                    sock.close()

    def __enter__(self) -> _SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._clients]:
            sock.close()


@contextlib.contextmanager
def _lock_held(path: str) -> Iterator[None]:
    """Hold the cache lock, as another process fetching a token would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fds(pid: int) -> list[str]:
    """What the process's file descriptors point to (Linux /proc)."""
    folder = f"/proc/{pid}/fd"
    targets = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(folder):
            with contextlib.suppress(OSError):
                targets.append(os.readlink(f"{folder}/{fd}"))
    return targets


def _connecting(pid: int, port: int) -> bool:
    """True if the process has a TCP socket in SYN-SENT to 127.0.0.1:`port` (Linux /proc)."""
    inodes = {target[len("socket:[") : -1] for target in _fds(pid) if target.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as file:
            for line in file.read().splitlines()[1:]:
                fields = line.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                if state == "02" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    return True
    return False


def _has_open(pid: int, path: str) -> bool:
    return os.path.realpath(path) in _fds(pid)


class _Moment(NamedTuple):
    args: tuple[str, ...]
    base: bool  # the fake's --api-base and --cacert first
    ready: Callable[[subprocess.Popen[str]], None]  # returns once the run is there
    requests: int  # requests the fake gets, in all: none may follow the signal


def _arrange(
    moment: str,
    request: pytest.FixtureRequest,
    cli: CLI,
    fake: FakeWeChat,
    tmp_path: Path,
    stack: contextlib.ExitStack,
) -> _Moment:
    """How to bring a run to `moment`, and how to tell it is there."""

    def unused_by_the_fake(port: int) -> tuple[str, ...]:
        return ("--api-base", f"https://127.0.0.1:{port}", "--cacert", cli.ca_file)

    if moment == "tls-handshake":
        server = stack.enter_context(_SilentServer())

        def in_handshake(proc: subprocess.Popen[str]) -> None:
            _wait_for(proc, lambda: server.received > 0, "ClientHello")
            time.sleep(0.1)

        args = (*unused_by_the_fake(server.port), "--timeout", "30")
        return _Moment(args, False, in_handshake, 0)

    if moment == "tcp-connect":
        port = request.getfixturevalue("stalled_port")

        def connecting(proc: subprocess.Popen[str]) -> None:
            if HAS_PROC:
                _wait_for(proc, lambda: _connecting(proc.pid, port), "connection attempt")
                time.sleep(0.1)
            else:
                time.sleep(1.0)

        args = (*unused_by_the_fake(port), "--timeout", "30")
        return _Moment(args, False, connecting, 0)

    if moment == "answer":
        fake.behaviour = "hang"

        def asked(proc: subprocess.Popen[str]) -> None:
            _wait_for(proc, lambda: len(fake.requests) >= 1, "request")
            time.sleep(0.05)

        return _Moment(("--timeout", "30"), True, asked, 1)

    if moment == "cache-lock":
        cache = str(tmp_path / "token.json")
        stack.enter_context(_lock_held(cache + ".lock"))

        def waiting(proc: subprocess.Popen[str]) -> None:
            if HAS_PROC:
                _wait_for(proc, lambda: _has_open(proc.pid, cache + ".lock"), "open lock file")
                time.sleep(0.1)
            else:
                time.sleep(0.8)

        return _Moment(("--cache-file", cache, "--timeout", "30"), True, waiting, 0)

    if moment == "retry-wait":
        fake.behaviour = "502"  # answered at once; the next attempt comes 0.5 s later

        def in_first_wait(proc: subprocess.Popen[str]) -> None:
            _wait_for(proc, lambda: len(fake.requests) >= 1, "request")
            time.sleep(0.15)

        return _Moment(("--retries", "3", "--timeout", "30"), True, in_first_wait, 1)

    raise ValueError(moment)


MOMENTS = ["tls-handshake", "tcp-connect", "answer", "cache-lock", "retry-wait"]


# --- 1, 2: a signal ends the run at once, as killed by it ------------------------------


SIGNAL_CASES = [
    *(pytest.param(signal.SIGINT, moment, False, id=f"SIGINT-{moment}") for moment in MOMENTS),
    pytest.param(signal.SIGINT, "answer", True, id="SIGINT-answer-json"),
    *(
        pytest.param(signum, moment, False, id=f"{signum.name}-{moment}")
        for signum in (signal.SIGTERM, signal.SIGHUP)
        for moment in ("answer", "cache-lock")
    ),
]


@pytest.mark.parametrize(("signum", "moment", "json_mode"), SIGNAL_CASES)
def test_a_signal_kills_the_run_at_once_at_any_moment(
    signum: signal.Signals,
    moment: str,
    json_mode: bool,
    request: pytest.FixtureRequest,
    cli: CLI,
    fake: FakeWeChat,
    tmp_path: Path,
) -> None:
    """SIGINT at any moment, and SIGTERM and SIGHUP: dead by that signal within 0.5 s,
    stdout empty (even with --json), and no request after the signal."""
    with contextlib.ExitStack() as stack:
        arranged = _arrange(moment, request, cli, fake, tmp_path, stack)
        args = (*arranged.args, "--json") if json_mode else arranged.args
        with _started(cli, *args, base=arranged.base) as proc:
            arranged.ready(proc)
            elapsed, out, err = _signal_and_wait(proc, signum)
    _assert_killed_by(proc, signum, elapsed, out, err)
    assert len(fake.requests) == arranged.requests


# --- 3: nothing damaged ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "moment", "entry"),
    [
        (signal.SIGINT, "answer", "other"),
        (signal.SIGTERM, "answer", "forced"),
        (signal.SIGINT, "retry-wait", "forced"),
        (signal.SIGHUP, "retry-wait", "other"),
    ],
    ids=lambda value: signal.Signals(value).name if isinstance(value, int) else value,
)
def test_a_signal_leaves_the_cache_whole_and_the_lock_free(
    signum: int,
    moment: str,
    entry: str,
    request: pytest.FixtureRequest,
    cli: CLI,
    fake: FakeWeChat,
    tmp_path: Path,
) -> None:
    """After a signal mid-fetch the cache file is as it was (or a valid entry), the lock free.

    The cache holds a valid entry that this run does not use: one for another API base
    ("other"), or one that --force-refresh skips ("forced").
    """
    cache = str(tmp_path / "token.json")
    if entry == "other":  # the same server by another name: the entry is for another base
        by_name = fake.base_url.replace("127.0.0.1", "localhost")
        first = cli.main(
            "--api-base", by_name, "--cacert", cli.ca_file, "--cache-file", cache, base=False
        )
        extra: tuple[str, ...] = ()
    else:
        first = cli.main("--cache-file", cache)
        extra = ("--force-refresh",)
    assert (first.code, first.out) == (0, "fake_token_1\n")
    before = Path(cache).read_bytes()
    fake.reset()

    with contextlib.ExitStack() as stack:
        arranged = _arrange(moment, request, cli, fake, tmp_path, stack)
        with _started(cli, *arranged.args, "--cache-file", cache, *extra) as proc:
            arranged.ready(proc)
            elapsed, out, err = _signal_and_wait(proc, signum)
    _assert_killed_by(proc, signum, elapsed, out, err)

    after = Path(cache).read_bytes()
    if after != before:
        assert isinstance(json.loads(after), dict), f"the cache file was damaged: {after!r}"
    fd = os.open(cache + ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: still held
    finally:
        os.close(fd)
    fake.behaviour = "ok"  # and the next run works at once
    start = time.monotonic()
    again = cli.main("--cache-file", cache, "--timeout", "2", "--retries", "0")
    assert (again.code, again.err) == (0, "")
    assert time.monotonic() - start < 2


# --- 4: a shell loop stops at the first Ctrl-C -----------------------------------------


def test_a_shell_loop_stops_at_the_first_ctrl_c(cli: CLI, fake: FakeWeChat) -> None:
    """Ctrl-C to the foreground process group stops `while true; do wechat-token; done`.

    bash goes on with the loop when its child exits normally, even with 130; it stops only
    when the child died of SIGINT.
    """
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    fake.behaviour = "hang"
    args = cli.argv(("--no-cache", "--timeout", "30", "--retries", "0"), True)
    loop = 'while true; do "$0" "$@"; done'
    shell = subprocess.Popen(
        [bash, "-c", loop, *COMMAND, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(shell, lambda: len(fake.requests) >= 1, "request")
        time.sleep(0.05)
        start = time.monotonic()
        os.killpg(shell.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        try:
            out, err = shell.communicate(timeout=1.5)
            elapsed = time.monotonic() - start
        except subprocess.TimeoutExpired:
            out, err, elapsed = "", "", math.inf
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)  # the loop, and the run it started
        _reap(shell)
    OUTPUTS.extend((out, err))
    assert elapsed < 1.0, f"bash went on looping: the fake got {len(fake.requests)} requests"
    assert shell.returncode == -signal.SIGINT
    assert len(fake.requests) == 1
    assert (out, "Traceback" in err) == ("", False)


# --- 5: main() in-process: Ctrl-C's default action while it runs, the handlers kept ------


def _custom_handler(signum: int, frame: object) -> None:
    pass


@pytest.mark.parametrize(
    ("outcome", "behaviour", "args", "code"),
    [
        pytest.param("success", "ok", (), 0, id="success"),
        pytest.param("wechat-error", 40013, (), 1, id="wechat-error"),
        pytest.param("network-failure", "502", ("--retries", "0"), 3, id="network-failure"),
        pytest.param("usage-error", "ok", ("--retries", "many"), 2, id="usage-error"),
    ],
)
@pytest.mark.parametrize("handlers", ["pytest's", "custom"])
def test_main_in_process_restores_the_signal_handlers(
    outcome: str,
    behaviour: str | int,
    args: tuple[str, ...],
    code: int,
    handlers: str,
    cli: CLI,
    fake: FakeWeChat,
) -> None:
    """wechat_token.cli.main() returns with SIGINT, SIGTERM and SIGHUP handled as before it ran."""
    saved = {signum: signal.getsignal(signum) for signum in WATCHED}
    try:
        if handlers == "custom":
            for signum in WATCHED:
                signal.signal(signum, _custom_handler)
        before = {signum: signal.getsignal(signum) for signum in WATCHED}
        fake.behaviour = behaviour
        result = cli.main("--no-cache", *args)
        after = {signum: signal.getsignal(signum) for signum in WATCHED}
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert result.code == code, outcome
    assert after == before


def test_main_hands_ctrl_c_to_its_default_action_while_it_runs(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However main() is called (python -m, an installed command, a test), Ctrl-C ends the
    run as killed by SIGINT, and the handler is put back afterwards."""
    seen: list[object] = []
    real = wechat_token.cache.cached_access_token

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(signal.getsignal(signal.SIGINT))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wechat_token.cli, "cached_access_token", spy)
    before = signal.getsignal(signal.SIGINT)
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert seen == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGINT) is before


# --- 6: a signal while the cache is written -----------------------------------------------


def test_a_signal_during_the_cache_write_takes_effect_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while it writes the cache leaves the new entry in place, and no
    temporary file: the signal is held back until the rename is done."""
    path = tmp_path / "token.json"
    seen: list[list[str]] = []  # the folder's files when the signal took effect
    real_fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        # To this thread: the test's servers run threads, which a signal to the whole
        # process could go to; the command itself has no other thread while it writes.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    entry = wechat_token.entry.CacheEntry(
        APPID, "/cgi-bin/token", "https://x", "0" * 64, "t", 7200, 1.0
    )
    before = signal.signal(signal.SIGTERM, lambda *_: seen.append(os.listdir(tmp_path)))
    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    try:
        replace_file(str(path), json.dumps(entry._asdict()).encode())
    finally:
        signal.signal(signal.SIGTERM, before)
    assert seen == [["token.json"]]

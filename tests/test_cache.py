"""The token cache: reused while it has time left, shared safely by many processes.

One file per account and endpoint, locked while a run reads it and, if need be, fetches
and stores a new token, so that runs started together make one request; the lock holder
leaves a note for those waiting. Damaged, foreign or forged entries are replaced, never
trusted; the file is replaced in one step. Real processes only where locks across
processes, a kill, or a Python without fcntl or pycurl are the point.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import wechat_token.api
import wechat_token.cache
import wechat_token.config
import wechat_token.entry
import wechat_token.lock
from wechat_token.endpoints import STABLE_TOKEN, TOKEN

from conftest import CLI, COMMAND, OUTPUTS, Children, Result, VirtualClock, find_secret
from fake_wechat import APPID, ERRMSG, SECRET, FakeWeChat

if os.name == "posix":
    import fcntl


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    """Where the cache goes by default in the tests ($XDG_CACHE_HOME is set by `env`)."""
    return tmp_path / "cache" / "wechat_token" / f"{APPID}.token.json"


def entry(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def rewrite(path: Path, **changes: object) -> None:
    """Edit the cache entry in place, as another program (or a disk error) might."""
    path.write_text(json.dumps({**entry(path), **changes}), encoding="utf-8")


def test_two_runs_make_one_request(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 1


def test_cache_hit_as_json_gives_the_time_left(cli: CLI, fake: FakeWeChat) -> None:
    assert json.loads(cli.main("--json").out)["cached"] is False
    answer = json.loads(cli.main("--json").out)
    assert answer["access_token"] == "fake_token_1"
    assert answer["cached"] is True
    assert 7190 <= answer["expires_in"] <= 7200
    assert abs(answer["expires_at"] - (time.time() + answer["expires_in"])) <= 2


def test_verbose_says_where_the_token_came_from(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    first = cli.main("-v").err.splitlines()
    assert first[0] == f"* cache: nothing in {cache_file} yet"
    assert first[-1] == f"* cache: token saved in {cache_file}"
    second = cli.main("-v").err.splitlines()
    assert len(second) == 1
    assert second[0].startswith(f"* cache: token from {cache_file}, valid for 7")
    assert second[0].endswith(" s more")


def test_verbose_and_json_give_the_same_time_left(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    """Both say whole seconds, cut down: "valid for 7000 s more" and "expires_in": 7000."""
    cli.main()
    entry = json.loads(cache_file.read_text())
    entry["expires_at"] = time.time() + 7000.9  # a fraction that rounds up, and is cut down
    cache_file.write_text(json.dumps(entry))
    result = cli.main("--json", "-v")
    left = json.loads(result.out)["expires_in"]
    assert left in (7000, 6999)  # a moment passes
    assert result.err == f"* cache: token from {cache_file}, valid for {left} s more\n"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_cache_folder_is_0700_and_files_0600(cli: CLI, cache_file: Path) -> None:
    cli.main()
    assert stat.S_IMODE(cache_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{cache_file}.lock").stat().st_mode) == 0o600
    assert sorted(p.name for p in cache_file.parent.iterdir()) == [
        cache_file.name,
        cache_file.name + ".lock",
    ]  # no temporary file left behind


def test_cache_holds_a_fingerprint_never_the_secret(cli: CLI, cache_file: Path) -> None:
    cli.main()
    # Not 8 characters of the secret in a row, in any letter case, in the file or its lock
    files = [cache_file, Path(f"{cache_file}.lock")]
    assert find_secret([path.read_text(encoding="utf-8", errors="replace") for path in files]) == []
    saved = entry(cache_file)
    assert saved["secret_sha256"] == wechat_token.entry.secret_fingerprint(
        os.environ["WECHAT_APPSECRET"]
    )
    assert saved["secret_sha256"] != wechat_token.entry.secret_fingerprint("another secret")
    assert (saved["appid"], saved["endpoint"], saved["realm"]) == (
        APPID,
        "/cgi-bin/token",
        cli.fake.base_url,
    )


def test_cache_under_home_when_xdg_cache_home_is_unset_or_relative(
    cli: CLI, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says: ignore it
    cli.main()
    env.delenv("XDG_CACHE_HOME")
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert (tmp_path / "home" / ".cache" / "wechat_token" / f"{APPID}.token.json").is_file()
    assert not (tmp_path / "relative").exists()


def test_no_cache_neither_reads_nor_writes(
    cli: CLI, fake: FakeWeChat, cache_file: Path, tmp_path: Path
) -> None:
    assert cli.main("--no-cache").out == "fake_token_1\n"
    assert not (tmp_path / "cache").exists()
    cli.main()  # fills the cache with fake_token_2
    before = cache_file.read_bytes()
    assert cli.main("--no-cache").out == "fake_token_3\n"
    assert cache_file.read_bytes() == before
    assert len(fake.requests) == 3


def test_force_refresh_fetches_and_stores(cli: CLI, fake: FakeWeChat) -> None:
    assert cli.main().out == "fake_token_1\n"
    assert cli.main("--force-refresh", "-v").err.startswith("* cache: --force-refresh, not read")
    assert cli.main().out == "fake_token_2\n"  # the new one was stored
    assert len(fake.requests) == 2


def test_cache_file_option_and_config_key(cli: CLI, fake: FakeWeChat, tmp_path: Path) -> None:
    cli.main("--cache-file", "mine.json")
    assert entry(tmp_path / "mine.json")["value"] == "fake_token_1"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.ini").write_text("[wechat]\ncache_file = token.json\n")
    cli.main("--config", "conf/config.ini")  # relative to the config file, like ca_bundle
    assert entry(tmp_path / "conf" / "token.json")["value"] == "fake_token_2"


def test_no_cache_and_cache_file_together_is_a_usage_error(cli: CLI) -> None:
    assert cli.main("--no-cache", "--cache-file", "x.json") == Result(
        2,
        "",
        "error: argument --cache-file: not allowed with argument --no-cache\nhint: see --help\n",
    )


# What a damaged cache file may hold: each is ignored and replaced.
DAMAGED = [
    b"",  # created, then the disk filled up
    b'{"appid": "wx0123456789abcdef", "endpoi',  # cut short
    b'{"appid": "wx0123456789abcdef", "value": "fake_token_9"}',  # fields missing
    b'{"appid": ' + b"[" * 60_000,  # nesting deep enough for RecursionError
]
# What a file this tool never wrote may hold: each is refused, and left as it is.
FOREIGN = [
    b"[wechat]\nappid = wx0123456789abcdef\n",  # --cache-file config.ini, for --config
    b"\xff\xfe not utf-8",
    b"[]",
    b"null",
    b'{"access_token": "fake_token_9", "expires_in": 7200}',
]


@pytest.mark.parametrize("content", FOREIGN)
def test_a_file_this_tool_never_wrote_is_not_replaced(
    cli: CLI, fake: FakeWeChat, cache_file: Path, content: bytes
) -> None:
    """An outside review typed --cache-file config.ini (for --config): the AppSecret's
    file was replaced by a cache entry, silently."""
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    assert cli.main() == Result(
        2,
        "",
        f"error: {cache_file} is not a cache file: refusing to replace what it holds\n"
        "hint: name another file with --cache-file (is it --config that was meant?)\n",
    )
    assert cache_file.read_bytes() == content
    assert fake.requests == []


@pytest.mark.parametrize("content", DAMAGED)
def test_damaged_cache_is_ignored_and_replaced(
    cli: CLI, fake: FakeWeChat, cache_file: Path, content: bytes
) -> None:
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert f"* cache: {cache_file} is a damaged entry; it will be replaced\n" in result.err
    assert entry(cache_file)["value"] == "fake_token_1"
    assert cli.main() == Result(0, "fake_token_1\n", "")  # quiet without -v


@pytest.mark.parametrize(
    "changes",
    [
        {"expires_in": "7200"},  # wrong type
        {"expires_at": "tomorrow"},
        {"expires_at": 1e300},  # not a Unix time: 1e12 is the year 33658
        {"expires_in": 10**400},  # would overflow a float: now + 10**400 raised
        {"expires_at": 10**400},
        {"secret_sha256": None},
        {"value": "tok\u001b[2J"},  # would reach the terminal
        {"value": ""},
        {"surprise": 1},  # a field we never write
    ],
)
def test_cache_entry_of_the_wrong_shape_is_replaced(
    cli: CLI, fake: FakeWeChat, cache_file: Path, changes: dict[str, object]
) -> None:
    cli.main()
    rewrite(cache_file, **changes)
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_2\n")
    assert f"* cache: {cache_file} is a damaged entry; it will be replaced\n" in result.err
    assert entry(cache_file)["value"] == "fake_token_2"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"appid": "wx00000000000000ff"}, "it is for another AppID or endpoint"),
        ({"endpoint": "/cgi-bin/stable_token"}, "it is for another AppID or endpoint"),
        ({"realm": "https://api.weixin.qq.com"}, "it is for https://api.weixin.qq.com"),
        ({"secret_sha256": "0" * 64}, "it was fetched with another AppSecret"),
        ({"expires_at": 0}, "it has 0 s left, and 300 s is the margin"),
        ({"expires_at": 2e9}, "it has "),  # more left than its lifetime: the clock moved
    ],
)
def test_cache_entry_for_something_else_means_a_fresh_token(
    cli: CLI, fake: FakeWeChat, cache_file: Path, changes: dict[str, object], reason: str
) -> None:
    cli.main()
    rewrite(cache_file, **changes)
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_2\n")
    assert f"* cache: not using the token in {cache_file}: {reason}" in result.err
    assert entry(cache_file)["value"] == "fake_token_2"


def test_nan_expiry_is_never_trusted(cli: CLI, cache_file: Path) -> None:
    cli.main()
    cache_file.write_text(json.dumps({**entry(cache_file), "expires_at": float("nan")}))
    assert cli.main().out == "fake_token_2\n"


NOW = 1_000_000.0
WANTED = wechat_token.entry.CacheEntry(APPID, "/cgi-bin/token", "https://a", "f" * 64, "", 0, NOW)


@pytest.mark.parametrize(
    ("lifetime", "left", "reused"),
    [
        (7200, 7200, True),
        (7200, 301, True),
        (7200, 300, False),  # the margin is 300 s ...
        (7200, 100, False),
        (7200, -5, False),  # expired
        (7200, 7201, False),  # more than its lifetime: the clock went back
        (400, 201, True),  # ... or half the lifetime when that is shorter
        (400, 200, False),
        (60, 31, True),
        (60, 30, False),
    ],
)
def test_reusable_keeps_a_safety_margin(lifetime: int, left: float, reused: bool) -> None:
    cached = WANTED._replace(value="t", expires_in=lifetime, expires_at=NOW + left)
    assert (wechat_token.entry.reusable(cached, WANTED, NOW) == "") is reused


def test_near_expiry_the_cli_fetches_again(cli: CLI, fake: FakeWeChat, cache_file: Path) -> None:
    cli.main()
    rewrite(cache_file, expires_at=time.time() + 290)
    assert cli.main().out == "fake_token_2\n"
    rewrite(cache_file, expires_at=time.time() + 320)
    assert cli.main().out == "fake_token_2\n"


# --- Many processes, one request ------------------------------------------------------------


# Ten: about as many as this 2-core machine starts within the fake's half second ("slow");
# those started later only find the cache filled, and test nothing more.
AT_ONCE = 10


def test_many_processes_at_once_make_one_request(
    cli: CLI, fake: FakeWeChat, children: Children
) -> None:
    fake.behaviour = "slow"  # half a second in which the others could also fetch
    procs = [children.start([*COMMAND, *cli.argv((), True)]) for _ in range(AT_ONCE)]
    results = [children.finish(proc, timeout=60) for proc in procs]
    assert results == [Result(0, "fake_token_1\n", "")] * AT_ONCE
    assert len(fake.requests) == 1


# --- The lock, and the note its holder leaves for those waiting ---------------------------


@contextlib.contextmanager
def lock_held(cache: Path) -> Iterator[int]:
    """The cache's lock, held as another process fetching a token would hold it."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{cache}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock, if the test has not


class WhileWaiting(VirtualClock):
    """A virtual clock that does `action` at the run's first wait for the lock: what the
    process holding it does in that moment (let go of the lock, say)."""

    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__()
        self.action: Callable[[], None] | None = action

    def sleep(self, seconds: float) -> None:
        if self.action is not None:
            action, self.action = self.action, None
            action()
        super().sleep(seconds)


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_stuck_lock_holder_is_not_this_runs_answer(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, cache_file: Path
) -> None:
    """The holder's path may be stuck: once this run has waited half its time, it takes
    its own, without the lock, and says under -v for how long the lock had been held."""
    with lock_held(cache_file) as fd:
        # It took the lock 12 s ago, and may hold it for a minute more (lock() dates the
        # file so: when taken, and by when its holder will have let go).
        os.utime(fd, (time.time() - 12, time.time() + 60))
        start = clock()
        result = cli.main("-v", "--timeout", "1", "--retries", "0", clock=clock)
        waited = clock() - start
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert re.search(
        f"\\* cache: another caller has held {re.escape(str(cache_file))}.lock for 12\\.[0-9] "
        "s, and may hold it past this run's end: trying this run's own way\n",
        result.err,
    )
    # A run with --timeout 1 --retries 0 has a bound of 1.5 s; the attempts of one that
    # waited end by 1 s (0.5 s is kept for after them). It waits for a holder that may hold
    # the lock past that for half of it, or while it would still have time for a whole
    # attempt, whichever is longer: 0.5 s.
    assert 0.5 <= waited < 0.9
    assert set(clock.waits) == {wechat_token.lock.LOCK_POLL}
    assert json.loads(cache_file.read_text())["value"] == "fake_token_1"  # stored for others


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_holder_that_ends_in_time_is_waited_for_and_then_named(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, cache_file: Path
) -> None:
    """A holder that will let go by this run's deadline is waited for (its answer is what
    this run wants); if it does not, this run gives up at its own bound, saying how long
    the lock has been held, with no time left for an attempt of its own."""
    with lock_held(cache_file) as fd:
        os.utime(fd, (time.time() - 12, time.time()))  # taken 12 s ago, ending about now
        start = clock()
        result = cli.main("--timeout", "0.2", "--retries", "0", clock=clock)
        waited = clock() - start
    assert (result.code, result.out) == (3, "")
    assert re.fullmatch(
        "error: gave up at the time bound of this run: another caller has held "
        f"{re.escape(str(cache_file))}.lock for 12\\.[0-9] s\n"
        "hint: it stops by itself within its own time bound: run this again then, or give "
        "this run its own --cache-file\n",
        result.err,
    )
    assert 0.35 <= waited < 0.6  # until MIN_WAIT (0.1 s) before its attempts' end, 0.45 s
    assert fake.requests == []


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_taking_the_lock_dates_the_lock_file(cache_file: Path) -> None:
    """What the waiters read: when the lock was taken, and by when it will be let go."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file = Path(f"{cache_file}.lock")
    lock_file.touch()
    os.utime(lock_file, (1_000_000, 1_000_000))  # 1970
    before = time.time()
    fd = wechat_token.lock.lock(str(cache_file), time.monotonic() + 5, print)
    try:
        times = lock_file.stat()
        assert before - 1 <= times.st_atime <= time.time() + 1
        assert before + 4 <= times.st_mtime <= time.time() + 6
    finally:
        wechat_token.lock.unlock(fd)


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_refusal_another_caller_got_is_the_answer_and_nothing_is_asked(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    """While this run waits for the lock, another run (a real process) asks, is refused
    with 40164, stores the refusal and lets go: this run reports that answer, and makes
    no request of its own (it would get the same, and spend the quota)."""
    fake.behaviour = 40164
    with lock_held(cache_file) as fd:

        def another_run_is_refused() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            assert cli.run().code == 1

        result = cli.main(clock=WhileWaiting(another_run_is_refused))
    assert (result.code, result.out) == (1, "")
    assert re.match(
        f"error: errcode 40164: {re.escape(ERRMSG[40164])} [(]WeChat's answer to another "
        "caller [0-9.]+ s ago; it is asked again 5 s after[)]\nhint: add 203.0.113.7 to the "
        "IP whitelist",
        result.err,
    )
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("age", "secret", "requests"),
    [(1, SECRET, 0), (6, SECRET, 1), (1, "Another_Secret-9876543210", 1)],
    ids=["fresh", "older-than-5-s", "another-secret"],
)
def test_a_stored_refusal_is_shared_for_5_s_and_only_with_the_same_account(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    cache_file: Path,
    age: float,
    secret: str,
    requests: int,
) -> None:
    fake.behaviour = 40164
    assert cli.main().code == 1
    entry = json.loads(cache_file.read_text())
    assert (entry["value"], entry["refusal"]["errcode"]) == ("", 40164)
    entry["refusal"]["at"] -= age
    cache_file.write_text(json.dumps(entry))
    env.setenv("WECHAT_APPSECRET", secret)
    fake.requests.clear()
    assert cli.main().code == 1
    assert len(fake.requests) == requests


def test_a_refusal_leaves_the_cached_token_for_those_it_is_good_for(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    """--force-refresh refused (a quota, say): the token in the cache is still good, and
    the next run gets it, not the refusal."""
    assert cli.main() == Result(0, "fake_token_1\n", "")
    fake.behaviour = 45009
    assert cli.main("--force-refresh").code == 1
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 2


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_good_token_is_served_while_another_caller_holds_the_lock(
    cli: CLI, fake: FakeWeChat, clock: VirtualClock, cache_file: Path
) -> None:
    """A run that --force-refresh-es holds the lock: the others need not wait for it."""
    assert cli.main() == Result(0, "fake_token_1\n", "")
    with lock_held(cache_file):
        assert cli.main(clock=clock) == Result(0, "fake_token_1\n", "")
    assert clock.waits == []


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")
def test_a_lock_file_that_is_a_symlink_is_not_written_through(cli: CLI, tmp_path: Path) -> None:
    """The note would empty whatever file a symlink in the lock file's place points to."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    cache = tmp_path / "token.json"
    Path(f"{cache}.lock").symlink_to(notes)
    result = cli.main("--cache-file", str(cache))
    assert result.code == 2
    assert result.err.startswith(f"error: cannot use the cache {cache}: {cache}.lock: ")
    assert notes.read_text() == "keep me"


def _without(modules: tuple[str, ...], argv: list[str]) -> Result:
    """Run the command in a Python where these modules cannot be imported."""
    code = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({modules!r})); "
        f"sys.argv = ['wechat-token', *{argv!r}]; "
        f"runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    OUTPUTS.extend((done.stdout, done.stderr))
    return Result(done.returncode, done.stdout, done.stderr)


def test_a_python_without_fcntl_imports_and_runs_the_command(cli: CLI) -> None:
    """Windows has no fcntl: importing the package and running must not need it."""
    assert _without(("fcntl",), cli.argv((), True)) == Result(0, "fake_token_1\n", "")


def test_a_cache_hit_needs_no_pycurl(cli: CLI) -> None:
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert _without(("pycurl",), cli.argv((), True)) == Result(0, "fake_token_1\n", "")


def test_without_fcntl_the_cache_works_unlocked_and_says_so(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, cache_file: Path
) -> None:
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert result.err.startswith(
        "* cache: no file locking on this system (no fcntl): using the cache unlocked\n"
    )
    assert cli.main().out == "fake_token_1\n"
    assert not Path(f"{cache_file}.lock").exists()


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_file_system_without_locks_works_unlocked(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, cache_file: Path
) -> None:
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert result.err.startswith(
        f"* cache: cannot lock {cache_file}.lock (No locks available): using the cache unlocked\n"
    )
    assert cli.main().out == "fake_token_1\n"


def test_a_token_that_cannot_be_saved_takes_the_old_entry_with_it(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, cache_file: Path
) -> None:
    """Issue 18, item 7: the old entry stayed, so the next run printed fake_token_1, which
    the fetch of fake_token_2 had just invalidated."""
    cli.main()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", disk_full)  # after the new entry was half written
        assert cli.main("--force-refresh") == Result(
            0,
            "fake_token_2\n",
            f"warning: could not save the token in {cache_file}: No space left on device; "
            "the old entry is removed, so the next run fetches a new token\n",
        )
    assert sorted(p.name for p in cache_file.parent.iterdir()) == [cache_file.name + ".lock"]
    assert cli.main() == Result(0, "fake_token_3\n", "")  # not fake_token_1, now invalid


def test_an_old_entry_that_cannot_be_removed_either_is_named(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, cache_file: Path
) -> None:
    cli.main()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    def read_only(path: str) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "fsync", disk_full)
    real_unlink = os.unlink
    monkeypatch.setattr(
        os, "unlink", lambda path: read_only(path) if path == str(cache_file) else real_unlink(path)
    )
    assert cli.main("--force-refresh") == Result(
        0,
        "fake_token_2\n",
        f"warning: could not save the token in {cache_file}: No space left on device; "
        "nor remove the old entry (Read-only file system): the next run may print the token "
        "this run replaced, which WeChat no longer accepts\n",
    )


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def _whole_entries(folder: Path) -> list[str]:
    """The tokens in the temporary files of the cache's folder, once written whole."""
    tokens = []
    for path in folder.glob(".wechat_token-*.tmp"):
        with contextlib.suppress(OSError, ValueError):
            tokens.append(json.loads(path.read_bytes())["value"])
    return tokens


def test_a_process_killed_mid_write_leaves_the_old_entry(
    cli: CLI, fake: FakeWeChat, cache_file: Path, children: Children
) -> None:
    cli.main()
    before = cache_file.read_bytes()
    code = (  # the real command, stalled after writing the new entry, before the rename
        "import os, runpy, sys, time; os.fsync = lambda fd: time.sleep(30); "
        f"sys.argv = ['wechat-token', *{cli.argv(('--force-refresh',), True)!r}]; "
        f"runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)"
    )
    proc = children.start([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not (written := _whole_entries(cache_file.parent)) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the new entry is written: the process waits in fsync
    proc.kill()
    proc.wait(timeout=10)
    assert cache_file.read_bytes() == before
    assert written == ["fake_token_2"]  # killed mid-write: its temporary file is left over
    assert cli.main() == Result(0, "fake_token_1\n", "")  # the old entry, whole and used
    assert fake.tokens_issued == 2


def test_unusable_cache_location_is_a_configuration_error(cli: CLI, fake: FakeWeChat) -> None:
    Path("a-file").write_text("")
    assert cli.main("--cache-file", "a-file/token.json") == Result(
        2,
        "",
        "error: cannot use the cache a-file/token.json: a-file: File exists\n"
        "hint: choose another with --cache-file, or run with --no-cache\n",
    )
    Path("a-folder").mkdir()
    assert cli.main("--cache-file", "a-folder") == Result(
        2,
        "",
        "error: the cache file a-folder is a folder\n"
        "hint: choose another with --cache-file, or run with --no-cache\n",
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("platform", "environ", "folder"),
    [
        ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg"),
        ("linux", {}, "~/.cache"),
        ("darwin", {}, "~/Library/Caches"),
        ("win32", {"LOCALAPPDATA": "/local-app-data"}, "/local-app-data"),
        ("win32", {}, r"~\AppData\Local"),
    ],
)
def test_default_cache_file_per_platform(
    monkeypatch: pytest.MonkeyPatch, platform: str, environ: dict[str, str], folder: str
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    path = wechat_token.config.default_cache_file(APPID, TOKEN, environ)
    assert path == os.path.join(os.path.expanduser(folder), "wechat_token", f"{APPID}.token.json")


def test_cache_file_is_named_from_the_appid_alone() -> None:
    path = wechat_token.config.default_cache_file(
        "../wx/../etc", STABLE_TOKEN, {"XDG_CACHE_HOME": "/c"}
    )
    assert path == "/c/wechat_token/___wx____etc.stable_token.json"


# --- Stable and classic tokens, and --replace ------------------------------------------------


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


REFUSED = "fake_token_1"


def test_replace_fetches_a_new_token_once(cli: CLI, fake: FakeWeChat, tmp_path: Path) -> None:
    cache = str(tmp_path / "token.json")
    assert cli.main("--cache-file", cache).out == "fake_token_1\n"
    assert cli.main("--cache-file", cache, "--replace", REFUSED).out == "fake_token_2\n"
    assert cli.main("--cache-file", cache, "--replace", REFUSED).out == "fake_token_2\n"
    assert len(fake.requests) == 2


def test_replace_reads_the_token_from_stdin(
    cli: CLI, fake: FakeWeChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--replace - : the refused token comes on stdin, out of sight of `ps`."""
    cache = str(tmp_path / "token.json")
    assert cli.main("--cache-file", cache).out == "fake_token_1\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(REFUSED + "\n"))
    assert cli.main("--cache-file", cache, "--replace", "-") == Result(0, "fake_token_2\n", "")


def test_replace_refuses_what_is_not_a_token(cli: CLI) -> None:
    assert cli.main("--replace", "two words") == Result(
        2,
        "",
        "error: --replace: that is not an access_token (printable ASCII, no spaces)\n"
        "hint: give the token that the API call refused, or - to read it from stdin\n",
    )


def test_many_processes_replacing_one_token_make_one_request(
    cli: CLI, fake: FakeWeChat, tmp_path: Path, children: Children
) -> None:
    cache = str(tmp_path / "token.json")
    assert cli.main("--cache-file", cache).out == "fake_token_1\n"
    fake.behaviour = "slow"
    argv = [*COMMAND, *cli.argv(("--cache-file", cache, "--replace", REFUSED), True)]
    procs = [children.start(argv) for _ in range(AT_ONCE)]
    results = [children.finish(proc) for proc in procs]
    assert results == [Result(0, "fake_token_2\n", "")] * AT_ONCE
    assert len(fake.requests) == 2


FROM_STDIN = (
    'hint: pipe in the token that the API call refused: echo "$TOKEN" | wechat-token --replace -\n'
)


@pytest.mark.parametrize(
    ("stdin", "error"),
    [  # undecodable stdin was an internal error (exit 70)
        (io.TextIOWrapper(io.BytesIO(b"\xff\xfe\n"), "utf-8"), "stdin is not UTF-8 text"),
        (io.StringIO(""), "stdin is empty"),
    ],
    ids=["not-utf8", "empty"],
)
def test_replace_refuses_stdin_without_a_token(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, stdin: io.TextIOBase, error: str
) -> None:
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main("--replace", "-") == Result(2, "", f"error: --replace -: {error}\n{FROM_STDIN}")
    assert fake.requests == []


def test_replace_waits_for_stdin_within_the_runs_bound(cli: CLI, fake: FakeWeChat) -> None:
    """Waiting for stdin had no time bound: a writer that never writes held the run forever."""
    argv = [*COMMAND, *cli.argv(("--replace", "-", "--timeout", "0.2", "--retries", "0"), True)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        proc.wait(timeout=10)  # stdin stays open, and nothing is written to it
    finally:
        proc.kill()
        out, err = proc.communicate()
    OUTPUTS.extend((out, err))
    assert (proc.returncode, out, err) == (
        2,
        "",
        "error: --replace -: no token arrived on stdin within the run's time bound (0.7 s)\n"
        + FROM_STDIN,
    )
    assert fake.requests == []


def test_one_server_spelt_three_ways_is_one_cache_entry(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    """Issue 18, item 6: the cache was keyed by the API base as typed: three spellings of
    one server, three entries, and each run replaced the token of the one before."""
    port = fake.base_url.rsplit(":", 1)[1]
    for base in (fake.base_url, f"HTTPS://127.0.0.1:{port}/", f"https://127.0.0.1:{port}//"):
        result = cli.main("--api-base", base, "--cacert", cli.ca_file, base=False)
        assert result == Result(0, "fake_token_1\n", "")
    assert len(fake.requests) == 1


def test_wechats_domains_are_one_realm() -> None:
    """A TokenCache on the default base and a command with api_base = api2 (a gunicorn app
    and a cron job) share one token instead of replacing each other's."""
    from wechat_token.endpoints import realm

    bases = ["https://api.weixin.qq.com", "https://api2.weixin.qq.com"]
    bases += ["https://sh.api.weixin.qq.com", "https://sz.api.weixin.qq.com"]
    bases += ["https://hk.api.weixin.qq.com"]  # Hong Kong's (an outside review found it missing)
    assert {realm(base) for base in bases} == {"https://api.weixin.qq.com"}
    assert realm("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    assert realm("https://api.weixin.qq.com.example") == "https://api.weixin.qq.com.example"


@pytest.mark.parametrize(
    "typed",
    ["https://api.weixin.qq.com.", "https://API.weixin.qq.com.:443/", "https://api.weixin.qq.com"],
)
def test_a_host_with_its_root_dot_is_the_same_server(typed: str) -> None:
    """api.weixin.qq.com. (a fully qualified name) was a realm of its own: its runs and the
    others' replaced each other's token."""
    settings = wechat_token.api.api_settings(
        APPID, SECRET, stable=False, cache_file=None, api_bases=[typed], cacert=None,
        proxy=None, timeout=1, retries=0,
    )  # fmt: skip
    assert settings.api_bases == ("https://api.weixin.qq.com",)


# --- --valid-for: a token that lasts as long as the job needs --------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(left=st.integers(0, 4000), valid_for=st.integers(0, 7000), stable=st.booleans())
@example(left=3800, valid_for=3900, stable=False)  # the case: an hourly cron job
def test_a_token_printed_with_valid_for_lasts_that_long(
    cli: CLI, fake: FakeWeChat, cache_file: Path, left: int, valid_for: int, stable: bool
) -> None:
    """Whatever the cached token has left: the token printed with --valid-for V has more
    than V seconds left, or the run fails (exit 2) saying why, and prints no token. Tokens
    of this fake live 4000 s."""
    fake.reset()
    fake.expires_in = 4000
    endpoint = ("--stable",) if stable else ()
    path = cache_file.with_name(cache_file.name.replace(".token.", ".stable_token."))
    path = path if stable else cache_file
    if path.exists():
        path.unlink()
    assert cli.main(*endpoint).code == 0
    rewrite(path, expires_at=time.time() + left)
    result = cli.main(*endpoint, "--json", "--valid-for", str(valid_for))
    if result.code == 0:
        assert json.loads(result.out)["expires_in"] > valid_for
    else:
        assert (result.code, result.out.count('"kind": "config"')) == (2, 1)
        assert valid_for >= 4000 - 1 or stable  # only a lifetime too short, or stable's


def test_valid_for_replaces_a_cached_token_that_would_expire_too_soon(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    fake.expires_in = 4000
    assert cli.main() == Result(0, "fake_token_1\n", "")
    rewrite(cache_file, expires_at=time.time() + 3800)
    result = cli.main("-v", "--valid-for", "3900")
    assert (result.code, result.out) == (0, "fake_token_2\n")
    assert f"* cache: not using the token in {cache_file}: it has 3800 s left, and " in result.err
    assert "--valid-for asks for 3900 s\n" in result.err
    assert cli.main("--valid-for", "3900").out == "fake_token_2\n"  # now from the cache


def test_valid_for_on_the_stable_endpoint_says_it_cannot_unless_forced(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    """The stable endpoint hands out the same token until it expires: --valid-for cannot
    get a longer one, and says so; --force-refresh can."""
    fake.expires_in = 3000
    stable_cache = cache_file.parent / "wx0123456789abcdef.stable_token.json"
    assert cli.main("--stable").out == "fake_token_1\n"
    assert stable_cache.exists()
    result = cli.main("--stable", "--valid-for", "3900")
    assert result == Result(
        2,
        "",
        "error: the stable token has 3000 s left, less than --valid-for 3900: WeChat hands "
        "out the same one until its last minutes\nhint: run again once it has been replaced, ask "
        "for less, or add --force-refresh (at most 20 a day; every caller's stable token "
        "changes)\n",
    )
    fake.expires_in = 7200
    result = cli.main("--stable", "--valid-for", "3900", "--force-refresh")
    assert result == Result(0, "fake_token_2\n", "")


@pytest.mark.parametrize("value", ["abc", "-1", "7001", "1.5", "\u0663"])
def test_a_bad_valid_for_is_refused(cli: CLI, fake: FakeWeChat, value: str) -> None:
    assert cli.main("--valid-for", value) == Result(
        2,
        "",
        f"error: --valid-for: '{value}' must be a whole number of seconds from 0 to 7000\n"
        "hint: WeChat's tokens live 7200 s: ask for no more than the job needs, e.g. 3900 "
        "for an hourly job\n",
    )
    assert fake.requests == []


def test_tokencache_get_valid_for(fake: FakeWeChat, ca_file: str, cache_file: Path) -> None:
    fake.expires_in = 4000
    tokens = wechat_token.TokenCache(
        APPID, SECRET, cache_file=str(cache_file), api_bases=[fake.base_url], cacert=ca_file
    )
    assert tokens.get().access_token == "fake_token_1"
    assert tokens.get(valid_for=3900).access_token == "fake_token_1"  # 4000 s: enough
    rewrite(cache_file, expires_at=time.time() + 3800)
    other = wechat_token.TokenCache(
        APPID, SECRET, cache_file=str(cache_file), api_bases=[fake.base_url], cacert=ca_file
    )
    assert other.get().access_token == "fake_token_1"
    assert other.get(valid_for=3900).access_token == "fake_token_2"
    with pytest.raises(wechat_token.ConfigError):
        other.get(valid_for=-1)

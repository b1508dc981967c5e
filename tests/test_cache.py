"""The token cache: reused while it has time left, shared safely by many processes."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import wechat_token.cache
import wechat_token.config
from wechat_token.endpoints import STABLE_TOKEN, TOKEN

from conftest import CLI, SECRET_FORMS, Result
from fake_wechat import APPID, FakeWeChat


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
    """-v said "valid for 7200 s more" (rounded) while --json said 7199 (cut)."""
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
    text = cache_file.read_text(encoding="utf-8")
    assert not [form for form in SECRET_FORMS if form.lower() in text.lower()]
    saved = entry(cache_file)
    assert saved["secret_sha256"] == wechat_token.cache.secret_fingerprint(
        os.environ["WECHAT_APPSECRET"]
    )
    assert saved["secret_sha256"] != wechat_token.cache.secret_fingerprint("another secret")
    assert (saved["appid"], saved["endpoint"], saved["api_base"]) == (
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


# What a damaged or foreign cache file may hold: each is ignored and replaced.
DAMAGED = [
    b"",  # created, then the disk filled up
    b'{"appid": "wx0123456789abcdef", "endpoi',  # cut short
    b"\xff\xfe not utf-8",
    b"[]",  # JSON, not an object
    b"null",
    b"[" * 60_000,  # nesting deep enough for RecursionError
    b'{"access_token": "fake_token_9", "expires_in": 7200}',  # fields missing
]


@pytest.mark.parametrize("content", DAMAGED)
def test_damaged_cache_is_ignored_and_replaced(
    cli: CLI, fake: FakeWeChat, cache_file: Path, content: bytes
) -> None:
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    result = cli.main("-v")
    assert (result.code, result.out) == (0, "fake_token_1\n")
    assert f"* cache: {cache_file} is damaged or not a cache file; it will be replaced\n" in (
        result.err
    )
    assert entry(cache_file)["value"] == "fake_token_1"
    assert cli.main() == Result(0, "fake_token_1\n", "")  # quiet without -v


@pytest.mark.parametrize(
    "changes",
    [
        {"expires_in": "7200"},  # wrong type
        {"expires_at": "tomorrow"},
        {"expires_at": 1e300},  # not a Unix time: 1e12 is the year 33658
        {"expires_in": 10**400},  # would overflow a float
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
    assert "is damaged or not a cache file; it will be replaced" in result.err


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"appid": "wx00000000000000ff"}, "it is for another AppID or endpoint"),
        ({"endpoint": "/cgi-bin/stable_token"}, "it is for another AppID or endpoint"),
        ({"api_base": "https://api.weixin.qq.com"}, "it is for https://api.weixin.qq.com"),
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
WANTED = wechat_token.cache.CacheEntry(APPID, "/cgi-bin/token", "https://a", "f" * 64, "", 0, NOW)


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
    assert (wechat_token.cache.reusable(cached, WANTED, NOW) == "") is reused


def test_near_expiry_the_cli_fetches_again(cli: CLI, fake: FakeWeChat, cache_file: Path) -> None:
    cli.main()
    rewrite(cache_file, expires_at=time.time() + 290)
    assert cli.main().out == "fake_token_2\n"
    rewrite(cache_file, expires_at=time.time() + 320)
    assert cli.main().out == "fake_token_2\n"


def test_many_processes_at_once_make_one_request(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "slow"  # half a second in which the others could also fetch
    procs = [cli.popen() for _ in range(20)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 20
    assert {out for out, _ in outputs} == {"fake_token_1\n"}
    assert {err for _, err in outputs} == {""}
    assert len(fake.requests) == 1


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_stuck_lock_holder_is_an_error_not_a_hang(cli: CLI, cache_file: Path) -> None:
    import fcntl

    cache_file.parent.mkdir(parents=True)
    with open(f"{cache_file}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        result = cli.main("--timeout", "0.2", "--retries", "0")
        elapsed = time.monotonic() - start
    assert result == Result(
        3,
        "",
        "error: gave up at the time bound of this run: another process holds "
        f"{cache_file}.lock, and has left no note of what it is doing\n"
        "hint: run this again once that process is done (it ends by itself), or give this "
        "run its own --cache-file\n",
    )
    assert 0.7 <= elapsed < 2.5  # time_bound(0, 0.2): the 0.2 s timeout, plus 0.5 s


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


def test_failed_write_keeps_the_old_entry_and_warns(
    cli: CLI, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, cache_file: Path
) -> None:
    cli.main()
    before = cache_file.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # after the new entry was half written
    assert cli.main("--force-refresh") == Result(
        0,
        "fake_token_2\n",
        f"warning: could not save the token in {cache_file}: No space left on device; "
        "next run fetches again\n",
    )
    assert cache_file.read_bytes() == before
    assert sorted(p.name for p in cache_file.parent.iterdir()) == [
        cache_file.name,
        cache_file.name + ".lock",
    ]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_process_killed_mid_write_leaves_the_old_entry(
    cli: CLI, fake: FakeWeChat, cache_file: Path
) -> None:
    cli.main()
    before = cache_file.read_bytes()
    code = (  # the real script, stalled after writing the new entry, before the rename
        "import os, runpy, sys, time; os.fsync = lambda fd: time.sleep(30); "
        f"sys.argv = ['wechat-token', *{cli.argv(('--force-refresh',), True)!r}]; "
        f"runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)"
    )
    with subprocess.Popen([sys.executable, "-c", code]) as proc:
        deadline = time.monotonic() + 20
        while fake.tokens_issued < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # the new entry is written; the process waits in fsync
        proc.kill()
    assert cache_file.read_bytes() == before
    [written] = cache_file.parent.glob(".wechat_token-*.tmp")  # killed mid-write: left over
    assert json.loads(written.read_text())["value"] == "fake_token_2"
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

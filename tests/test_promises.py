"""One example test for each way the README's promises were found broken (issue 11).

Each test reproduces one report from the outside review and fails if its fix is reverted.
The property-based tests (test_properties.py) hunt for the cases nobody listed; the signal
and time-bound cases are in test_signals.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

import wechat_token
import wechat_token.cache
import wechat_token.cli
import wechat_token.redact
from wechat_token.files import replace_file

from conftest import CLI, COMMAND, OUTPUTS, Result
from fake_wechat import APPID, SECRET, FakeWeChat

HEX_SECRET = "0123456789abcdef0123456789abcdef"  # a real AppSecret's shape: 32 hex digits

CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
SECRET_PAGE = f"{CONSOLE} → 开发密钥"  # where the AppSecret is shown
SECRET_PAGE_JSON = json.dumps(SECRET_PAGE)[1:-1]  # as --json writes it: ASCII, \\u escapes


def _run(
    cli: CLI, env: dict[str, str] | dict[bytes, bytes], *args: str, stdout: object = None
) -> Result:
    """Run fetch_token.py in a subprocess with exactly this environment; bounded in time."""
    done = subprocess.run(
        [*COMMAND, *cli.argv(args, True)],
        env=env,  # type: ignore[arg-type]
        stdin=subprocess.DEVNULL,
        stdout=stdout or subprocess.PIPE,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        timeout=30,
    )
    out, err = (done.stdout or b"").decode(errors="replace"), done.stderr.decode(errors="replace")
    result = Result(done.returncode, out, err)
    OUTPUTS.extend((result.out, result.err))
    return result


def _environ(**values: str) -> dict[str, str]:
    """This process's environment (the test's HOME and cache), with these values set."""
    return {**os.environ, **values}


# --- the AppSecret, not even in part -------------------------------------------------


def test_a_secret_at_the_end_of_a_long_error_body_is_masked_before_the_cut(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """HTTP 401 whose text ends with the secret: the 80-character excerpt showed 22 of its
    32 characters, because it was cut before it was redacted."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = (401, b"unauthorized: " + b"x" * 44 + b" secret=" + HEX_SECRET.encode())
    result = cli.main("--retries", "0")
    assert result == Result(
        3,
        "",
        "error: HTTP 401 instead of 200: 'unauthorized: " + "x" * 44 + " secret=***'\n"
        f"hint: {wechat_token.ResponseError.hint}\n",
    )


def test_a_secret_with_a_backslash_is_masked_in_an_excerpt(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    r"""repr() doubles a backslash: 'ab\cd' became 'ab\\cd', which the redaction missed."""
    secret = "0123456789\\abcdef0123456789abcde"
    env.setenv("WECHAT_APPSECRET", secret)
    fake.behaviour = (500, f"bad secret {secret}".encode())
    result = cli.main("--retries", "0")
    assert result.err.splitlines()[0] == "error: HTTP 500 instead of 200: 'bad secret ***'"
    assert "0123456789" not in result.err


def test_a_token_that_holds_the_secret_is_refused_not_printed(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """stdout carries the token as it is; a server that hands back the secret as the
    token does not get it printed."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = json.dumps({"access_token": HEX_SECRET, "expires_in": 7200}).encode()
    result = cli.main("--retries", "0")
    assert result == Result(
        3,
        "",
        "error: the access_token in the answer holds the AppSecret: refused\n"
        f"hint: {wechat_token.ResponseError.hint}\n",
    )


# --- no traceback: numbers, URLs, files, environment, missing packages ---------------


def test_a_400_digit_expires_in_is_a_day_at_most(cli: CLI, fake: FakeWeChat) -> None:
    """now + 10**400 raised OverflowError; a lifetime over a day is not trusted."""
    fake.behaviour = b'{"access_token":"abc","expires_in":1' + b"0" * 400 + b"}"
    result = cli.main("--json")
    assert result.code == 0
    answer = json.loads(result.out)
    assert (answer["access_token"], answer["expires_in"]) == ("abc", 86400)


def test_a_huge_number_in_the_cache_file_makes_the_entry_damaged(
    cli: CLI, fake: FakeWeChat, tmp_path: Path
) -> None:
    """The same number in the cache file crashed every later run until it was deleted."""
    cache = tmp_path / "token.json"
    assert cli.main("--cache-file", str(cache)).code == 0
    entry = json.loads(cache.read_text())
    text = json.dumps(entry).replace(str(entry["expires_in"]), "1" + "0" * 400)
    cache.write_text(text)
    result = cli.main("--cache-file", str(cache), "-v")
    assert (result.code, result.out) == (0, "fake_token_2\n")
    assert f"* cache: {cache} is damaged or not a cache file; it will be replaced\n" in result.err
    assert json.loads(cache.read_text())["value"] == "fake_token_2"


@pytest.mark.parametrize(
    "base",
    [
        "https://[::1",  # urlsplit raises ValueError
        "https://127.0.0.1:99999",  # .port raises ValueError
        "https://127.0.0.1:0",
    ],
)
def test_an_api_base_the_standard_library_refuses_is_a_usage_error(cli: CLI, base: str) -> None:
    assert cli.main("--api-base", base, base=False) == Result(
        2,
        "",
        f"error: --api-base: '{base}' is not an https:// URL; refusing\n"
        "hint: write it like https://api.weixin.qq.com, without a path\n",
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize(
    ("flag", "what", "hint"),
    [
        ("--config", "config", "point it at a regular file"),
        ("--cache-file", "cache", "choose another with --cache-file, or run with --no-cache"),
    ],
)
def test_a_fifo_is_refused_at_once(
    cli: CLI, tmp_path: Path, flag: str, what: str, hint: str
) -> None:
    """Reading a FIFO blocked forever, with the cache lock held."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    result = _run(cli, _environ(), flag, str(fifo))
    assert time.monotonic() - start < 5
    assert result == Result(
        2, "", f"error: the {what} file {fifo} is not a regular file\nhint: {hint}\n"
    )


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "not a regular file"), ("/", "a folder")])
@pytest.mark.skipif(os.name != "posix", reason="POSIX paths")
def test_a_device_or_folder_as_config_is_refused(cli: CLI, path: str, kind: str) -> None:
    """--config /dev/zero read until memory ran out."""
    assert cli.main("--config", path) == Result(
        2, "", f"error: the config file {path} is {kind}\nhint: point it at a regular file\n"
    )


def test_a_huge_config_file_is_refused_unread(cli: CLI, tmp_path: Path) -> None:
    config = tmp_path / "big.ini"
    config.write_text("[wechat]\n" + "# filler\n" * 10000)
    assert cli.main("--config", str(config)) == Result(
        2,
        "",
        f"error: the config file {config} is larger than 64 KiB: not ours\n"
        "hint: point it at the right file\n",
    )


@pytest.mark.skipif(os.name != "posix", reason="environment values are bytes on POSIX only")
@pytest.mark.parametrize("name", [b"WECHAT_APPSECRET", b"WECHAT_APPID"])
def test_a_non_utf8_environment_value_is_a_usage_error(cli: CLI, name: bytes) -> None:
    """A non-UTF-8 WECHAT_APPSECRET became surrogates, which crashed every message."""
    environ = {**os.environb, name: b"\xff\xfe" + b"0123456789abcdef" * 2}
    result = _run(cli, environ)
    variable = name.decode()
    assert result == Result(
        2,
        "",
        f"error: {variable}: contains whitespace or a non-printable character\n"
        f"hint: copy the {'appsecret' if 'SECRET' in variable else 'appid'} again from "
        f"{SECRET_PAGE if 'SECRET' in variable else CONSOLE}: it is one word of letters and "
        "digits\n",
    )


def test_a_nul_in_a_config_value_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[wechat]\ncache_file = a\0b\n")
    assert cli.main("--config", str(config)) == Result(
        2, "", f"error: {config}: cache_file: contains a NUL character\nhint: retype the value\n"
    )


def test_a_5000_digit_retries_value_is_a_usage_error(cli: CLI) -> None:
    """int() refuses strings over 4300 digits with a ValueError of its own."""
    assert cli.main("--retries", "9" * 5000) == Result(
        2,
        "",
        f"error: --retries: '{'9' * 5000}' must be a whole number from 0 to 5\n"
        "hint: the default is 2\n",
    )


def _without(module: str, argv: list[str]) -> Result:
    """Run the command in a Python where `module` cannot be imported."""
    code = (
        f"import runpy, sys; sys.modules[{module!r}] = None; "
        f"sys.argv = ['wechat-token', *{argv!r}]; "
        f"runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    OUTPUTS.extend((done.stdout, done.stderr))
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("package", ["pycurl", "certifi"])
def test_a_missing_package_is_one_line_that_says_how_to_install_it(cli: CLI, package: str) -> None:
    """Without pycurl, a 20-line traceback."""
    # certifi is needed only when no --cacert is given.
    result = _without(package, ["--api-base", cli.fake.base_url, "--no-cache"])
    assert result == Result(
        2,
        "",
        f"error: {package} cannot be imported (import of {package} halted; None in "
        f"sys.modules); install it: python -m pip install {package}\n"
        "hint: a fetch needs pycurl and certifi (pip install -r requirements.txt); "
        "a cached token needs neither\n",
    )


def test_a_cache_hit_needs_no_pycurl(cli: CLI) -> None:
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert _without("pycurl", cli.argv((), True)) == Result(0, "fake_token_1\n", "")


# --- output streams --------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_exit_74(cli: CLI) -> None:
    with open("/dev/full", "wb") as full:
        result = _run(cli, _environ(), stdout=full)  # type: ignore[call-overload]
    assert (result.code, result.err) == (
        74,
        "error: cannot write to stdout: No space left on device\n"
        f"hint: {wechat_token.cli.OutputError.hint}\n",
    )


def _with_closed(redirect: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run fetch_token.py from sh with one of its streams closed: '>&-' or '2>&-'."""
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
        f"hint: {wechat_token.cli.OutputError.hint}\n",
    )
    assert fake.requests == []


@pytest.mark.skipif(os.name != "posix", reason="closes a file descriptor")
def test_messages_never_move_to_stdout_when_stderr_is_closed(cli: CLI, tmp_path: Path) -> None:
    """print(file=sys.stderr) writes to stdout when sys.stderr is None."""
    config = tmp_path / "config.ini"
    config.write_text("[wechat]\ncolour = blue\n")  # a warning: unknown key
    done = _with_closed("2>&-", ["--config", str(config), *cli.argv(("-v",), True)])
    assert (done.returncode, done.stdout) == (0, "fake_token_1\n")


def test_json_is_ascii_whatever_the_console_encoding(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """backslashreplace wrote \\xe1 into the JSON, which JSON does not allow."""
    env.setenv("PYTHONIOENCODING", "latin-1")
    fake.behaviour = json.dumps({"errcode": 40013, "errmsg": "appid inválido ✗"}).encode()
    result = _run(cli, _environ(), "--json")
    assert result.code == 1
    assert result.out.isascii()
    assert json.loads(result.out)["errmsg"] == "appid inválido ✗"


def test_an_abbreviated_option_is_refused(cli: CLI) -> None:
    """--js was taken for --json by argparse, while JSON mode looked for '--json'."""
    assert cli.main("--js") == Result(
        2, "", "error: unrecognized arguments: --js\nhint: see --help\n"
    )


# --- text from the server ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\u061c", r"\u061c"),  # Arabic letter mark (bidi)
        ("\ufeff", r"\ufeff"),  # zero-width no-break space
        ("\u2060", r"\u2060"),  # word joiner
        ("\u2064", r"\u2064"),  # invisible plus
        ("\u00ad", r"\xad"),  # soft hyphen
        ("\U000e0041", r"\U000e0041"),  # tag latin capital letter A
        ("\ue000", r"\ue000"),  # private use
        ("\U000e0fff", r"\U000e0fff"),  # unassigned
        ("\u3000", "\u3000"),  # an ideographic space is a space: shown as it is
    ],
)
def test_invisible_characters_are_shown_as_escapes(char: str, shown: str) -> None:
    assert wechat_token.redact.sanitize(f"a{char}b") == f"a{shown}b"


def test_an_empty_errmsg_leaves_no_dangling_colon(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = b'{"errcode": 40013, "errmsg": ""}'
    result = cli.main()
    assert result.err.splitlines()[0] == "error: errcode 40013"


# --- the secret in each form a server may echo it ----------------------------------------

# 32 characters whose forms all differ: a backslash, a quote, '+', '/', '&', '%', non-ASCII.
# Its first three characters are found only in the form repr() gives them.
SPICY = ('é\\"é+/&%=中' + "abcdefghijklmnopqrstuvwxyz")[:32]


@pytest.mark.parametrize(
    "echoed",
    [
        SPICY,  # as it is
        SPICY[:20],  # cut short by the server
        SPICY[-12:],  # its tail
        quote(SPICY, safe=""),  # URL-encoded, upper-case escapes
        quote(SPICY, safe="").lower(),  # and lower-case
        quote_plus(SPICY),
        json.dumps(SPICY)[1:-1],  # JSON-escaped: \\ and \" and \u00e9
        json.dumps(SPICY, ensure_ascii=False)[1:-1],
        repr(SPICY)[1:-1],  # as Python's repr() shows it
        repr(SPICY + "'")[1:-3],  # repr() of a text with both quotes: \' too
        json.dumps(SPICY)[1:-1].replace("/", "\\/"),  # PHP's json_encode: \/
        "".join(f"\\u{ord(c):04x}" for c in SPICY[:16]),  # every character \u-escaped
        "".join(f"%{b:02X}" for b in SPICY.encode()),  # every byte %-escaped
        quote(SPICY, safe="/"),  # quote()'s default: '/' left as it is
        SPICY.replace("&", "&amp;").replace('"', "&quot;"),  # in an HTML error page
        json.dumps(SPICY)[1:-1].replace("&", "\\u0026"),  # Go's JSON: & as \u0026
    ],
)
def test_the_secret_is_masked_in_every_form_a_server_echoes(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, echoed: str
) -> None:
    env.setenv("WECHAT_APPSECRET", SPICY)
    fake.behaviour = (500, f"oops {echoed} end".encode())
    result = cli.main("--retries", "0")
    assert result.err.splitlines()[0] == "error: HTTP 500 instead of 200: 'oops *** end'"


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_signal_during_the_cache_write_takes_effect_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while it writes the cache leaves the new entry in place, and no
    temporary file: the signal is held back until the rename is done."""
    import signal

    path = tmp_path / "token.json"
    seen: list[list[str]] = []  # the folder's files when the signal took effect
    real_fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        # To this thread: the test's servers run threads, which a signal to the whole
        # process could go to; the command itself has no other thread while it writes.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    entry = wechat_token.cache.CacheEntry(
        APPID, "/cgi-bin/token", "https://x", "0" * 64, "t", 7200, 1.0
    )
    before = signal.signal(signal.SIGTERM, lambda *_: seen.append(os.listdir(tmp_path)))
    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    try:
        replace_file(str(path), json.dumps(entry._asdict()).encode())
    finally:
        signal.signal(signal.SIGTERM, before)
    assert seen == [["token.json"]]


def test_a_cached_token_that_holds_the_secret_is_not_used(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A cache entry forged with the right fingerprint put the secret on stdout."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = b'{"access_token": "good_token", "expires_in": 7200}'
    cache = tmp_path / "token.json"
    assert cli.main("--cache-file", str(cache)).out == "good_token\n"
    entry = json.loads(cache.read_text())
    cache.write_text(json.dumps({**entry, "value": "TOKEN_" + HEX_SECRET[:10]}))
    result = cli.main("--cache-file", str(cache), "-v")
    assert (result.code, result.out) == (0, "good_token\n")
    assert "its token holds a piece of the AppSecret" in result.err


def test_a_40000_character_secret_is_refused_at_once(cli: CLI, env: pytest.MonkeyPatch) -> None:
    """A huge WECHAT_APPSECRET made every message take seconds to redact."""
    env.setenv("WECHAT_APPSECRET", "0123456789abcdef" * 2500)
    start = time.monotonic()
    assert cli.main() == Result(
        2,
        "",
        "error: WECHAT_APPSECRET: 40000 characters long; an AppID has 18, an AppSecret 32\n"
        f"hint: copy the appsecret again from {SECRET_PAGE}\n",
    )
    assert time.monotonic() - start < 1


def test_a_huge_ca_bundle_is_refused(cli: CLI, tmp_path: Path) -> None:
    """libcurl spent seconds loading a 68 MB bundle, past the time bound."""
    bundle = tmp_path / "huge.pem"
    with open(bundle, "wb") as file:
        file.truncate(5 * 2**20)
    assert cli.main("--cacert", str(bundle), base=False) == Result(
        2,
        "",
        f"error: --cacert: CA bundle '{bundle}' is larger than 4 MiB\n"
        "hint: give the path of a PEM file with the CA certificates to trust\n",
    )


@pytest.mark.parametrize("base", ["https://.:9", "https://[zz]:9", "https://[::1%]:9"])
def test_a_url_that_libcurl_refuses_is_a_usage_error(cli: CLI, base: str) -> None:
    """'https://[zz]:9' passed the check and then crashed the error message (urlsplit)."""
    result = cli.main("--api-base", base, "--retries", "0", base=False)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(
        f"error: libcurl cannot use the URL {base}/cgi-bin/token: URL rejected: Bad "
    )


def test_a_forged_note_in_the_lock_file_is_ignored(
    cli: CLI, fake: FakeWeChat, tmp_path: Path
) -> None:
    """A note with exit code 3.0 made the process print '3.0' and exit 1; one dated in the
    future was taken as news. The note is written while this run waits for the lock, as a
    real lock holder's would be."""
    import fcntl

    cache = tmp_path / "token.json"
    assert cli.main("--cache-file", str(cache)).code == 0
    key = f"{APPID} /cgi-bin/token {fake.base_url} {wechat_token.cache.secret_fingerprint(SECRET)} "
    key += cli.ca_file
    for later, code in [(60, 3), (0.2, 3.0)]:  # dated a minute ahead; a float exit code
        with open(f"{cache}.lock", "w") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX)
            note = {"at": time.time() + later, "key": key, "state": "failed", "exit_code": code}
            holder.write(json.dumps({**note, "message": "forged", "hint": "h"}))
            holder.flush()
            threading.Timer(0.5, fcntl.flock, (holder, fcntl.LOCK_UN)).start()
            result = cli.main("--cache-file", str(cache), "--force-refresh")
        assert (result.code, result.err) == (0, "")


def test_main_hands_ctrl_c_to_its_default_action_while_it_runs(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However main() is called (python -m, an installed command, a test), Ctrl-C ends the
    run as killed by SIGINT, and the handler is put back afterwards."""
    import signal

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


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")
def test_a_lock_file_that_is_a_symlink_is_not_written_through(cli: CLI, tmp_path: Path) -> None:
    """The lock file's note emptied whatever file a symlink in its place pointed to."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    cache = tmp_path / "token.json"
    Path(f"{cache}.lock").symlink_to(notes)
    result = cli.main("--cache-file", str(cache))
    assert result.code == 2
    assert result.err.startswith(f"error: cannot use the cache {cache}: {cache}.lock: ")
    assert notes.read_text() == "keep me"


def test_help_goes_to_stdout_like_a_token(cli: CLI) -> None:
    result = cli.main("--help")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("usage: wechat-token [-h]")


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


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_help_to_a_full_stdout_is_exit_74(cli: CLI) -> None:
    """argparse swallowed the write error and exited 0."""
    with open("/dev/full", "wb") as full:
        result = _run(cli, _environ(), "--help", stdout=full)
    assert result.code == 74


def test_a_short_secret_is_refused(cli: CLI, env: pytest.MonkeyPatch) -> None:
    """A one-letter "secret" had that letter masked in every message, JSON keys included."""
    env.setenv("WECHAT_APPSECRET", "e")
    assert cli.main("--json") == Result(
        2,
        '{"error": "WECHAT_APPSECRET: 1 characters long; an AppID has 18, an AppSecret 32", '
        f'"hint": "copy the appsecret again from {SECRET_PAGE_JSON}"}}\n',
        "error: WECHAT_APPSECRET: 1 characters long; an AppID has 18, an AppSecret 32\n"
        f"hint: copy the appsecret again from {SECRET_PAGE}\n",
    )


def test_version(cli: CLI) -> None:
    assert cli.main("--version") == Result(0, f"wechat-token {wechat_token.__version__}\n", "")


def test_the_secret_is_masked_in_any_letter_case_not_only_ascii() -> None:
    """Found by the hunt profile: 'B3\\%+/&É' is 8 characters of a secret holding 'é'."""
    secret = "Ab3\\%+/&é?#;:@<>{}[]|^`~!$*()-_."
    assert wechat_token.redact.redact("x B3\\%+/&É y", secret) == "x *** y"
    assert wechat_token.redact.redact("İİ" + secret[:9].upper(), secret) == "İİ***"  # İ: 2 in lower

"""Configuration and usage: flags, then the environment, then config.ini; each bad input is
refused before any connection, exit 2, with a hint, and never quoting the secret."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from wechat_token.cli import _parse_args
from wechat_token.config import load_settings
from wechat_token.config_file import CONFIG_KEYS
from wechat_token.endpoints import TOKEN
from wechat_token.errors import hint_for
from wechat_token.lock import cache_ways_out

from conftest import CLI, COMMAND, OUTPUTS, ROOT, Result, VirtualClock
from fake_wechat import APPID, SECRET, FakeWeChat

GOOD = f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\n"


def write_config(text: str | bytes, name: str = "config.ini", mode: int = 0o600) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(mode)
    return path


@pytest.fixture
def no_env(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    env.delenv("WECHAT_APPID")
    env.delenv("WECHAT_APPSECRET")
    return env


def test_config_file_alone_is_enough(cli: CLI, fake: FakeWeChat, no_env: object) -> None:
    write_config(GOOD)  # config.ini in the current folder, read by default
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert fake.requests[0].query["secret"] == SECRET  # '%' kept literally


def test_config_saved_with_a_byte_order_mark(cli: CLI, no_env: object) -> None:
    write_config(b"\xef\xbb\xbf" + GOOD.encode())  # as Windows Notepad saves UTF-8
    assert cli.main() == Result(0, "fake_token_1\n", "")


def test_named_config_file(cli: CLI, no_env: object) -> None:
    write_config(GOOD, "conf/account.ini")
    assert cli.main("--config", "conf/account.ini") == Result(0, "fake_token_1\n", "")


def test_all_settings_from_the_config_file(cli: CLI, fake: FakeWeChat, no_env: object) -> None:
    conf = Path("conf")
    conf.mkdir()
    shutil.copy(cli.ca_file, conf / "ca.pem")
    write_config(
        GOOD + f"api_base = {fake.base_url}/\nca_bundle = ca.pem\ntimeout = 2.5\n", "conf/x.ini"
    )
    # ca_bundle is relative to the config file, not to the current folder.
    assert cli.main("--config", "conf/x.ini", base=False) == Result(0, "fake_token_1\n", "")


# (config.ini or None, environment, extra args) -> the AppID that reached WeChat
PRECEDENCE = [
    (GOOD.replace(APPID, "wx1111111111111111"), {}, (), "wx1111111111111111"),  # file
    (GOOD.replace(APPID, "wx1111111111111111"), {"WECHAT_APPID": APPID}, (), APPID),  # env > file
    (
        GOOD,
        {"WECHAT_APPID": "wx2222222222222222"},
        ("--appid", "wx3333333333333333"),
        "wx3333333333333333",
    ),
]


@pytest.mark.parametrize(("config", "environ", "args", "appid"), PRECEDENCE)
def test_flag_then_environment_then_file(
    cli: CLI,
    fake: FakeWeChat,
    no_env: pytest.MonkeyPatch,
    config: str,
    environ: dict[str, str],
    args: tuple[str, ...],
    appid: str,
) -> None:
    write_config(config)
    for name, value in environ.items():
        no_env.setenv(name, value)
    cli.main(*args)
    assert fake.requests[0].query["appid"] == appid


def test_environment_secret_wins_over_the_file(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    write_config(GOOD.replace(SECRET, "file-secret"))
    assert cli.main().code == 0
    assert fake.requests[0].query["secret"] == SECRET


# The hints that follow the errors below, on a line of their own
# {here}: the folder the test runs in; the message names the file looked for in full
CREDENTIALS = "copy config.ini.example to {here}/config.ini and fill in the AppID and AppSecret"
NO_FILE = " (no such file; --config names another)"
LAYOUT = "config.ini.example shows the layout: a [wechat] header, then key = value lines"
NO_VALUE = "give it a value, or leave it out"
AS_WRITTEN = "config.ini takes values as written: appid = wx0123456789abcdef"
TIMEOUT = "the default is 10"
URL = "write it like https://api.weixin.qq.com, without a path"
PEM = "give the path of a PEM file with the CA certificates to trust"
HELP = "see --help"
NO_OPTION = (
    "set WECHAT_APPSECRET, or appsecret in config.ini: every user of this machine can read "
    "command lines"
)


CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
PAGE = {"appid": CONSOLE, "appsecret": f"{CONSOLE} → 开发密钥"}  # where each one is shown


def one_word(key: str) -> str:
    return f"copy the {key} again from {PAGE[key]}: it is one word of letters and digits"


SECRET_HINT = (  # after every "not an AppSecret"
    f"copy the AppSecret again from {PAGE['appsecret']}: it is 16 to 64 letters, digits, - or "
    "_ (WeChat's are 32 hex characters, WeCom's 43); a stray quote, space or line break from "
    "a paste is the usual cause"
)


# (config.ini content or None, environment changes, args) -> exact error message and hint
BAD_CONFIGS = [
    (  # the example's placeholder, named plainly: it is not a secret to mask
        None,
        {"WECHAT_APPSECRET": "your-appsecret-here"},
        (),
        "WECHAT_APPSECRET: still the example's placeholder, not your appsecret",
        f"replace it with the appsecret shown at {CONSOLE} → 开发密钥",
    ),
    (
        None,
        {"WECHAT_APPID": None},
        (),
        "no appid: set WECHAT_APPID, or appid in [wechat] of {here}/config.ini" + NO_FILE,
        CREDENTIALS,
    ),
    (
        None,
        {"WECHAT_APPSECRET": None},
        (),
        "no appsecret: set WECHAT_APPSECRET, or appsecret in [wechat] of {here}/config.ini"
        + NO_FILE,
        CREDENTIALS,
    ),
    (
        None,
        {},
        ("--config", "missing.ini"),
        "missing.ini: no such file",
        "check the path given with --config",
    ),
    ("[other]\nappid = x\n", {}, (), "config.ini: no [wechat] section", LAYOUT),
    ("appid = x\n", {}, (), "config.ini: line 1: a [wechat] header must come first", LAYOUT),
    (
        "[wechat]\nappid = a\nappid = b\n",
        {},
        (),
        "config.ini: line 3: a key is given twice",
        LAYOUT,
    ),
    ("[wechat]\n[wechat]\n", {}, (), "config.ini: line 2: a section is given twice", LAYOUT),
    ("[wechat]\nno equals sign here\n", {}, (), "config.ini: line 2 is not 'key = value'", LAYOUT),
    (b"[wechat]\nappid = \xff\n", {}, (), "config.ini: not UTF-8 text", "save it as UTF-8"),
    ("[wechat]\nappid =\n", {"WECHAT_APPID": None}, (), "config.ini: appid: empty value", NO_VALUE),
    (
        f'[wechat]\nappsecret = "{SECRET}"\n',
        {"WECHAT_APPSECRET": None},
        (),
        "config.ini: appsecret: remove the quotes around the value",
        AS_WRITTEN,
    ),
    (
        f"[wechat]\nappsecret = '{SECRET}'\n",
        {"WECHAT_APPSECRET": None},
        (),
        "config.ini: appsecret: remove the quotes around the value",
        AS_WRITTEN,
    ),
    (
        f"[wechat]\nappsecret = {SECRET} ; mine\n",
        {"WECHAT_APPSECRET": None},
        (),
        "config.ini: appsecret: a comment after the value",
        "config.ini takes comments on lines of their own, starting with ; or #",
    ),
    (
        None,
        {"WECHAT_APPID": "wx0123 456789abcdef"},
        (),
        "WECHAT_APPID: contains whitespace or a non-printable character",
        one_word("appid"),
    ),
    (
        None,
        {"WECHAT_APPSECRET": SECRET + "\x1b"},
        (),
        "WECHAT_APPSECRET: not an AppSecret: it holds another character",
        SECRET_HINT,
    ),
    (
        None,
        {"WECHAT_APPID": "wx\udcff"},  # an undecodable byte in the environment
        (),
        "WECHAT_APPID: contains whitespace or a non-printable character",
        one_word("appid"),
    ),
    (None, {"WECHAT_APPSECRET": ""}, (), "WECHAT_APPSECRET: empty value", NO_VALUE),
    (None, {}, ("--appid", ""), "--appid: empty value", NO_VALUE),
    (
        "[wechat]\ntimeout = ten\n",
        {},
        (),
        "config.ini: timeout: 'ten' is not a number of seconds",
        TIMEOUT,
    ),
    (None, {}, ("--timeout", "abc"), "--timeout: 'abc' is not a number of seconds", TIMEOUT),
    (None, {}, ("--timeout", "0"), "--timeout: '0' must be more than 0 and at most 3600", TIMEOUT),
    (
        None,
        {},
        ("--timeout", "-1"),
        "--timeout: '-1' must be more than 0 and at most 3600",
        TIMEOUT,
    ),
    (
        None,
        {},
        ("--timeout", "nan"),
        "--timeout: 'nan' must be more than 0 and at most 3600",
        TIMEOUT,
    ),
    (
        None,
        {},
        ("--timeout", "inf"),
        "--timeout: 'inf' must be more than 0 and at most 3600",
        TIMEOUT,
    ),
    (
        None,
        {},
        ("--timeout", "1e20"),
        "--timeout: '1e20' must be more than 0 and at most 3600",
        TIMEOUT,
    ),
    (
        None,
        {},
        ("--api-base", "https://例子.测试"),
        "--api-base: 'https://例子.测试' is not an https:// URL; refusing",
        URL,
    ),
    (
        None,
        {},
        ("--cacert", "nowhere.pem"),
        "--cacert: CA bundle 'nowhere.pem' not found, or not a file",
        PEM,
    ),
    (
        "[wechat]\napi_base = https://127.0.0.1:1\nca_bundle = nowhere.pem\n",
        {},
        (),
        "config.ini: ca_bundle: CA bundle 'nowhere.pem' not found, or not a file",
        PEM,
    ),
    (
        "[wechat]\napi_base = http://api.weixin.qq.com\n",
        {},
        (),
        "config.ini: api_base: 'http://api.weixin.qq.com' is not an https:// URL; refusing",
        URL,
    ),
    ("[wechat]\napi_base =\n", {}, (), "config.ini: api_base: empty value", NO_VALUE),
    (
        "[wechat]\napi_base = https://a.test, http://b.test\n",  # each one is checked
        {},
        (),
        "config.ini: api_base: 'http://b.test' is not an https:// URL; refusing",
        URL,
    ),
    (
        "[wechat]\nretries = many\n",
        {},
        (),
        "config.ini: retries: 'many' must be a whole number from 0 to 5",
        "the default is 2",
    ),
    ("[wechat]\ncache_file =\n", {}, (), "config.ini: cache_file: empty value", NO_VALUE),
    (None, {}, ("--cache-file", ""), "--cache-file: empty value", NO_VALUE),
    (None, {}, ("--timeout",), "argument --timeout: expected one argument", HELP),
    (None, {}, ("--bogus", "value"), "unrecognized arguments: --bogus", HELP),
    (None, {}, ("stray",), "unrecognized arguments: (values)", HELP),
    (None, {}, ("--appsecret", SECRET), "the AppSecret has no option", NO_OPTION),
    (None, {}, (f"--secret={SECRET}",), "the AppSecret has no option", NO_OPTION),
    # an abbreviation is not the option: --js is not --json
    (None, {}, ("--js",), "unrecognized arguments: --js", HELP),
    (
        "[wechat]\nstable = maybe\n",
        {},
        (),
        "config.ini: stable: 'maybe' must be yes or no",
        "the default is no",
    ),
    (
        "[wechat]\ncache_file = a\0b\n",
        {},
        (),
        "config.ini: cache_file: contains a NUL character",
        "retype the value",
    ),
    (  # bytes that are not UTF-8 in the environment, as Python decodes them: surrogates
        None,
        {"WECHAT_APPSECRET": "\udcff\udcfe" + "0123456789abcdef" * 2},
        (),
        "WECHAT_APPSECRET: not an AppSecret: it holds another character",
        SECRET_HINT,
    ),
    (
        None,
        {"WECHAT_APPID": "\udcff\udcfe" + "0123456789abcdef" * 2},
        (),
        "WECHAT_APPID: contains whitespace or a non-printable character",
        one_word("appid"),
    ),
]


@pytest.mark.parametrize(("config", "changes", "args", "message", "hint"), BAD_CONFIGS)
def test_bad_configuration_exit_2_before_connecting(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    config: str | bytes | None,
    changes: dict[str, str | None],
    args: tuple[str, ...],
    message: str,
    hint: str,
) -> None:
    if config is not None:
        write_config(config)
    for name, value in changes.items():
        if value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)
    # Flags under test come after the fixture's --api-base and --cacert (a second
    # --api-base is checked like the first); settings under test in the file need those
    # two flags left out.
    in_file = isinstance(config, str) and ("api_base" in config or "ca_bundle" in config)
    result = cli.main(*args, base=not in_file)
    here = os.getcwd()
    assert result == Result(
        2, "", f"error: {message.replace('{here}', here)}\nhint: {hint.replace('{here}', here)}\n"
    )
    assert fake.requests == []


def test_usage_error_as_json(cli: CLI) -> None:
    result = cli.run("--json", "--timeout", "abc")
    assert result == Result(
        2,
        '{"error": "--timeout: \'abc\' is not a number of seconds", "hint": "the default is 10", '
        '"kind": "config"}\n',
        "error: --timeout: 'abc' is not a number of seconds\nhint: the default is 10\n",
    )


# An AppSecret is 16 to 64 of [A-Za-z0-9_-]; each of these is not one, and is refused with
# what is wrong with it, never with any of it. Q7zX... is text no message holds by chance.
ODD = "Q7zXw9Vt"
NOT_SECRETS = [
    (ODD + "+/&%=" + ODD, "it holds another character"),  # urlencode() would change these
    (ODD + "\\" + ODD, "it holds another character"),  # a backslash
    (ODD + "é中" + ODD, "it holds another character"),  # not ASCII
    (ODD + "😀" + ODD, "it holds another character"),  # beyond U+FFFF
    (ODD + "\x1b[2J" + ODD, "it holds another character"),  # a terminal escape
    (ODD + '"' + ODD, "it holds a quote"),  # inside: a quote at either end is "the quotes"
    (ODD + "'" + ODD, "it holds a quote"),
    (ODD + "`" + ODD, "it holds a quote"),
    (ODD + " " + ODD, "it holds a space"),
    (ODD + "\t" + ODD, "it holds a space"),
    (ODD + "\u3000" + ODD, "it holds a space"),  # an ideographic space
    (ODD + "\n" + ODD, "it holds a line break"),
    (ODD + "\r\n" + ODD, "it holds a line break"),
    (ODD + " \n" + ODD, "it holds a line break and a space"),
    (ODD + "\u2028" + ODD, "it holds a line break"),  # what str.splitlines() breaks at
    (ODD + "\x85" + ODD, "it holds a line break"),
    (ODD + "\x0b\x0c" + ODD, "it holds a line break"),  # vertical tab, form feed
    (ODD + '"+ ' + ODD, "it holds a quote and a space and another character"),
    ("x", "it has 1 character"),
    ((ODD * 2)[:15], "it has 15 characters"),  # one short: the first length refused
    ((ODD * 9)[:65], "it has 65 characters"),  # one too many
]


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
@pytest.mark.parametrize(("secret", "what"), NOT_SECRETS)
def test_a_secret_outside_the_alphabet_is_refused_unshown(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    secret: str,
    what: str,
    json_flag: tuple[str, ...],
) -> None:
    """Issue 18, item 1: what is refused is said, and nothing of the value is shown (a
    secret of other characters could not be found in every form a server echoes it)."""
    env.setenv("WECHAT_APPSECRET", secret)
    result = cli.main(*json_flag)
    error = f"WECHAT_APPSECRET: not an AppSecret: {what}"
    out = (
        json.dumps({"error": error, "hint": SECRET_HINT, "kind": "config"}, ensure_ascii=False)
        + "\n"
    )
    out = out if json_flag else ""
    assert result == Result(2, out, f"error: {error}\nhint: {SECRET_HINT}\n")
    assert ODD[:3] not in result.out + result.err
    assert fake.requests == []


@pytest.mark.parametrize(
    ("secret", "what"),
    [(s, w) for s, w in NOT_SECRETS if "\n" not in s and "\r" not in s],  # one line each
)
def test_a_secret_outside_the_alphabet_in_config_ini_is_refused_unshown(
    cli: CLI, fake: FakeWeChat, no_env: object, secret: str, what: str
) -> None:
    write_config(f"[wechat]\nappid = {APPID}\nappsecret = {secret}\n")
    result = cli.main()
    error = f"config.ini: appsecret: not an AppSecret: {what}"
    assert result == Result(2, "", f"error: {error}\nhint: {SECRET_HINT}\n")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("secret", "what"),
    [
        ("fedcba9876543210" * 2500, "it has 40000 characters"),
        ("+" * 40000, "it has 40000 characters"),
    ],
    ids=["hex", "plus"],
)
def test_a_40000_character_secret_is_refused_at_once(
    cli: CLI, env: pytest.MonkeyPatch, secret: str, what: str
) -> None:
    """Redacting a huge secret from every message would take seconds; so would naming each
    of 40000 odd characters."""
    env.setenv("WECHAT_APPSECRET", secret)
    start = time.monotonic()
    assert cli.main() == Result(
        2, "", f"error: WECHAT_APPSECRET: not an AppSecret: {what}\nhint: {SECRET_HINT}\n"
    )
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(
    "secret",
    [
        "fedcba9876543210",  # 16 characters: the shortest taken
        "fedcba9876543210" * 4,  # 64: the longest
        "fedcba9876543210FEDCBA9876543210",  # WeChat's: 32 hex digits, either case
        "Ab-_" * 10 + "Z9c",  # WeCom's: 43 of letters, digits, - and _
        "-_-_-_-_-_-_-_-_",  # nothing but - and _
    ],
)
def test_every_secret_of_the_alphabet_is_sent_as_it_is(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, secret: str
) -> None:
    """Taken, and sent as written: URL-encoding changes no character of the alphabet."""
    env.setenv("WECHAT_APPSECRET", secret)
    result = cli.main("--no-cache")
    assert result == Result(
        1,
        "",
        f"error: errcode 40125: invalid appsecret\nhint: {hint_for(40125, '')}\n",
    )
    assert fake.requests[0].raw_query.endswith(f"&secret={secret}")


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


@pytest.mark.parametrize("base", ["https://.:9", "https://[zz]:9", "https://[::1%]:9"])
def test_a_url_that_libcurl_refuses_is_a_usage_error(cli: CLI, base: str) -> None:
    """'https://[zz]:9' passes the check, and libcurl refuses it: still exit 2, one line."""
    result = cli.main("--api-base", base, "--retries", "0", base=False)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(
        f"error: libcurl cannot use the URL {base}/cgi-bin/token: URL rejected: Bad "
    )


def test_a_huge_ca_bundle_is_refused(cli: CLI, tmp_path: Path) -> None:
    """libcurl would spend seconds loading a bundle of many megabytes, past the time bound."""
    bundle = tmp_path / "huge.pem"
    with open(bundle, "wb") as file:
        file.truncate(5 * 2**20)
    assert cli.main("--cacert", str(bundle), base=False) == Result(
        2,
        "",
        f"error: --cacert: CA bundle '{bundle}' is larger than 4 MiB\n"
        "hint: give the path of a PEM file with the CA certificates to trust\n",
    )


# --- Config and cache paths that are not small regular files --------------------------------

KINDS = ["folder", "root folder", "fifo", "/dev/null", "/dev/zero", "16 MiB"]


def _odd_path(kind: str, for_cache: bool) -> str:
    """A path of this kind. The devices are reached through a symbolic link for the cache:
    if the tool replaced the file, it would replace the link, not /dev/null."""
    path = os.path.abspath("odd")
    if kind == "folder":
        os.mkdir(path)
    elif kind == "root folder":
        return "/"
    elif kind == "fifo":
        os.mkfifo(path)  # opening it to read waits for a writer that never comes
    elif kind.startswith("/dev/"):
        if not for_cache:
            return kind
        os.symlink(kind, path)
    else:  # over any sensible size cap
        start, end = (b'{"pad": "', b'"}') if for_cache else (b"[wechat]\n; ", b"\n")
        Path(path).write_bytes(start + b"x" * (16 << 20) + end)
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX paths, FIFOs and devices")
@pytest.mark.parametrize(
    ("option", "kind"),
    [
        (option, kind)
        for kind in KINDS
        for option in ("--config", "--cache-file")
        if (option, kind) != ("--cache-file", "root folder")  # its folder would be /'s parent
    ],
)
def test_a_path_that_is_not_a_small_regular_file_is_refused_at_once(
    cli: CLI, fake: FakeWeChat, option: str, kind: str
) -> None:
    """A FIFO would block the reader forever (with the cache lock held), /dev/zero would be
    read until memory ran out: each is refused before it is read. A FIFO runs in a child,
    stopped after a few seconds: a hang fails the test, and only the test."""
    path = _odd_path(kind, for_cache=option == "--cache-file")
    what, hint = (
        ("config", "point it at a regular file")
        if option == "--config"
        else (
            "cache",
            cache_ways_out(),
        )
    )
    if kind in ("folder", "root folder"):
        message = f"the {what} file {path} is a folder"
    elif kind == "16 MiB":
        message = f"the {what} file {path} is larger than 64 KiB: not ours"
        hint = "point it at the right file" if option == "--config" else hint
    else:
        message = f"the {what} file {path} is not a regular file"
    args = (option, path, *(["--no-cache"] if option == "--config" else []))
    if kind == "fifo":
        start = time.monotonic()
        done = subprocess.run(
            [*COMMAND, *cli.argv(args, True)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
        OUTPUTS.extend((done.stdout, done.stderr))
        result = Result(done.returncode, done.stdout, done.stderr)
        assert time.monotonic() - start < 5
    else:
        result = cli.main(*args)
    assert result == Result(2, "", f"error: {message}\nhint: {hint}\n")
    assert fake.requests == []


def test_unknown_key_is_a_warning_naming_file_and_key(cli: CLI, no_env: object) -> None:
    write_config(GOOD + "appsecert = typo\n")
    assert cli.main() == Result(
        0,
        "fake_token_1\n",
        "warning: config.ini: unknown key 'appsecert' in [wechat] ignored; "
        "known keys: appid, appsecret, api_base, ca_bundle, timeout, retries, stable, "
        "cache_file, proxy, valid_for\n",
    )


def test_appid_of_unusual_shape_is_a_warning_not_a_refusal(cli: CLI, fake: FakeWeChat) -> None:
    result = cli.main("--appid", "not-an-appid")
    assert result.err.splitlines()[0] == (
        "warning: --appid: 'not-an-appid' does not look like an AppID (wx + 16 hex)"
    )
    assert result.code == 1  # it was sent; the fake answered 40013
    assert fake.requests[0].query["appid"] == "not-an-appid"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(
    ("content", "mode", "warned"),
    [
        (GOOD, 0o644, True),  # secret, readable by all
        (GOOD, 0o640, True),  # secret, readable by the group
        (GOOD, 0o600, False),
        (GOOD, 0o622, False),  # writable by others is bad too, but nobody can read it
        (f"[wechat]\nappid = {APPID}\n", 0o644, False),  # no secret in it
    ],
)
def test_config_holding_the_secret_readable_by_others_is_a_warning(
    cli: CLI, env: object, content: str, mode: int, warned: bool
) -> None:
    write_config(content, mode=mode)
    result = cli.main()
    warning = (
        "warning: config.ini holds the AppSecret and other users can read it: "
        "chmod 600 config.ini\n"
    )
    assert result == Result(0, "fake_token_1\n", warning if warned else "")


def test_ca_bundle_in_a_folder_with_a_non_ascii_name(cli: CLI) -> None:
    """pycurl takes only ASCII strings; many home folders are not (C:\\Users\\张三)."""
    folder = Path("证书 文件夹")
    folder.mkdir()
    shutil.copy(cli.ca_file, folder / "ca.pem")
    assert cli.main("--cacert", str(folder / "ca.pem")) == Result(0, "fake_token_1\n", "")


def test_config_example_is_valid_and_documents_every_key(cli: CLI, no_env: object) -> None:
    example = (ROOT / "config.ini.example").read_text(encoding="utf-8")
    for key in CONFIG_KEYS:
        assert f"\n{key} = " in example or f"\n# {key} = " in example
    write_config(example)  # copied as the README says, and not edited: nothing is sent
    assert cli.main() == Result(
        2,
        "",
        "error: config.ini: appid: still the example's placeholder, not your appid\n"
        f"hint: replace it with the appid shown at {CONSOLE}\n",
    )
    write_config(example.replace("your-appid-here", "wx0123456789abcdef"))
    assert cli.main() == Result(
        2,
        "",
        "error: config.ini: appsecret: still the example's placeholder, not your appsecret\n"
        f"hint: replace it with the appsecret shown at {CONSOLE} → 开发密钥\n",
    )
    assert cli.fake.requests == []


@pytest.mark.parametrize("separator", [", ", " ", "\n    "])
def test_api_base_in_the_config_is_a_list(
    cli: CLI,
    fake: FakeWeChat,
    clock: VirtualClock,
    no_env: object,
    separator: str,
    closed_port: int,
) -> None:
    dead = f"https://127.0.0.1:{closed_port}"
    write_config(GOOD + f"api_base = {dead}{separator}{fake.base_url}\n")
    result = cli.main("--cacert", cli.ca_file, base=False, clock=clock)
    assert result == Result(0, "fake_token_1\n", "")
    assert clock.waits == [0.5]  # the first base refused: the second one, after the wait
    assert len(fake.requests) == 1


def test_stable_from_the_config_file_and_no_stable_flag(cli: CLI, fake: FakeWeChat) -> None:
    write_config("[wechat]\nstable = yes\n")
    cli.main("--no-cache")
    cli.main("--no-cache", "--no-stable")
    assert [r.method for r in fake.requests] == ["POST", "GET"]


def test_default_api_bases_are_wechat_then_its_backup_domain(no_env: object) -> None:
    write_config(GOOD)
    settings = load_settings(_parse_args([]), {})
    assert settings.api_bases == ("https://api.weixin.qq.com", "https://api2.weixin.qq.com")
    assert (settings.retries, settings.endpoint, settings.force_refresh) == (2, TOKEN, False)


# --- Issue 18: values checked where they enter -------------------------------------------


def test_without_a_home_folder_the_cache_is_refused_not_put_in_a_folder_named_tilde(
    cli: CLI, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No HOME and no passwd entry: expanduser("~") stays "~", and the cache went to
    ./~/.cache/ in the current folder."""
    import pwd

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    env.delenv("HOME")
    env.delenv("XDG_CACHE_HOME")
    env.setattr(pwd, "getpwuid", no_entry)
    assert cli.main() == Result(
        2,
        "",
        "error: no home folder to keep the cache in (HOME is not set)\n"
        "hint: set XDG_CACHE_HOME to a folder, or give --cache-file PATH, or run with "
        "--no-cache\n",
    )
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ([f"{SECRET} = 1", f"{SECRET} = 2"], "line 5: a key is given twice"),
        ([f"[{SECRET}]", f"[{SECRET}]"], "line 5: a section is given twice"),
    ],
    ids=["key", "section"],
)
def test_a_name_given_twice_is_not_echoed(
    cli: CLI, no_env: object, lines: list[str], error: str
) -> None:
    """A key or section named like the secret (a paste in the wrong place) was echoed."""
    write_config("\n".join(["[wechat]", f"appid = {APPID}", f"appsecret = {SECRET}", *lines]))
    assert cli.main() == Result(
        2,
        "",
        f"error: config.ini: {error}\n"
        "hint: config.ini.example shows the layout: a [wechat] header, then key = value lines\n",
    )


SWAPPED_SECRET = "0123456789abcdef0123456789ABCDEF"  # what a real AppSecret looks like


@pytest.mark.parametrize(
    ("appid", "secret"),
    [(SWAPPED_SECRET, APPID + "0000"), (SECRET, SECRET)],
    ids=["swapped", "the-same"],
)
def test_an_appid_that_looks_like_an_appsecret_is_refused_unshown(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, appid: str, secret: str
) -> None:
    """Issue 18, item 8: with the two swapped, the AppID warning, the -v URL and the lock
    file's name showed the real AppSecret."""
    env.setenv("WECHAT_APPID", appid)
    env.setenv("WECHAT_APPSECRET", secret)
    result = cli.main("-v")
    assert result == Result(
        2,
        "",
        "error: WECHAT_APPID: that is not an AppID: it looks like an AppSecret\n"
        "hint: an AppID is wx and 16 hex characters; the AppSecret goes in WECHAT_APPSECRET "
        "or appsecret (are the two swapped?)\n",
    )
    assert fake.requests == []


def test_a_tokencache_with_an_appid_like_an_appsecret_is_refused() -> None:
    import wechat_token

    with pytest.raises(wechat_token.ConfigError) as caught:
        wechat_token.TokenCache(SWAPPED_SECRET, APPID + "0000")
    assert str(caught.value) == "appid: that is not an AppID: it looks like an AppSecret"
    assert SWAPPED_SECRET not in repr(caught.value)


@pytest.mark.parametrize("comment", ["; my account", "# my account"])
def test_a_comment_after_a_value_is_named_as_such(cli: CLI, no_env: object, comment: str) -> None:
    """Issue 18, item 13: it was "contains whitespace or a non-printable character", with
    "copy the appid again"."""
    write_config(f"[wechat]\nappid = {APPID} {comment}\nappsecret = {SECRET}\n")
    assert cli.main() == Result(
        2,
        "",
        "error: config.ini: appid: a comment after the value\n"
        "hint: config.ini takes comments on lines of their own, starting with ; or #\n",
    )


def test_a_timeout_in_digits_other_than_ascii_is_refused(cli: CLI, fake: FakeWeChat) -> None:
    """Python's float() reads Arabic-Indic ٣ as 3; a config file's reader should not."""
    result = cli.main("--timeout", "\u0663")
    assert result == Result(
        2, "", "error: --timeout: '\u0663' is not a number of seconds\nhint: the default is 10\n"
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((f"--stable={SECRET}",), "argument --stable/--no-stable: it takes no value"),
        ((f"--{SECRET}",), "unrecognized arguments: (an option)"),
        ((f"--{SECRET.lower()}", "--colour"), "unrecognized arguments: --colour (an option)"),
    ],
)
def test_a_usage_error_repeats_no_value_when_the_secret_is_in_config_ini(
    cli: CLI, no_env: object, args: tuple[str, ...], error: str
) -> None:
    """config.ini is read after the arguments: what argparse would echo is not masked yet."""
    write_config("\n".join(["[wechat]", f"appid = {APPID}", f"appsecret = {SECRET}"]))
    assert cli.main(*args) == Result(2, "", f"error: {error}\nhint: see --help\n")


def test_config_example_explains_each_key_in_both_languages() -> None:
    """Each optional key's paragraph has its English and its Chinese (issue 20)."""
    text = (ROOT / "config.ini.example").read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    for key in CONFIG_KEYS:
        if key in ("appid", "appsecret"):  # explained at the top, in both languages too
            key_paragraph = paragraphs[0]
        else:
            key_paragraph = next(p for p in paragraphs if f"\n# {key} = " in f"\n{p}")
        comments = [line for line in key_paragraph.splitlines() if line.startswith("#")]
        assert any(re.search("[\u4e00-\u9fff]", line) for line in comments), key
        english = [line for line in comments if not re.search("[\u4e00-\u9fff]", line)]
        assert any(len(re.findall("[A-Za-z]{3,}", line)) >= 4 for line in english), key

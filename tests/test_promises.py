"""Promises that hold whatever the input: no run of 8 characters of the AppSecret is ever
shown, in any letter case, and text from outside cannot act on the terminal.

The promise is exact because the AppSecret is narrowed first: 16 to 64 of [A-Za-z0-9_-]
(anything else is refused, test_config.py). URL, JSON and HTML escaping leave those
characters as they are, so a server echoes the secret as itself, perhaps in another letter
case, perhaps in part; nothing is decoded, and text that merely looks like an escape of it
is shown as it is.

These are the chosen examples, each exact; test_properties.py checks the same promises for
any input. Every test also passes conftest's guard, which fails it if 8 characters of the
AppSecret in a row show anywhere in what the tool printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wechat_token
import wechat_token.messages
from wechat_token.errors import hint_for
from wechat_token.redact import clean, redact, sanitize

from conftest import CLI, OUTPUTS, Result, find_secret
from fake_wechat import APPID, SECRET, FakeWeChat

HEX_SECRET = "fedcba9876543210fedcba9876543210"  # a real AppSecret's shape: 32 hex digits
ECHOED = "errcode 40125: invalid appsecret *** (in capitals: ***)"
RESPONSE_HINT = wechat_token.messages.msg("hint.response")

# --- The AppSecret, echoed by a server ----------------------------------------------------


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_secret_echoed_by_the_server_is_masked_as_sent_and_in_capitals(
    cli: CLI, fake: FakeWeChat, tmp_path: Path, json_flag: tuple[str, ...]
) -> None:
    fake.behaviour = "echo-secret"
    result = cli.main(*json_flag, "-v")
    address = fake.base_url.removeprefix("https://")
    cache = tmp_path / "cache" / "wechat_token" / "wx0123456789abcdef.token.json"
    lines = result.err.splitlines()
    assert lines[4].startswith("* time since start: DNS ")  # libcurl's timings
    assert lines[:4] + lines[5:] == [
        f"* cache: nothing in {cache} yet",
        f"* GET {fake.base_url}/cgi-bin/token?grant_type=client_credential"
        "&appid=wx0123456789abcdef&secret=***",
        f"* CA bundle: {cli.ca_file}",
        f"* HTTP 200 from {address}",
        f"* cache: refusal saved in {cache}",
        f"error: {ECHOED}",
        f"hint: {hint_for(40125, '')}",
    ]
    assert result.code == 1
    errmsg = ECHOED.split(": ", 1)[1]
    answer = {"errcode": 40125, "errmsg": errmsg, "hint": hint_for(40125, ""), "kind": "refused"}
    assert result.out == (json.dumps(answer, ensure_ascii=False) + "\n" if json_flag else "")


def test_an_excerpt_is_masked_before_it_is_cut(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """HTTP 401 whose text ends with the secret, past the 80 characters of the excerpt: cut
    first, it would show 22 of the secret's 32 characters."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = (401, b"unauthorized: " + b"x" * 44 + b" secret=" + HEX_SECRET.encode())
    result = cli.main("--retries", "0")
    assert result == Result(
        3,
        "",
        "error: HTTP 401 instead of 200: 'unauthorized: " + "x" * 44 + " secret=***'\n"
        f"hint: {RESPONSE_HINT}\n",
    )


# SECRET is S3cret_Value-0f9d8c7b6a5e4d3c2b1a: 33 characters, both cases, digits, - and _.
# What the server echoes -> what the excerpt shows of it
ECHOES = [
    (SECRET, "***"),  # as it is
    (SECRET.upper(), "***"),  # in another letter case
    (SECRET.lower(), "***"),
    (SECRET.swapcase(), "***"),
    (SECRET[:8], "***"),  # 8 characters of it in a row are enough: its start
    (SECRET[-8:], "***"),  # its end
    (SECRET[12:20].upper(), "***"),  # its middle, in capitals
    (SECRET[:20], "***"),  # cut short by the server
    (f"x{SECRET}y", "x***y"),  # inside a word: only its characters go
    (f"{SECRET[:8]}.{SECRET[20:28]}", "***.***"),  # two runs, apart
    (SECRET[:8] + SECRET[20:28], "***"),  # two runs, touching: one ***
    (SECRET[:7], SECRET[:7]),  # 7 in a row is not a run of it: shown
    (SECRET[-7:].upper(), SECRET[-7:].upper()),
    (f"{SECRET[:7]}.{SECRET[7:14]}", f"{SECRET[:7]}.{SECRET[7:14]}"),  # broken into 7 + 7
    (
        "%53%33%63%72%65%74%5F%56%61%6C%75%65",  # looks like S3cret_Value URL-encoded
        "%53%33%63%72%65%74%5F%56%61%6C%75%65",  # but nothing is decoded: shown as it is
    ),
    ("&#83;&#51;cret_V", "&#83;&#51;cret_V"),  # HTML entities: the same
]


@pytest.mark.parametrize(("echoed", "shown"), ECHOES)
def test_every_run_of_8_of_the_secret_a_server_echoes_is_masked(
    cli: CLI, fake: FakeWeChat, echoed: str, shown: str
) -> None:
    fake.behaviour = (403, f"oops {echoed} end".encode())
    result = cli.main("--retries", "0")
    assert result == Result(
        3, "", f"error: HTTP 403 instead of 200: 'oops {shown} end'\nhint: {RESPONSE_HINT}\n"
    )


def test_a_secret_a_server_writes_with_json_escapes_is_masked_once_read(
    cli: CLI, fake: FakeWeChat
) -> None:
    r"""JSON may spell any character \uXXXX: the tool reads the JSON, then masks what it read."""
    spelled = "".join(f"\\u{ord(c):04x}" for c in SECRET[:10]) + SECRET[10:].upper()
    fake.behaviour = f'{{"errcode": 40125, "errmsg": "bad {spelled}!"}}'.encode()
    assert cli.main() == Result(
        1, "", f"error: errcode 40125: bad ***!\nhint: {hint_for(40125, '')}\n"
    )


# --- The AppSecret, where a token should be ------------------------------------------------


def test_a_token_that_holds_the_secret_is_refused_not_printed(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """stdout carries the token as it is: a server that hands back the secret as the token
    does not get it printed."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = json.dumps({"access_token": HEX_SECRET, "expires_in": 7200}).encode()
    result = cli.main("--retries", "0")
    assert result == Result(
        3,
        "",
        "error: the access_token in the answer holds the AppSecret: refused\n"
        f"hint: {RESPONSE_HINT}\n",
    )


@pytest.mark.parametrize(
    ("token", "printed"),
    [
        ("TOKEN_" + HEX_SECRET[3:11].upper(), False),  # 8 of the secret in a row: refused
        ("TOKEN_" + HEX_SECRET[3:10].upper(), True),  # 7: a token like any other
    ],
)
def test_a_token_that_holds_a_run_of_8_of_the_secret_is_refused(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, token: str, printed: bool
) -> None:
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = json.dumps({"access_token": token, "expires_in": 7200}).encode()
    result = cli.main("--retries", "0", "--no-cache")
    assert result == (
        Result(0, f"{token}\n", "")
        if printed
        else Result(
            3,
            "",
            "error: the access_token in the answer holds the AppSecret: refused\n"
            f"hint: {RESPONSE_HINT}\n",
        )
    )


def test_a_cached_token_that_holds_the_secret_is_not_used(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A cache entry forged with the right fingerprint, whose token holds a piece of the
    secret: a new token is fetched instead."""
    env.setenv("WECHAT_APPSECRET", HEX_SECRET)
    fake.behaviour = b'{"access_token": "good_token", "expires_in": 7200}'
    cache = tmp_path / "token.json"
    assert cli.main("--cache-file", str(cache)).out == "good_token\n"
    entry = json.loads(cache.read_text())
    cache.write_text(json.dumps({**entry, "value": "TOKEN_" + HEX_SECRET[:10]}))
    result = cli.main("--cache-file", str(cache), "-v")
    assert (result.code, result.out) == (0, "good_token\n")
    assert "its token holds a piece of the AppSecret" in result.err


# --- Masking and sanitising, as functions -----------------------------------------------------

# text -> redact(text, SECRET): every run of 8 or more of the secret, in any letter case, is
# *** (overlapping and touching runs: one ***); nothing is decoded.
REDACTED = [
    (f"before {SECRET} after", "before *** after"),
    (f"before {SECRET.upper()} after", "before *** after"),
    (f"{SECRET}{SECRET}", "***"),  # touching, and every window between them is a run too
    (f"a{SECRET[:8]}b{SECRET[8:16]}c", "a***b***c"),
    (SECRET[:10] + SECRET[5:15], "***"),  # overlapping runs
    (SECRET[:8].lower() + SECRET[24:].upper(), "***"),  # touching runs from apart
    (SECRET[:7], SECRET[:7]),  # 7: the exact boundary, not masked
    (SECRET[:7] + "." + SECRET[7:14], SECRET[:7] + "." + SECRET[7:14]),
    (SECRET[:4] + "\\" + SECRET[4:12], SECRET[:4] + "\\***"),  # a backslash breaks a run
    ("S3cret%5FValue-0", "S3cret%5FValue-0"),  # %5F is not read as _: 6 + 7 are shown
    ("S3cret\\u005fValue-0", "S3cret\\u005fValue-0"),  # nor \u005f
    ("S3cret&#95;Value-0", "S3cret&#95;Value-0"),  # nor &#95;
    ("中文" + SECRET[3:12].upper() + "é", "中文***é"),  # positions kept beside non-ASCII
    ("İİ" + SECRET[:9].upper(), "İİ***"),  # İ is two characters in lower case
    ("", ""),
]


@pytest.mark.parametrize(("text", "shown"), REDACTED)
def test_redact_masks_every_run_of_8_in_any_case_and_decodes_nothing(text: str, shown: str) -> None:
    assert redact(text, SECRET) == shown


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("%41%42%43%44%45%46%47%48", "ABCDEFGHijklmnop"),  # URL escapes of its first 8
        ("\\u0041\\u0042\\u0043\\u0044\\u0045\\u0046\\u0047\\u0048", "ABCDEFGHijklmnop"),
        ("&#65;&#66;&#67;&#68;&#69;&#70;&#71;&#72;", "ABCDEFGHijklmnop"),
        ("&#x41;&#x42;&#x43;&#x44;&#x45;&#x46;&#x47;&#x48;", "ABCDEFGHijklmnop"),
    ],
)
def test_text_that_looks_like_an_escaped_secret_is_left_alone(text: str, secret: str) -> None:
    """A server cannot need these to echo an AppSecret, so they are taken as they are."""
    assert redact(text, secret) == text


def test_redact_without_a_secret_changes_nothing() -> None:
    assert redact("text S3cret_Value", "") == "text S3cret_Value"


def test_clean_shows_escapes_then_masks() -> None:
    """Sanitising first, then redacting: an escape breaks no run of the secret, as an
    AppSecret holds no character that sanitising changes."""
    assert clean(f"a\x1b{SECRET}\n", SECRET) == r"a\x1b***\n"
    assert clean(f"{SECRET[:4]}\x1b{SECRET[4:12]}", SECRET) == SECRET[:4] + r"\x1b***"


# text -> what is shown
SANITIZED = [
    ("plain text, 中文 too", "plain text, 中文 too"),
    ("\x1b[2J\x1b]0;title\x07", r"\x1b[2J\x1b]0;title\x07"),
    ("line\nforged\r", r"line\nforged\r"),
    ("\x00\x7f\x9b", r"\x00\x7f\x9b"),  # NUL, DEL, and the C1 control sequence introducer
    ("abc\u202edcba", r"abc\u202edcba"),  # right-to-left override
    ("\u2028", r"\u2028"),
    ("a\u061cb", r"a\u061cb"),  # Arabic letter mark (bidi)
    ("a\ufeffb", r"a\ufeffb"),  # zero-width no-break space
    ("a\u2060b", r"a\u2060b"),  # word joiner
    ("a\u2064b", r"a\u2064b"),  # invisible plus
    ("a\u00adb", r"a\xadb"),  # soft hyphen
    ("a\U000e0041b", r"a\U000e0041b"),  # tag latin capital letter A
    ("a\ue000b", r"a\ue000b"),  # private use
    ("a\U000e0fffb", r"a\U000e0fffb"),  # unassigned
    ("a\u3000b", "a\u3000b"),  # an ideographic space is a space: shown as it is
]


@pytest.mark.parametrize(("text", "shown"), SANITIZED)
def test_what_could_act_on_a_terminal_is_shown_as_escapes(text: str, shown: str) -> None:
    assert sanitize(text) == shown


def test_escape_sequences_from_the_server_are_shown_not_obeyed(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "escapes"
    result = cli.main("--json")
    shown = r"invalid \x1b[31mappid\x1b[0m\x07\r\nforged line"
    assert result.err.splitlines()[0] == f"error: errcode 40013: {shown}"
    assert json.loads(result.out)["errmsg"] == shown
    assert not any(ch in result.out + result.err for ch in "\x1b\x07\r")
    assert result.err.count("\n") == 2  # the error line and the hint: no forged line


# --- The guard that every test passes -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [SECRET, SECRET.upper(), f"x{SECRET[10:18].swapcase()}x", f"secret={SECRET[-8:]}"],
)
def test_the_leak_guard_finds_any_run_of_8_in_any_case(text: str) -> None:
    assert find_secret(["nothing here", text]) == [text]


def test_the_leak_guard_lets_7_and_stars_pass() -> None:
    assert find_secret(["nothing here", "***", SECRET[:7], f"{SECRET[:7]}.{SECRET[7:14]}"]) == []


def test_the_leak_guard_sees_the_suite_output(cli: CLI) -> None:
    before = len(OUTPUTS)
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert OUTPUTS[before:] == ["fake_token_1\n", ""]


# --- Runs that only appear once the text is escaped -----------------------------------


def test_a_run_that_json_escaping_makes_masks_that_field_alone(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """--json writes é as \\u00e9 where stdout cannot take é: with this secret, "éABC"
    then becomes a run of 8 of it (u00e9ABC). That field is *** whatever stdout takes; the
    others are shown as they are."""
    env.setenv("WECHAT_APPSECRET", "u00e9ABCqrstvwxyz")
    fake.behaviour = json.dumps({"errcode": 40013, "errmsg": "éABC."}).encode()
    result = cli.main("--json")
    assert result.code == 1
    hint = wechat_token.errors.hint_for(40013, "")
    expected = {"errcode": 40013, "errmsg": "***", "hint": hint, "kind": "refused"}
    assert result.out == json.dumps(expected, ensure_ascii=False) + "\n"
    assert result.err == f"error: errcode 40013: éABC.\nhint: {hint}\n"


def test_a_number_that_holds_a_run_of_the_secret_is_masked_in_json(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """An AppSecret may be all digits: then a number can hold a run of it too."""
    env.setenv("WECHAT_APPSECRET", "0" * 16)
    fake.behaviour = json.dumps({"errcode": 10**11, "errmsg": "odd"}).encode()
    result = cli.main("--json")
    assert result.code == 1
    assert json.loads(result.out)["errcode"] == "***"
    assert "0" * 8 not in result.out + result.err


def test_an_excerpts_escapes_cannot_make_a_run_of_the_secret(
    fake: FakeWeChat, ca_file: str
) -> None:
    r"""repr() shows ESC as \x1b: with this secret, ESC + "2c3d4e5" becomes x1b2c3d4e5, a
    run of it. The library's own str(), repr() and args are masked after the excerpt is
    made, not only the command's output."""
    secret = "x1b2c3d4e5f6a7b8c9"
    fake.behaviour = b"\x1b2c3d4e5!"
    with pytest.raises(wechat_token.ResponseError) as caught:
        wechat_token.get_access_token(APPID, secret, api_base=fake.base_url, cacert=ca_file)
    assert caught.value.args == ("response is not JSON: '\\***!'",)
    assert str(caught.value) == "response is not JSON: '\\***!'"


# --- What is stored, and what names files ---------------------------------------------------


def test_an_appid_that_holds_a_run_of_the_secret_is_refused_unshown(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    """The AppID names the cache file and its lock, and is stored in them: the secret in
    lower case as the AppID was written there whole."""
    for appid in (SECRET.lower(), "wx" + SECRET[3:11], SECRET + "x"):
        env.setenv("WECHAT_APPID", appid)
        result = cli.main()
        assert result == Result(
            2,
            "",
            "error: WECHAT_APPID: that is not an AppID: it looks like an AppSecret\n"
            "hint: an AppID is wx and 16 hex characters; the AppSecret goes in "
            "WECHAT_APPSECRET or appsecret (are the two swapped?)\n",
        )
    assert fake.requests == []


def test_a_refusal_that_would_store_a_run_of_the_secret_is_not_stored(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An all-digit secret, and an errcode that holds it: shown as ***, and not written
    into the cache file either (the refusal is simply not shared)."""
    secret = "9876543210987654"
    env.setenv("WECHAT_APPSECRET", secret)
    fake.behaviour = json.dumps({"errcode": int(secret), "errmsg": "x"}).encode()
    result = cli.main("--json")
    assert (result.code, json.loads(result.out)["errcode"]) == (1, "***")
    stored = [path.read_text() for path in tmp_path.rglob("*.json")]
    assert [text for text in stored if redact(text, secret) != text] == []

"""Promises that hold whatever the input: the AppSecret is never shown, not even in part or
in another spelling, and text from outside cannot act on the terminal.

These are the chosen examples, each exact; test_properties.py checks the same promises for
any input. Every test also passes conftest's guard, which fails it if the AppSecret shows
anywhere in what the tool printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

import wechat_token
from wechat_token.redact import clean, redact, sanitize

from conftest import CLI, OUTPUTS, SECRET_FORMS, Result, find_secret
from fake_wechat import SECRET, FakeWeChat

HEX_SECRET = "0123456789abcdef0123456789abcdef"  # a real AppSecret's shape: 32 hex digits
ECHOED = "errcode 40125: invalid appsecret *** (raw query: secret=***)"

# --- The AppSecret, echoed by a server ----------------------------------------------------


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_secret_echoed_by_the_server_is_masked_in_both_forms(
    cli: CLI, fake: FakeWeChat, json_flag: tuple[str, ...]
) -> None:
    fake.behaviour = "echo-secret"
    result = cli.main(*json_flag, "-v")
    assert result.code == 1
    assert f"error: {ECHOED}\n" in result.err
    if json_flag:
        assert json.loads(result.out)["errmsg"] == ECHOED.split(": ", 1)[1]


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
        f"hint: {wechat_token.ResponseError.hint}\n",
    )


def test_a_secret_with_a_backslash_is_masked_in_an_excerpt(
    cli: CLI, fake: FakeWeChat, env: pytest.MonkeyPatch
) -> None:
    r"""The excerpt is a repr(), which doubles a backslash: 'ab\cd' shows as 'ab\\cd'."""
    secret = "0123456789\\abcdef0123456789abcde"
    env.setenv("WECHAT_APPSECRET", secret)
    fake.behaviour = (500, f"bad secret {secret}".encode())
    result = cli.main("--retries", "0")
    assert result.err.splitlines()[0] == "error: HTTP 500 instead of 200: 'bad secret ***'"
    assert "0123456789" not in result.err


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
        f"hint: {wechat_token.ResponseError.hint}\n",
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


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        "Sup3r%2BSecret%2F%26%25%3D9f2c",  # as urlencode() puts it in the URL
        "Sup3r%2bSecret%2f%26%25%3d9f2c",  # lower-case escapes, as some servers echo it
        "SUP3R+SECRET/&%=9F2C",  # letter case does not hide it
    ],
)
def test_redact_masks_every_form(form: str) -> None:
    assert redact(f"before {form} after", SECRET) == "before *** after"


def test_redact_without_a_secret_changes_nothing() -> None:
    assert redact("text", "") == "text"


def test_the_secret_is_masked_in_any_letter_case_not_only_ascii() -> None:
    """'B3\\%+/&É' is 8 characters of a secret holding 'é'; 'İ' is 2 characters in lower case."""
    secret = "Ab3\\%+/&é?#;:@<>{}[]|^`~!$*()-_."
    assert redact("x B3\\%+/&É y", secret) == "x *** y"
    assert redact("İİ" + secret[:9].upper(), secret) == "İİ***"


def test_a_character_beyond_the_bmp_is_found_in_its_json_escape() -> None:
    """JSON with ensure_ascii writes 😀 as the surrogate pair \\ud83d\\ude00."""
    secret = "😀" * 4 + "0123456789abcdef"
    assert redact("x " + json.dumps(secret[:8])[1:-1] + " y", secret) == "x *** y"


def test_clean_masks_a_secret_spelled_with_escapes() -> None:
    """Sanitising first, then redacting: the result never holds the secret."""
    assert clean("k=ab\x1bcdef", "ab\\x1bcdef") == "k=***"


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


def test_the_leak_guard_itself_finds_every_form() -> None:
    for form in SECRET_FORMS:
        assert find_secret([f"x{form.upper()}x"]) == [f"x{form.upper()}x"]
    assert find_secret(["nothing here", "***"]) == []


def test_the_leak_guard_sees_the_suite_output(cli: CLI) -> None:
    before = len(OUTPUTS)
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert OUTPUTS[before:] == ["fake_token_1\n", ""]

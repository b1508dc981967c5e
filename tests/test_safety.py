"""The AppSecret never appears in output, and server text cannot drive the terminal."""

from __future__ import annotations

import json

import pytest

from wechat_token.redact import clean, redact, sanitize

from conftest import CLI, OUTPUTS, SECRET_FORMS, Result, find_secret
from fake_wechat import SECRET, FakeWeChat

ECHOED = "errcode 40125: invalid appsecret *** (raw query: secret=***)"


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_secret_echoed_by_the_server_is_masked_in_both_forms(
    cli: CLI, fake: FakeWeChat, json_flag: tuple[str, ...]
) -> None:
    fake.behaviour = "echo-secret"
    result = cli.run(*json_flag, "-v")
    assert result.code == 1
    assert f"error: {ECHOED}\n" in result.err
    if json_flag:
        assert json.loads(result.out)["errmsg"] == ECHOED.split(": ", 1)[1]


def test_escape_sequences_from_the_server_are_shown_not_obeyed(cli: CLI, fake: FakeWeChat) -> None:
    fake.behaviour = "escapes"
    result = cli.main("--json")
    shown = r"invalid \x1b[31mappid\x1b[0m\x07\r\nforged line"
    assert result.err.splitlines()[0] == f"error: errcode 40013: {shown}"
    assert json.loads(result.out)["errmsg"] == shown
    assert not any(ch in result.out + result.err for ch in "\x1b\x07\r")
    assert result.err.count("\n") == 2  # the error line and the hint: no forged line


# text -> what is shown
SANITIZED = [
    ("plain text, 中文 too", "plain text, 中文 too"),
    ("\x1b[2J\x1b]0;title\x07", r"\x1b[2J\x1b]0;title\x07"),
    ("line\nforged\r", r"line\nforged\r"),
    ("\x00\x7f\x9b", r"\x00\x7f\x9b"),  # NUL, DEL, and the C1 control sequence introducer
    ("abc\u202edcba", r"abc\u202edcba"),  # right-to-left override
    ("\u2028", r"\u2028"),
]


@pytest.mark.parametrize(("text", "shown"), SANITIZED)
def test_sanitize(text: str, shown: str) -> None:
    assert sanitize(text) == shown


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


def test_clean_masks_a_secret_spelled_with_escapes() -> None:
    """Sanitising first, then redacting: the result never holds the secret."""
    assert clean("k=ab\x1bcdef", "ab\\x1bcdef") == "k=***"


def test_the_leak_guard_itself_finds_every_form() -> None:
    for form in SECRET_FORMS:
        assert find_secret([f"x{form.upper()}x"]) == [f"x{form.upper()}x"]
    assert find_secret(["nothing here", "***"]) == []


def test_the_leak_guard_sees_the_suite_output(cli: CLI) -> None:
    before = len(OUTPUTS)
    assert cli.main() == Result(0, "fake_token_1\n", "")
    assert OUTPUTS[before:] == ["fake_token_1\n", ""]

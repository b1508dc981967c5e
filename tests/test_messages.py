"""The two tables of messages (wechat_token/messages/en.py, zh.py): complete, consistent,
and used; and under a Chinese locale, what the tool prints is Chinese."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from wechat_token.errors import HINTED, SAME_HINT
from wechat_token.messages import LANGUAGES, from_locale, msg, use

from conftest import CLI
from fake_wechat import APPID, BEHAVIOURS, ERRMSG, SECRET, FakeWeChat

PACKAGE = Path(__file__).resolve().parent.parent / "wechat_token"
EN, ZH = LANGUAGES["en"], LANGUAGES["zh"]


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_both_tables_have_the_same_keys() -> None:
    assert sorted(set(EN) - set(ZH)) == []
    assert sorted(set(ZH) - set(EN)) == []


@pytest.mark.parametrize("key", sorted(EN))
def test_a_message_has_the_same_placeholders_in_both_languages(key: str) -> None:
    assert fields(ZH[key]) == fields(EN[key])


def _keys_in_code() -> set[str]:
    """Every key the package names as a literal: msg("key", ...) and hint_key = "key"."""
    keys = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                keys.add(node.value)
    return keys


def test_every_message_is_used_and_every_key_used_exists() -> None:
    named = _keys_in_code()
    dynamic = {key for key in EN if re.fullmatch(r"errcode\.-?\d+", key)}  # f"errcode.{n}"
    assert sorted(set(EN) - named - dynamic) == []
    calls = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "msg" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    calls.add(first.value)
    assert sorted(calls - set(EN)) == []


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.UTF-8"}, "zh"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_SG"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANGUAGE": "zh_CN:en", "LC_ALL": "C"}, "zh"),  # as gettext: LANGUAGE first, a list
        ({"LANGUAGE": "en_US:en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_locale_decides_as_gettext_reads_it(environ: dict[str, str], language: str) -> None:
    assert from_locale(environ) == language


def test_a_language_use_does_not_know_is_refused_unshown() -> None:
    with pytest.raises(ValueError, match=r"^language: not one of en, zh$"):
        use(SECRET)


# --- No English under a Chinese locale ------------------------------------------------------

# Three ASCII words in a row make an English phrase; a command, a WeChat name or an
# option's value may be written in Chinese text as it is typed (ALLOWED).
ENGLISH = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?: [A-Za-z]+(?:'[a-z]+)?){2,}")
ALLOWED = re.compile(
    r"python -m pip install \w+|pip install -r requirements|python -m wechat_token|"
    r"echo \"\$TOKEN\" \| wechat-token|Mini Program"
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def english_in(text: str) -> list[str]:
    return ENGLISH.findall(ALLOWED.sub(" ", text))


@pytest.mark.parametrize("key", sorted(ZH))
def test_a_chinese_message_has_no_english_sentence(key: str) -> None:
    template = re.sub(r"\{[^{}]*\}", " ", ZH[key])
    assert english_in(template) == []
    assert CJK.search(template) or not re.search(r"[A-Za-z]{4}", template), template


# Every failure the fake (or a closed port, another CA, a bad setting) can make, as
# (fake's behaviour, getticket's behaviour, arguments, environment changes).
ERRCODES = sorted({*HINTED, *SAME_HINT, 41001, 40097, 99999})
FAILURES: list[tuple[object, object, tuple[str, ...], dict[str, str | None]]] = [
    *((errcode, "ok", (), {}) for errcode in ERRCODES),
    *((behaviour, "ok", (), {}) for behaviour in BEHAVIOURS if behaviour not in ("ok", "slow")),
    *(
        (body, "ok", (), {})
        for body in [
            (200, b"[]"),
            (200, b"not json"),
            (200, b'{"access_token": 5, "expires_in": 7200}'),
            (200, b'{"expires_in": 7200}'),
            (404, b"{}"),
            (500, b"<html><title>down</title></html>", "text/html"),
        ]
    ),
    *(("ok", errcode, ("ticket", "jsapi"), {}) for errcode in (-1, 40001, 40097, 45009)),
    ("ok", "ok", ("--cacert", "{other_ca}"), {}),
    ("ok", "ok", ("--api-base", "https://127.0.0.1:{closed_port}", "--cacert", "{ca}"), {}),
    ("ok", "ok", ("--proxy", "http://127.0.0.1:{closed_port}"), {}),
    ("ok", "ok", ("--timeout", "abc"), {}),
    ("ok", "ok", ("--retries", "99"), {}),
    ("ok", "ok", ("--valid-for", "9999"), {}),
    ("ok", "ok", ("--cacert", "{missing}"), {}),
    ("ok", "ok", ("--api-base", "http://127.0.0.1"), {}),
    ("ok", "ok", ("--cache-file", "{config}"), {}),
    ("ok", "ok", ("--replace", "a b"), {}),
    ("ok", "ok", ("--unknown",), {}),
    ("ok", "ok", ("--timeout",), {}),
    ("ok", "ok", ("--no-cache", "--cache-file", "x"), {}),
    ("ok", "ok", ("ticket", "nope"), {}),
    ("ok", "ok", ("sign", "https://example.com/", "--noncestr", "a b"), {}),
    ("ok", "ok", ("sign", "https://example.com/", "--timestamp", "soon"), {}),
    ("ok", "ok", ("--noncestr", "x"), {}),
    ("ok", "ok", (), {"WECHAT_APPID": None}),
    ("ok", "ok", (), {"WECHAT_APPSECRET": "your-appsecret-here"}),
    ("ok", "ok", (), {"WECHAT_APPSECRET": "has a space in it, see"}),
    ("ok", "ok", (), {"WECHAT_APPSECRET": "0123456789abcdef0123456789abcdeX"}),
    ("ok", "ok", ("--appid", "wx00000000000000ff"), {}),
]


@pytest.mark.parametrize(("behaviour", "ticket", "args", "changes"), FAILURES, ids=repr)
def test_under_a_chinese_locale_every_failure_is_told_in_chinese(
    cli: CLI,
    fake: FakeWeChat,
    env: pytest.MonkeyPatch,
    closed_port: int,
    tmp_path: Path,
    behaviour: object,
    ticket: object,
    args: tuple[str, ...],
    changes: dict[str, str | None],
) -> None:
    """LANG=zh_CN.UTF-8: every line on stderr (error:, hint:, warnings, -v) is Chinese;
    what WeChat or a server said is quoted as it came, and only that is not."""
    env.setenv("LANG", "zh_CN.UTF-8")
    for name, value in changes.items():
        env.delenv(name) if value is None else env.setenv(name, value)
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    (tmp_path / "config.ini").write_text("[wechat]\n", encoding="utf-8")
    fake.behaviour, fake.ticket_behaviour = behaviour, ticket  # type: ignore[assignment]
    places = {
        "ca": cli.ca_file,
        "other_ca": other_ca,
        "closed_port": closed_port,
        "config": "config.ini",
    }
    given = [arg.format(missing=tmp_path / "none.pem", **places) for arg in args]
    base = "--api-base" not in args  # else the fake's address, and the given one
    result = cli.main("-v", "--retries", "0", "--timeout", "2", *given, base=base)
    assert result.code != 0
    lines = result.err.splitlines()
    assert any(line.startswith("error: ") for line in lines)
    for line in lines:
        text = re.sub(
            r"'[^']*'|\"[^\"]*\"", " ", line.removeprefix("error: ").removeprefix("hint: ")
        )
        for said in ERRMSG.values():  # WeChat's errmsg, quoted as it came
            text = text.replace(said, " ")
        assert english_in(text) == [], line
        assert CJK.search(text), line


@pytest.mark.parametrize(
    ("config", "args"),
    [
        ("[wechat]\nappid = {appid}\nappsecret = {secret}\ntimout = 5\n", ()),  # 2 warnings
        ("[wechat]\n", ("sign", "http://example.com/#x")),  # two warnings
        ("[wechat]\n", ("ticket", "jsapi", "--force-refresh")),
    ],
)
def test_under_a_chinese_locale_warnings_and_notes_are_chinese(
    cli: CLI, env: pytest.MonkeyPatch, tmp_path: Path, config: str, args: tuple[str, ...]
) -> None:
    """A run that succeeds says what it warns of, and what -v tells, in Chinese too."""
    env.setenv("LANG", "zh_CN.UTF-8")
    path = tmp_path / "config.ini"
    path.write_text(config.format(appid=APPID, secret=SECRET), encoding="utf-8")
    path.chmod(0o644)  # the secret readable by others: a warning
    result = cli.main("-v", *args)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert len(lines) >= 3
    for line in lines:
        assert english_in(re.sub(r"'[^']*'", " ", line)) == [], line
        assert CJK.search(line), line


# --- Any value fills a template as itself ---------------------------------------------------

PLAIN = sorted(  # the messages whose placeholders take text (not a number's format)
    key
    for key in EN
    if all(not spec for table in (EN, ZH) for _, _, spec, _ in string.Formatter().parse(table[key]))
)


@given(data=st.data())
def test_any_text_fills_any_message_as_itself(data: st.DataObject) -> None:
    """A value (a path, a server's text, what the user typed) is never read as a template:
    braces, %s and {0} in it come out as they went in, in both languages."""
    key = data.draw(st.sampled_from(PLAIN))
    values = {
        name: data.draw(st.text(alphabet="{}%s0!r: 中a", max_size=12), label=name)
        for name in sorted(fields(EN[key]))
    }
    try:
        for language in ("en", "zh"):
            use(language)
            said = msg(key, **values)
            for name, value in values.items():
                conversion = "{" + name + "!r}" in LANGUAGES[language][key]
                assert (repr(value) if conversion else value) in said
    finally:
        use(None)

"""The two tables of messages (wechat_token/messages/en.py, zh.py): complete, consistent,
and used; and under a Chinese locale, what the tool prints is Chinese."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from wechat_token.messages import LANGUAGES, from_locale

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
        ({}, "en"),
    ],
)
def test_the_locale_decides_as_gettext_reads_it(environ: dict[str, str], language: str) -> None:
    assert from_locale(environ) == language

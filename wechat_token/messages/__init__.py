"""What the tool says, in the reader's language: one table of messages per language.

    msg("cache.waiting", seconds=2.5)   # "waiting for ..." or "正在等待 ..."

en.py and zh.py each hold one dict from a key to a str.format template; a test keeps
their keys and placeholders the same. Plain tables, not gettext: gettext would need .po
files compiled to .mo at build time and shipped as package data, and its keys are the
English sentences themselves; two dicts need no build step, work from a source checkout,
are checked by mypy and ruff, and a missing key is a test failure rather than a silent
fallback to English.

The language is the user's locale, read as Python's gettext reads it: the first of
LANGUAGE, LC_ALL, LC_MESSAGES and LANG that is set; "zh..." is Chinese, anything else
English. The command's
--lang, or use() in a program, overrides it.
"""

from __future__ import annotations

import os

from wechat_token.messages import en, zh

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from collections.abc import Mapping

LANGUAGES = {"en": en.MESSAGES, "zh": zh.MESSAGES}


_chosen: list[str] = []  # the language use() set; empty: the locale's


def from_locale(environ: Mapping[str, str]) -> str:
    """ "zh" if the locale is Chinese, as Python's gettext reads it: the first of LANGUAGE
    (a list, zh_CN:en), LC_ALL, LC_MESSAGES and LANG that is set starts with "zh"."""
    names = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    locale = next((environ[name] for name in names if environ.get(name)), "")
    return "zh" if locale.startswith("zh") else "en"


def language() -> str:
    """The language messages are written in now: use()'s, else the locale's."""
    return chosen() or from_locale(os.environ)


def chosen() -> str | None:
    """The language use() set, or None: the locale's (to put back what use() changed)."""
    return _chosen[-1] if _chosen else None


def use(name: str | None) -> None:
    """Write messages in `name` ("en" or "zh") from now on; None: the locale's again."""
    if name is not None and name not in LANGUAGES:  # not echoed: it may be anything
        raise ValueError(f"language: not one of {', '.join(LANGUAGES)}")
    _chosen[:] = [] if name is None else [name]


def msg(key: str, /, **params: object) -> str:
    """The message `key` in the current language, its {placeholders} filled from `params`.
    The templates are ours; what fills them (a path, a server's text) is never read as one."""
    return LANGUAGES[language()][key].format_map(params)

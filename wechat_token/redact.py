"""Masking the AppSecret, and making text from outside safe to show.

Every message the tool shows, and every error's text, goes through clean(): sanitised
(nothing that can act on a terminal), then redacted (no run of the AppSecret).
"""

from __future__ import annotations

import re

SECRET_RUN = 8  # this many consecutive characters of the AppSecret are masked wherever seen
# config.ini.example's placeholders: refused as credentials, so not a secret to mask
PLACEHOLDERS = ("your-appid-here", "your-appsecret-here")


def clean(text: str, secret: str) -> str:
    """What every message goes through before it is shown: sanitised, then redacted.

    Sanitising changes no character an AppSecret can hold (it must be printable), so
    redaction still sees every run of it, and sees the text exactly as it will be shown.
    """
    return redact(sanitize(text), secret)


def sanitize(text: str) -> str:
    r"""Show what could act on a terminal as escapes (\x1b, \u202e, \U000e0041): control
    and format characters (bidi marks, zero-width and tag characters), line and paragraph
    separators, private-use, surrogate and unassigned code points, by Unicode category."""
    if text.isprintable():  # the usual case, and no import needed
        return text
    import unicodedata

    return "".join(
        ascii(char)[1:-1] if unicodedata.category(char) in _HIDDEN else char for char in text
    )


_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}  # shown as escapes; other spaces are fine


def redact(text: str, secret: str) -> str:
    """Replace every run of SECRET_RUN or more characters of the AppSecret with ***.

    The text is searched as it is, and as a URL, JSON, Python or HTML reader would decode
    it (%2F, \\u0026, \\/, \\\\, \\', &amp;, ... in any mix and letter case), so a run is
    found in whatever form a server echoes it. Give it whole texts: once a text is cut, a
    piece of the secret may be too short to recognise.
    """
    if len(secret) < SECRET_RUN or secret in PLACEHOLDERS:  # no secret to find
        return text
    size = SECRET_RUN
    pieces = {secret[i : i + size].translate(_FOLD) for i in range(len(secret) - size + 1)}
    runs: list[tuple[int, int]] = []  # (start, end) in `text` of each run found
    for chars, starts, ends in (_as_is(text), _decoded(text)):
        seen = "".join(chars).translate(_FOLD)
        for i in range(len(seen) - size + 1):
            if seen[i : i + size] in pieces:
                runs.append((starts[i], ends[i + size - 1]))
    shown: list[str] = []
    kept = 0
    for start, end in sorted(runs):  # overlapping runs merge into one ***
        if start > kept or not shown:
            shown += [text[kept:start], "***"]
        kept = max(kept, end)
    return "".join(shown) + text[kept:]


class _Fold(dict[int, str]):
    """A str.translate table to lower case, one character for one: a secret's É matches é,
    and İ, whose lower case is two characters, stays as it is (so positions still match)."""

    def __missing__(self, code: int) -> str:
        lower = chr(code).lower()
        self[code] = folded = lower if len(lower) == 1 else chr(code)
        return folded


_FOLD = _Fold()
_Chars = tuple[list[str], list[int], list[int]]  # characters, and where each came from


def _as_is(text: str) -> _Chars:
    return list(text), list(range(len(text))), list(range(1, len(text) + 1))


_ESCAPE = re.compile(
    r"(?P<url>(?:%[0-9A-Fa-f]{2})+)"  # %2F%C3%A9: UTF-8 bytes
    r"|\\u(?P<high>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<low>[dD][c-fC-F][0-9a-fA-F]{2})"  # JSON 😀
    r"|\\u(?P<u4>[0-9a-fA-F]{4})|\\U(?P<u8>[0-9a-fA-F]{8})|\\x(?P<x2>[0-9a-fA-F]{2})"
    r"|&#[xX](?P<hex>[0-9a-fA-F]{1,6});|&#(?P<dec>[0-9]{1,7});"  # HTML: &#x26; &#38;
    r"|\\(?P<plain>[\\/\"'])"  # \\ \/ \" \'
    r"|&(?P<entity>amp|lt|gt|quot|apos);"
)


_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _decoded(text: str) -> _Chars:
    """The characters of `text` with its escapes decoded, each with the span it came from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    done = 0
    for match in _ESCAPE.finditer(text):
        decoded = _unescape(match)
        if decoded is None:  # not a character (\U00110000): leave it as it is
            continue
        chars += text[done : match.start()]
        starts += range(done, match.start())
        ends += range(done + 1, match.start() + 1)
        position = match.start()
        for char, length in decoded:  # length: how many characters of `text` it took
            chars.append(char)
            starts.append(position)
            ends.append(position + length)
            position += length
        done = match.end()
    chars += text[done:]
    starts += range(done, len(text))
    ends += range(done + 1, len(text) + 1)
    return chars, starts, ends


def _unescape(match: re.Match[str]) -> list[tuple[str, int]] | None:
    """What one escape stands for: (character, length of its escape) for each character."""
    group = match.lastgroup or ""
    if group == "url":  # each character takes 3 text characters per UTF-8 byte
        data = bytes.fromhex(match["url"].replace("%", ""))
        return [
            (char, 3 * len(char.encode(errors="surrogateescape")))
            for char in data.decode(errors="surrogateescape")
        ]
    if group == "low":  # a JSON surrogate pair, \ud83d\ude00: one character
        pair = chr(int(match["high"], 16)) + chr(int(match["low"], 16))
        return [(pair.encode("utf-16", "surrogatepass").decode("utf-16"), 12)]
    if group == "plain":
        return [(match["plain"], 2)]
    if group == "entity":
        return [(_ENTITIES[match["entity"]], len(match[0]))]
    number = int(match[group], 10 if group == "dec" else 16)
    return [(chr(number), len(match[0]))] if number <= 0x10FFFF else None

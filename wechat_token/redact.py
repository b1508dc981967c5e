"""Masking the AppSecret, and making text from outside safe to show.

Every message the tool shows, and every error's text, goes through clean(): sanitised
(nothing that can act on a terminal), then redacted (no run of the AppSecret).

The promise is exact because the input was narrowed first: an AppSecret is 16 to 64
characters of [A-Za-z0-9_-] (wechat_token.config refuses anything else). URL, JSON and
HTML escaping leave those characters as they are, so a server that echoes the secret
echoes it as itself, perhaps in another letter case, and nothing needs decoding.
"""

from __future__ import annotations

SECRET_RUN = 8  # this many consecutive characters of the AppSecret are masked wherever seen
MAX_SECRET = 4096  # characters: a longer "secret" is refused, not searched for (an AppSecret
# has 16 to 64; a proxy's password is masked with the same function)


def clean(text: str, secret: str) -> str:
    """What every message goes through before it is shown: sanitised, then redacted.

    Sanitising changes no character an AppSecret can hold, so redaction sees every run
    of it, in the text exactly as it will be shown.
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
    """Replace every run of SECRET_RUN or more consecutive characters of the AppSecret,
    in any letter case, with ***; overlapping and touching runs become one ***.

    Give it whole texts: once a text is cut, a piece of the secret may be too short to
    recognise.
    """
    if not SECRET_RUN <= len(secret) <= MAX_SECRET:  # no secret (yet) to find, or not one
        return text
    folded = _fold(secret)
    pieces = {folded[i : i + SECRET_RUN] for i in range(len(secret) - SECRET_RUN + 1)}
    seen = _fold(text)
    shown: list[str] = []
    kept = 0  # text[:kept] is done with
    for start in range(len(text) - SECRET_RUN + 1):
        if seen[start : start + SECRET_RUN] in pieces:
            if start > kept or not shown:
                shown += [text[kept:start], "***"]
            kept = start + SECRET_RUN
    return "".join(shown) + text[kept:]


def _fold(text: str) -> str:
    """ASCII letters in lower case, every other character as it is: one character for one
    (İ would lower to two), so positions in the folded text are positions in `text`."""
    return (
        text.lower() if text.isascii() else "".join(c.lower() if c.isascii() else c for c in text)
    )

"""Property-based tests: the promises of the contract hold for any input, not just chosen ones.

Hypothesis generates what the world may throw at wechat-token -- any answer from the
server, any cache file, config file, command line or environment -- and every run is
checked against the same promises (`check_promises`): the exit codes, what each stream
may hold, that no 8 characters of the AppSecret in a row are shown in any letter case,
and that nothing printed can act on a terminal. An AppSecret is 16 to 64 of
[A-Za-z0-9_-], which no URL, JSON or HTML escaping changes: a server echoes it as itself,
so that is the one spelling to look for. The "ci" profile (conftest.py) runs a fixed set of
examples; `pytest tests/test_properties.py --hypothesis-profile=hunt` searches far longer.

Most tests call wechat_token.cli.main() in this process, which is fast; a few run
`python -m wechat_token` as a user would, with a time limit, for what only a real process
shows (environment bytes that are not UTF-8, a stdout on a full disk).

Coverage is not measured here: its tracer made these tests twice as slow (16.7 s against
10.2 s), and the exact tests reach every line these do.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import coverage
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from wechat_token.config import PLACEHOLDERS
from wechat_token.errors import KEYS, hint_for

from conftest import CLI, COMMAND, OUTPUTS, Result
from fake_wechat import APPID, SECRET, FakeWeChat
from loopback_proxy import running_proxy


@pytest.fixture(autouse=True)
def _not_measured() -> Iterator[None]:
    """Coverage paused for these tests (see the module's docstring). pytest-cov's no_cover
    marker would do it, but it fails every test under --no-cov (pytest-cov 7.1)."""
    measuring = coverage.Coverage.current()
    if measuring is None:  # --no-cov
        yield
        return
    measuring.stop()
    try:
        yield
    finally:
        measuring.start()


# --- The promises, as one checker -----------------------------------------------------

EXIT_CODES = frozenset({0, 1, 2, 3})  # 70 (an internal error) is a failure here
STDOUT_EXIT_CODES = EXIT_CODES | {74, 141}  # only in tests that give stdout trouble
JSON_KEYS = {
    0: {"access_token", "expires_in", "expires_at", "cached"},
    1: {"errcode", "errmsg", "hint", "kind"},  # WeChat answered with an errcode
}
JSON_FAILURE_KEYS = {"error", "hint", "kind"}  # any other failure
# The failure kinds a monitor reads, each within its exit code (docs/options.md)
KINDS = {
    1: {"refused", "busy", "quota"},
    2: {"config"},
    3: {"network", "tls", "proxy", "response", "busy"},
}
STDERR_PREFIXES = ("* ", "warning: ", "error: ", "hint: ")
TOKEN_LINE = re.compile(r"[\x21-\x7e]+\n")  # printable ASCII, no space, then one newline
# Categories that can act on a terminal or hide text: controls, format characters (bidi,
# invisible), line and paragraph separators, private use, surrogates, unassigned.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
WINDOW = 8  # no 8 consecutive characters of the AppSecret may be shown, in any letter case


def fold(text: str) -> str:
    """ASCII letters in lower case, every other character as it is: the letter case that
    the promise ignores (an AppSecret's letters are all ASCII)."""
    return "".join(char.lower() if char.isascii() else char for char in text)


def secret_fragments(secret: str) -> set[str]:
    """Every 8-character window of the secret, folded: what may never be shown. A value
    shorter than that has none: the tests that give one check what is shown exactly."""
    folded = fold(secret)
    return {folded[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


def find_fragment(text: str, fragments: set[str]) -> str | None:
    """A fragment of the secret found in `text`, letter case ignored; None if there is none."""
    folded = fold(text)
    return next((fragment for fragment in sorted(fragments) if fragment in folded), None)


def forbidden_characters(text: str) -> list[str]:
    """The characters that must never reach a terminal (the ending newlines aside)."""
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in FORBIDDEN_CATEGORIES]


def strict_json(text: str) -> Any:
    """json.loads, refusing NaN and Infinity: they are not JSON, whatever Python accepts."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def check_promises(
    code: int,
    out: str,
    err: str,
    secret: str,
    json_mode: bool,
    codes: frozenset[int] = EXIT_CODES,
) -> None:
    """Fail if this run broke a promise of the contract that holds whatever the input.

    Each promise is its own assert, so that Hypothesis reports each broken one separately.
    """
    shown = f"exit {code}\nstdout: {out!r}\nstderr: {err!r}"
    assert code in codes, f"exit code {code} is not in the contract (70: a bug)\n{shown}"
    assert "Traceback" not in out + err, f"a traceback\n{shown}"
    for name, text in (("stdout", out), ("stderr", err)):
        bad = forbidden_characters(text)
        assert not bad, f"{name} holds characters that act on a terminal: {bad!r}\n{shown}"
        leak = find_fragment(text, secret_fragments(secret))
        assert leak is None, f"{name} shows a piece of the AppSecret: {leak!r}\n{shown}"
    if code in EXIT_CODES:  # after 74 or 141, what got through is all that can be said
        _check_stdout(code, out, json_mode, shown)
        _check_stderr(code, err, shown)


def _check_stdout(code: int, out: str, json_mode: bool, shown: str) -> None:
    """The token and a newline; or one line of JSON with the documented keys; or nothing."""
    if not json_mode:
        if code == 0:
            assert TOKEN_LINE.fullmatch(out), f"stdout is not a token and a newline\n{shown}"
        else:
            assert out == "", f"stdout is not empty after a failure\n{shown}"
        return
    assert out.endswith("\n"), f"--json: not one line ending with a newline\n{shown}"
    assert out.count("\n") == 1, f"--json: more than one line\n{shown}"
    hidden = [char for char in out[:-1] if unicodedata.category(char) in FORBIDDEN_CATEGORIES]
    assert not hidden, f"--json: characters that act on a terminal: {hidden!r}\n{shown}"
    try:
        answer = strict_json(out)
    except ValueError as error:
        raise AssertionError(f"--json: stdout is not JSON ({error})\n{shown}") from None
    assert isinstance(answer, dict), f"--json: not a JSON object\n{shown}"
    keys = JSON_KEYS.get(code, JSON_FAILURE_KEYS)
    assert set(answer) == keys, f"--json: keys {sorted(answer)}, not {sorted(keys)}\n{shown}"
    if code in KINDS:
        assert answer["kind"] in KINDS[code], f"--json: kind {answer['kind']!r}, exit {code}"
    if code == 0:
        token = answer["access_token"]
        assert isinstance(token, str), f"--json: access_token not a string\n{shown}"
        assert TOKEN_LINE.fullmatch(token + "\n"), f"--json: not a token: {token!r}\n{shown}"
        assert isinstance(answer["cached"], bool), shown


def _check_stderr(code: int, err: str, shown: str) -> None:
    """Known kinds of lines only; and a failure says what went wrong, then what to do."""
    lines = err.split("\n")
    assert lines[-1] == "", f"stderr does not end with a newline\n{shown}"
    lines.pop()
    odd = [line for line in lines if not line.startswith(STDERR_PREFIXES)]
    assert not odd, f"stderr lines of no known kind: {odd!r}\n{shown}"
    errors = [number for number, line in enumerate(lines) if line.startswith("error: ")]
    if code == 0:
        assert not errors, f"an error line, yet exit 0\n{shown}"
        return
    assert errors, f"exit {code} without an 'error: ' line\n{shown}"
    after = lines[errors[0] + 1 :]
    assert any(line.startswith("hint: ") for line in after), f"no 'hint: ' line\n{shown}"


def check_result(result: Result, secret: str, json_mode: bool) -> None:
    check_promises(result.code, result.out, result.err, secret, json_mode)


def printed_token(result: Result, json_mode: bool) -> str:
    """The token a successful run printed."""
    return str(json.loads(result.out)["access_token"]) if json_mode else result.out[:-1]


# --- The checker checks what it should ------------------------------------------------

PLANTED_SECRET = "Zq7-Xw9_Vt3Kp5Lm0Nb8Jc2Hd6Fg4Rs1Y"  # 33 of the alphabet
SPELLED: dict[str, Callable[[str], str]] = {  # the letter cases a server may echo it in
    "as it is": lambda w: w,
    "upper case": str.upper,
    "lower case": str.lower,
    "swapped case": str.swapcase,
    "mixed case": lambda w: "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(w)),
}


@pytest.mark.parametrize("spelling", sorted(SPELLED))
@pytest.mark.parametrize("start", [0, 12, 25])  # the start, the middle, the end
@pytest.mark.parametrize("length", [8, 9, 33])  # a window of 8, more, the whole secret
def test_the_checker_finds_a_planted_run_of_the_secret(
    spelling: str, start: int, length: int
) -> None:
    """The leak finder sees any run of 8 or more of the secret, in any letter case, inside
    other text."""
    run = PLANTED_SECRET[start : start + length] if length < 33 else PLANTED_SECRET
    text = f"error: errcode 40125: x{SPELLED[spelling](run)}x rid: 1\n"
    assert find_fragment(text, secret_fragments(PLANTED_SECRET)) is not None
    with pytest.raises(AssertionError, match="piece of the AppSecret"):
        check_promises(1, "", text + "hint: check it\n", PLANTED_SECRET, json_mode=False)


@pytest.mark.parametrize(
    "text",
    [
        PLANTED_SECRET[:7],  # 7 in a row: the exact boundary, not a leak
        PLANTED_SECRET[:7].upper() + " " + PLANTED_SECRET[7:14],  # 7 and 7, apart
        "%5A%71%37%2D%58%77%39%5F",  # its first 8 URL-encoded: nothing is decoded
        "\\u005a\\u0071\\u0037\\u002d\\u0058\\u0077\\u0039\\u005f",  # JSON escapes
        "&#90;&#113;&#55;&#45;&#88;&#119;&#57;&#95;",  # HTML character references
        "***",
    ],
)
def test_the_checker_finds_no_run_where_there_is_none(text: str) -> None:
    assert find_fragment(text, secret_fragments(PLANTED_SECRET)) is None
    check_promises(1, "", f"error: {text}\nhint: check it\n", PLANTED_SECRET, json_mode=False)


def test_the_checker_lets_a_good_run_pass_and_finds_each_broken_promise() -> None:
    """A correct run passes; each kind of broken promise is caught."""
    hint = "error: no answer\nhint: check the network\n"
    good = {"error": "no answer", "hint": "check the network", "kind": "network"}
    check_promises(0, "tok_1\n", "", PLANTED_SECRET, json_mode=False)
    check_promises(3, json.dumps(good) + "\n", hint, PLANTED_SECRET, json_mode=True)
    seven = f"error: {PLANTED_SECRET[1:8]}\nhint: y\n"  # 7 characters of the secret: not a leak
    check_promises(1, "", seven, PLANTED_SECRET, json_mode=False)
    broken = [
        (70, "", "error: internal error\nhint: report it\n", False),  # an internal error
        (3, "", "error: no answer\n", False),  # no hint
        (3, "", "hint: first\nerror: then\n", False),  # the hint before the error
        (3, "", "Traceback (most recent call last):\n", False),
        (0, "tok 1\n", "", False),  # a space in the token
        (0, "tok_1", "", False),  # no newline
        (3, "partial", hint, False),  # stdout after a failure
        (3, json.dumps({"error": "x"}) + "\n", hint, True),  # no "hint" key
        (3, json.dumps({**good, "x": "\u202e"}, ensure_ascii=False) + "\n", hint, True),
        (3, '{"error": NaN, "hint": "h"}\n', hint, True),  # not JSON
        (3, json.dumps({**good, "kind": "refused"}) + "\n", hint, True),  # not exit 3's kind
        (2, json.dumps({**good, "kind": "sorry"}) + "\n", hint, True),  # not a kind
        (1, "", "error: a\x1b[2Jb\nhint: c\n", False),  # a terminal escape
        (1, "", "error: \U000e0041\nhint: c\n", False),  # a tag character
        (1, "", "error: a\nforged line\nhint: c\n", False),  # a line of no known kind
    ]
    for code, out, err, json_mode in broken:
        with pytest.raises(AssertionError):
            check_promises(code, out, err, PLANTED_SECRET, json_mode)


# --- Running the tool -----------------------------------------------------------------

FAST = ("--retries", "0", "--timeout", "5")  # one attempt: every example ends in a moment
# Seconds: the contract's bound for a run with FAST (one attempt of 5 s), plus 3 s to start.
# A child run here takes well under one; one still going then is a hang.
CHILD_LIMIT = 8.0
CHILD_MEMORY = 1 << 30  # bytes of address space: a child that reads /dev/zero stops there
Env = Mapping[str, str | None]  # variables to set; None: remove it


def run_main(cli: CLI, args: list[str] | tuple[str, ...], env: Env, base: bool = True) -> Result:
    """wechat_token.cli.main(args) in this process, with the environment changed for this run.

    Hypothesis runs many examples in one test, so the `env` fixture cannot vary per
    example: each run changes os.environ itself, and puts it back afterwards. It also
    checks the promise that main() leaves the SIGINT handler as it found it.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        handler = signal.getsignal(signal.SIGINT)
        result = cli.main(*args, base=base)
        assert signal.getsignal(signal.SIGINT) == handler, "main() changed the SIGINT handler"
    return result


def child_env(changes: Mapping[bytes, bytes | None]) -> dict[bytes, bytes]:
    """This process's environment (the `env` fixture's) as bytes, with `changes` made."""
    env = dict(os.environb)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_child(args: list[str], env: dict[bytes, bytes], stdout: Any = subprocess.PIPE) -> Result:
    """`python -m wechat_token ARGS`, as a user runs it, stopped after CHILD_LIMIT seconds.

    A run still going then has broken the promise that it ends in time: that is a
    failure. Output is decoded so that bytes that are not UTF-8 show as surrogates,
    which the checker refuses. Given another `stdout` (a file), its output reads as "".
    """
    child = subprocess.Popen(
        [*COMMAND, *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
    )
    ended = False
    try:
        _limit_memory(child.pid)
        out, err = child.communicate(timeout=CHILD_LIMIT)
        ended = True
    except subprocess.TimeoutExpired:
        pass
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()  # reap it, and close the pipes
    assert ended, f"still running after {CHILD_LIMIT:g} s: {args}"
    result = Result(
        child.returncode,
        (out or b"").decode("utf-8", "surrogateescape"),
        err.decode("utf-8", "surrogateescape"),
    )
    OUTPUTS.extend(result[1:])  # for conftest's guard, like cli.main and cli.run
    return result


def _limit_memory(pid: int) -> None:
    """Cap a child's memory, so that a bug reading an endless file cannot eat the machine's."""
    try:
        import resource

        resource.prlimit(pid, resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    except (ImportError, AttributeError, ProcessLookupError):  # not Linux, or done already
        pass


def examples(ci_count: int) -> settings:
    """Settings for a test whose examples are slow: `ci_count` examples under the "ci"
    profile, and as many more under another profile as that profile has more."""
    share = settings().max_examples / 60  # 60: the "ci" profile's max_examples
    return settings(max_examples=max(1, round(ci_count * share)), suppress_health_check=HEALTH)


# Examples share the function-scoped fixtures (cli, fake, tmp_path) on purpose: each one
# resets the fake, sets its environment and works in a folder of its own.
HEALTH = [*settings().suppress_health_check, HealthCheck.function_scoped_fixture]
SHARED_FIXTURES = settings(suppress_health_check=HEALTH)


def token_body(token: str, expires_in: int = 7200) -> bytes:
    return json.dumps({"access_token": token, "expires_in": expires_in}).encode()


def sent_token(body: bytes, field: str = "access_token") -> str | None:
    """The access_token in a server's answer (or the value in a cache file), if it holds
    one as text."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return None
    token = answer.get(field) if isinstance(answer, dict) else None
    return token if isinstance(token, str) else None


# --- Strategies: what the world may send ------------------------------------------------

HEX = "fedcba9876543210"  # backwards: shrunk examples then share nothing with APPID
OPTIONS = ("--json", "-v")
flag_sets = st.sets(st.sampled_from(OPTIONS)).map(lambda flags: tuple(sorted(flags)))


def _shares_a_window(secret: str, text: str) -> bool:
    return any(secret[i : i + WINDOW] in text for i in range(len(secret) - WINDOW + 1))


def _varied(secret: str) -> bool:
    """Each 8-character window holds 4 different characters or more: no run like
    "00000000" that the tool's own output (a timestamp, an errcode) could hold by chance."""
    return all(len(set(secret[i : i + WINDOW])) >= 4 for i in range(len(secret) - WINDOW + 1))


# What an AppSecret is: WeChat's are 32 hex digits, WeCom's 43 of the alphabet; any 16 to
# 64 of it are taken.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
secrets = (
    st.from_regex(SECRET_PATTERN, fullmatch=True)
    .filter(_varied)
    .filter(lambda secret: not _shares_a_window(secret, APPID))  # -v prints the AppID
)
# A real AppSecret is 32 hex digits. Two shuffles of the 16 digits make one whose
# 8-character windows hold 4 different digits or more (see _varied).
hex_secrets = st.tuples(st.permutations(HEX), st.permutations(HEX)).map(
    lambda halves: "".join(halves[0] + halves[1])
)
# A proxy's password may hold anything: printable characters, no space, of every kind
# that needs care: the ASCII that URLs, JSON or Python escape; letters whose upper or lower
# case is longer or odd (İ, ẞ, ς, ǅ); digits of other scripts; full-width forms; CJK; a
# combining accent; emoji and flags (beyond U+FFFF). 32 of them, all different.
WIDE = "Ab3\\%+/&=?#;:@<>{}[]|^`~!$*()-_.,éÉßİıẞΣςǅжΩ中文ｶＡ١٢\u0301😀🇨🇳𝔸\"'"
wide_passwords = (
    st.permutations(WIDE)
    .map(lambda shuffled: "".join(shuffled[:32]))
    .filter(lambda secret: secret[0] not in "\"'" and secret[-1] not in "\"'")
)
passwords = st.one_of(secrets, wide_passwords)

# Characters that mean trouble: controls and terminal escapes, bidi marks (U+202E,
# U+061C, U+2066), invisible ones (U+200B, U+2060-U+2064, U+00AD, U+FEFF), line
# separators, tag characters (U+E0001-U+E007F), private use, unassigned, lone surrogates.
NASTY = (
    "\x00\x07\x08\t\n\r\x1b\x7f\x85\x9b"
    "\u00ad\u061c\u200b\u200d\u200e\u202e\u2028\u2029\u2060\u2061\u2062\u2063\u2064\u2066"
    "\ufeff\ufff9\ue000\U000f0000\u0378\U000e0001\U000e0041\U000e007f\ud800\udc00\udfff"
)
nasty_text = st.text(st.one_of(st.sampled_from(NASTY), st.characters()), max_size=30)
HUGE = [10**400, -(10**400), 2**63, 2**64 + 1, 1e308, -1e308, 5e-324, -0.0]
HUGE += [float("inf"), float("-inf"), float("nan")]
numbers = st.one_of(st.integers(), st.sampled_from(HUGE), st.floats())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, nasty_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=6,
)
good_tokens = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)
errcodes = st.sampled_from([-1, 0, 1, 40001, 40013, 40125, 40164, 45009, 10**400, 2**63])
answer_objects = st.builds(
    lambda extra, fields: {**extra, **fields},
    st.dictionaries(nasty_text, json_values, max_size=2),
    st.fixed_dictionaries(
        {},
        optional={
            "access_token": good_tokens | json_values,
            "expires_in": st.integers(-10, 10**6) | numbers | json_values,
            "errcode": errcodes | json_values,
            "errmsg": nasty_text | json_values,
        },
    ),
)


@st.composite
def json_bytes(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    """A value as a server could encode it: ASCII with \\u escapes (lone surrogates as
    "\\ud800", NaN as NaN), or raw UTF-8 (lone surrogates then make it invalid UTF-8)."""
    value = draw(values)
    if draw(st.booleans()):
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# The letter cases a server may echo the secret in. Escaping leaves it as it is (its
# alphabet needs none), so nothing else is a spelling of it.
ECHO_CASES: dict[str, Callable[[str], str]] = {
    "as it is": lambda s: s,
    "upper case": str.upper,
    "lower case": str.lower,
    "swapped case": str.swapcase,
}
# Around it: nothing, words, letters of its alphabet that run into it, and 100 characters
# (an 80-character excerpt cuts it).
FILLER = ["", "invalid appsecret ", "secret=", "x" * 100, "Zz_"]


@st.composite
def echoes(draw: st.DrawFn, secret: str) -> str:
    """Server text repeating the secret, whole or a run of 8 or more of it, in any letter
    case (each letter's case may be drawn apart: mixed case)."""
    piece = secret
    if draw(st.booleans()):  # cut short: a prefix, a suffix or a middle of 8 or more
        start = draw(st.integers(0, len(secret) - WINDOW))
        piece = secret[start : draw(st.integers(start + WINDOW, len(secret)))]
    case = draw(st.sampled_from([*ECHO_CASES, "mixed case"]))
    if case == "mixed case":
        flips = draw(st.lists(st.booleans(), min_size=len(piece), max_size=len(piece)))
        spelled = "".join(c.swapcase() if f else c for c, f in zip(piece, flips, strict=True))
    else:
        spelled = ECHO_CASES[case](piece)
    after = draw(st.sampled_from(["", " rid: 1", "_Zz", "!"]))
    return draw(st.sampled_from(FILLER)) + spelled + after


@st.composite
def echoing_bodies(draw: st.DrawFn, secret: str) -> bytes:
    """A body with the secret echoed in the errmsg, the token, another field, text, a web
    page's title (named in the error) or its body (never shown)."""
    text = draw(echoes(secret))
    places = ["errmsg", "access_token", "other field", "text", "title", "html"]
    place = draw(st.sampled_from(places))
    if place == "text":
        return text.encode()
    if place == "title":
        return f"<!DOCTYPE html><html><head><title>{text}</title></head></html>".encode()
    if place == "html":
        return f"<html><body><h1>Bad request</h1>{text}</body></html>".encode()
    if place == "errmsg":
        answer: dict[str, Any] = {"errcode": draw(errcodes), "errmsg": text}
    elif place == "access_token":
        answer = {"access_token": text, "expires_in": 7200}
    else:  # as the name of a field, and its value
        answer = {"errcode": 40125, "errmsg": "invalid appsecret", text: text}
    return draw(json_bytes(st.just(answer)))


EDGE_BODIES = [
    b"",
    b'{"access_token":"tok","expires_in":7200}',  # a good answer
    b'{"access_token":"tok","expires_in":1' + b"0" * 5000 + b"}",  # over int()'s digit limit
    b'{"access_token":"tok","expires_in":1e400}',  # a float that is infinite
    b'{"access_token":"tok","expires_in":NaN}',
    b'{"access_token":"tok","expires_in":7200.5}',
    b'{"access_token":"tok","expires_in":true}',
    b'{"errcode":1e400,"errmsg":"x"}',
    b'{"errcode":-1.0,"errmsg":"x"}',
    b'{"errcode":true,"errmsg":"x"}',
    b'{"errcode":40013,"errmsg":"\\ud800\\udfff\\u202e\\u001b[2J\\u0000"}',  # a pair: U+103FF
    b'{"errcode":40013,"errmsg":"a\\ud800b\\udfffc"}',  # lone surrogates
    b'{"access_token":"tok","access_token":"t o k","expires_in":7200}',  # the last one wins
    b'{"access_token":"tok","expires_in":7200}\x00trailing',
    b'\xef\xbb\xbf{"access_token":"tok","expires_in":7200}',  # a byte order mark
    b'{"access_token":"t\xe9","expires_in":7200}',  # Latin-1, not UTF-8
    b'"a string"',
    b"null",
    b"[" * 50_000,  # nested deeper than Python's recursion limit
    b'{"errmsg":"' + b"\\u202e" * 10_000 + b'","errcode":40013}',  # long, and all escapes
    b'{"x":"' + b"y" * 70_000 + b'"}',  # over 64 KiB
]
statuses = st.sampled_from([200, 200, 200, 301, 400, 403, 404, 429, 500, 502, 503])


class Answer(NamedTuple):
    """A server's answer to an AppSecret, and how the tool is run."""

    secret: str
    status: int
    body: bytes
    flags: tuple[str, ...]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    secret = draw(secrets)
    body = draw(
        st.one_of(
            st.sampled_from(EDGE_BODIES),
            echoing_bodies(secret),
            json_bytes(answer_objects),
            st.binary(max_size=200),
        )
    )
    return Answer(secret, draw(statuses), body, draw(flag_sets))


# --- Any answer from the server ---------------------------------------------------------


# A few answers that must always be tried, whatever Hypothesis generates besides.
KNOWN_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _errmsg(text: str) -> bytes:
    return json.dumps({"errcode": 40125, "errmsg": text}).encode()


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache-file"])
@SHARED_FIXTURES
@given(answer=answers())
@example(answer=Answer(KNOWN_SECRET, 200, _errmsg("x" * 100 + KNOWN_SECRET), ()))
@example(answer=Answer(KNOWN_SECRET, 200, _errmsg(KNOWN_SECRET[5:17]), ()))
@example(answer=Answer(KNOWN_SECRET, 400, KNOWN_SECRET[:10].upper().encode(), ()))
@example(answer=Answer(KNOWN_SECRET, 200, f"<title>{KNOWN_SECRET.upper()}</title>".encode(), ()))
@example(answer=Answer(KNOWN_SECRET, 200, _errmsg("\U000e0041\u202e\u2062\ue000"), ("--json",)))
def test_any_server_answer_keeps_every_promise(
    cli: CLI, fake: FakeWeChat, tmp_path: Path, cache: bool, answer: Answer
) -> None:
    """Whatever the server answers: no run of 8 of the secret shown (echoed whole or cut
    short, in any letter case, inside long text, in a web page's title), nothing that acts
    on a terminal, no crash, stdout only a token or one JSON object, every failure with its
    hint; a token printed is the one the server sent; and what is stored (the cache file
    and its lock) holds no run of the secret either."""
    fake.reset()
    fake.behaviour = (answer.status, answer.body)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        where = ["--cache-file", os.path.join(folder, "t.json")] if cache else ["--no-cache"]
        result = run_main(cli, [*FAST, *where, *answer.flags], {"WECHAT_APPSECRET": answer.secret})
        for stored in sorted(Path(folder).iterdir()):  # t.json and t.json.lock, if written
            text = stored.read_bytes().decode("utf-8", "replace")
            leak = find_fragment(text, secret_fragments(answer.secret))
            assert leak is None, f"{stored.name} holds a piece of the AppSecret: {leak!r}"
    json_mode = "--json" in answer.flags
    check_result(result, answer.secret, json_mode)
    assert fake.requests, "an AppSecret of the alphabet: the server must be asked"
    if result.code == 0:
        assert printed_token(result, json_mode) == sent_token(answer.body), "not the token sent"


@examples(3)  # the in-process test above tries 60 answers for each way of caching
@given(answer=answers())
def test_any_server_answer_keeps_every_promise_as_a_user_runs_it(
    cli: CLI, fake: FakeWeChat, answer: Answer
) -> None:
    """The same as above, for `python -m wechat_token` itself: what reaches the real
    stdout and stderr (encoding, buffering, exit status) keeps the same promises."""
    fake.reset()
    fake.behaviour = (answer.status, answer.body)
    args = cli.argv((*FAST, "--no-cache", *answer.flags), base=True)
    result = run_child(args, child_env({b"WECHAT_APPSECRET": answer.secret.encode()}))
    check_result(result, answer.secret, "--json" in answer.flags)


# --- Any cache file ---------------------------------------------------------------------


class FromNow(NamedTuple):
    """A time this many seconds from when the file is written (the test cannot know it)."""

    seconds: float


class Tweak(NamedTuple):
    """The tool's own cache entry, with some fields changed and some removed."""

    changes: dict[str, Any]
    removed: frozenset[str]


CACHE_FIELDS = ["appid", "endpoint", "realm", "secret_sha256", "value", "expires_in"]
CACHE_FIELDS.append("expires_at")
times = st.one_of(
    st.sampled_from([1e308, 10**400, -1, 0, 2**63, float("nan"), float("inf"), float("-inf")]),
    st.floats(-1e4, 1e4).map(FromNow),
    json_values,
)
tweaks = st.builds(
    Tweak,
    st.fixed_dictionaries(
        {},
        optional={
            "expires_at": times,
            "expires_in": st.sampled_from([0, -1, 1, 7200, 10**400]) | numbers | json_values,
            "value": good_tokens | nasty_text | json_values,
            "appid": nasty_text | json_values,
            "secret_sha256": nasty_text | json_values,
            "something_else": json_values,
        },
    ),
    st.frozensets(st.sampled_from(CACHE_FIELDS)),
)
cache_contents = st.one_of(tweaks, st.binary(max_size=300), json_bytes(json_values))


def cache_bytes(content: Tweak | bytes, template: dict[str, Any]) -> bytes:
    """The bytes to write into the cache file."""
    if isinstance(content, bytes):
        return content
    entry = {key: value for key, value in template.items() if key not in content.removed}
    for key, value in content.changes.items():
        entry[key] = time.time() + value.seconds if isinstance(value, FromNow) else value
    return json.dumps(entry).encode("utf-8", "surrogatepass")


def check_cache_left_whole(path: str, written: bytes, template: dict[str, Any]) -> None:
    """After a run the cache file is gone, untouched, or a whole entry of the tool's shape;
    and nothing is left beside it but its lock."""
    folder, name = os.path.split(path)
    left = set(os.listdir(folder)) - {name, name + ".lock"}
    assert not left, f"files left beside the cache: {sorted(left)}"
    if not os.path.exists(path):
        return
    data = Path(path).read_bytes()
    if data == written:
        return
    try:
        entry = strict_json(data.decode())
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        raise AssertionError(f"the cache file is not JSON ({error}): {data[:200]!r}") from None
    assert isinstance(entry, dict), f"the cache file is not an entry: {data!r}"
    assert set(entry) == set(template), f"the cache file is not an entry: {data!r}"


_OWN_ENTRIES: dict[Path, dict[str, Any]] = {}


def own_entry(cli: CLI, fake: FakeWeChat, tmp_path: Path) -> dict[str, Any]:
    """The cache entry the tool writes for a good answer: made by the first example of a
    test, and the template of the others' (the tweaks apply to a copy)."""
    if tmp_path not in _OWN_ENTRIES:
        path = tmp_path / "own-entry.json"
        fake.behaviour = (200, token_body("first_token"))
        first = cli.main(*FAST, "--cache-file", str(path))
        assert first.code == 0, f"a good answer must give a cache file: {first}"
        _OWN_ENTRIES[tmp_path] = json.loads(path.read_bytes())
        fake.reset()
    return dict(_OWN_ENTRIES[tmp_path])


@SHARED_FIXTURES
@given(content=cache_contents, server_ok=st.booleans(), flags=flag_sets)
@example(content=Tweak({"expires_at": 10**400}, frozenset()), server_ok=True, flags=())
@example(content=Tweak({"expires_at": 1e308}, frozenset()), server_ok=True, flags=())
@example(content=Tweak({"expires_at": float("nan")}, frozenset()), server_ok=True, flags=())
@example(content=Tweak({"expires_at": float("inf")}, frozenset()), server_ok=True, flags=())
@example(content=Tweak({"expires_at": -1}, frozenset()), server_ok=False, flags=())
@example(content=Tweak({"expires_in": 10**400}, frozenset()), server_ok=True, flags=())
@example(content=Tweak({"value": "t\x1b[2Jk"}, frozenset()), server_ok=False, flags=())
def test_any_cache_file_keeps_every_promise(
    cli: CLI,
    fake: FakeWeChat,
    tmp_path: Path,
    content: Tweak | bytes,
    server_ok: bool,
    flags: tuple[str, ...],
) -> None:
    """Whatever the cache file holds (any bytes, any JSON, the tool's own entry with
    expires_at 1e308, 10**400, NaN, an access_token of any text...): no crash, promises
    kept, the token printed is the server's or the file's, and the file is left whole."""
    fake.reset()
    template = own_entry(cli, fake, tmp_path)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        path = os.path.join(folder, "token.json")
        written = cache_bytes(content, template)
        Path(path).write_bytes(written)

        fake.behaviour = (200, token_body("fresh_token")) if server_ok else (503, b"busy")
        result = cli.main(*FAST, "--cache-file", path, *flags)
        check_result(result, SECRET, "--json" in flags)
        check_cache_left_whole(path, written, template)
    if result.code == 0:
        tokens = {"fresh_token", sent_token(written, "value")}
        assert printed_token(result, "--json" in flags) in tokens, "a token from nowhere"


# --- Any config file --------------------------------------------------------------------


class ConfigFile(NamedTuple):
    secret: str  # the AppSecret written in it, perhaps with odd characters around it
    data: bytes  # the whole file
    appid_from_env: bool  # False: WECHAT_APPID is unset, so the file's appid counts
    flag: tuple[str, str]  # --retries 0 or --timeout 5: the file's other one is used


HEADERS = ["[wechat]", "[WECHAT]", "[ wechat ]", "[wechat", "", "[other]", "\x00[wechat]"]
HEADERS += ["[wechat]\n[wechat]", "\ufeff[wechat]", "[wechat]\n[wechat.extra]"]
SETTING_KEYS = ["appid", "appsecret", "api_base", "ca_bundle", "timeout", "retries", "stable"]
SETTING_KEYS.append("cache_file")
ODD_KEYS = ["AppSecret", "app secret", "appsecret2", "中文", "%(appid)s", "[x]", "\u202ekey"]
ODD_KEYS += ["ke\x1by", "k" * 5000, "#appid", ";appid", "  appid", "appid\x00"]
ODD_VALUES = ["", "''", '"x"', "%", "%(appid)s", "yes", "no", "maybe", "0", "-1", "nan"]
ODD_VALUES += ["inf", "1e309", "9" * 5000, "3601", "5", "\u0665", "https://127.0.0.1:1"]
ODD_VALUES += ["../" * 50, "/nonexistent/x", "a\n  continued", "a\nforged = line"]
SEPARATORS = ["=", " = ", ":", " : ", ""]  # "": a line that is not key = value
SECRET_SPELLINGS = ["<s>", '"<s>"', "'<s>'", "<s>\x00", "\t<s>", "<s> trailing", "%<s>"]
SECRET_SPELLINGS += ["<s>\n  continued", "<s>%(appid)s", "<s><s>", "<s>\u202e", "\x1b<s>"]


@st.composite
def config_files(draw: st.DrawFn) -> ConfigFile:
    secret = draw(secrets)
    secret_line = "appsecret = " + draw(st.sampled_from(SECRET_SPELLINGS)).replace("<s>", secret)
    keys = st.one_of(st.sampled_from(SETTING_KEYS), st.sampled_from(ODD_KEYS), nasty_text)
    values = st.one_of(st.sampled_from(ODD_VALUES), nasty_text)
    entries = draw(st.lists(st.tuples(keys, st.sampled_from(SEPARATORS), values), max_size=5))
    lines = [f"{key}{separator}{value}" for key, separator, value in entries]
    lines.insert(draw(st.integers(0, len(lines))), secret_line)
    text = "\n".join([draw(st.sampled_from(HEADERS)), *lines]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8 with BOM", "utf-16", "a stray byte"]))
    if encoding == "utf-16":
        data = text.encode("utf-16", "surrogatepass")
    else:
        data = text.encode("utf-8", "surrogatepass")  # lone surrogates: not UTF-8 then
    if encoding == "utf-8 with BOM":
        data = b"\xef\xbb\xbf" + data
    if encoding == "a stray byte":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + b"\xff" + data[cut:]
    flag = draw(st.sampled_from([("--retries", "0"), ("--timeout", "5")]))
    return ConfigFile(secret, data, draw(st.booleans()), flag)


@SHARED_FIXTURES
@given(config=config_files(), flags=flag_sets)
def test_any_config_file_keeps_every_promise(
    cli: CLI, fake: FakeWeChat, tmp_path: Path, config: ConfigFile, flags: tuple[str, ...]
) -> None:
    """Whatever config.ini holds (any Unicode, NUL bytes, huge values, odd keys, a secret
    with odd characters around it, not UTF-8): no crash, no piece of the secret shown
    (not even in a complaint about its line), nothing that acts on a terminal."""
    fake.reset()
    fake.behaviour = (200, token_body("config_token"))
    env = {"WECHAT_APPSECRET": None, "WECHAT_APPID": APPID if config.appid_from_env else None}
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        path = os.path.join(folder, "config.ini")
        Path(path).write_bytes(config.data)
        args = ["--config", path, "--no-cache", *config.flag, *flags]
        result = run_main(cli, args, env)
    check_result(result, config.secret, "--json" in flags)


# --- Any command-line value -------------------------------------------------------------

# {port} stands for the fake's port. Only 127.0.0.1, or URLs that cannot be used at all:
# these tests must never reach another machine, nor make a DNS query.
ODD_API_BASES = [
    "https://[::1",
    "https://[::1]x",
    "https://[127.0.0.1]",
    "https://127.0.0.1:65536",
    "https://127.0.0.1:99999",
    "https://127.0.0.1:0",
    "https://127.0.0.1:-1",
    "https://127.0.0.1:abc",
    "https://127.0.0.1:",
    "https://127.0.0.1:" + "9" * 5000,
    "https://127.0.0.1:{port}:{port}",
    "https://127.0.0.1:{port}/",
    "https://127.0.0.1:{port}//",
    "https://127.0.0.1:{port}?q=1",
    "https://127.0.0.1:{port}#fragment",
    "https://user:password@127.0.0.1:{port}",
    "HTTPS://127.0.0.1:{port}",
    "http://127.0.0.1:{port}",
    "ftp://127.0.0.1:{port}",
    "https:/127.0.0.1:{port}",
    "https:127.0.0.1",
    "https://",
    "",
    " ",
    "'https://127.0.0.1:{port}'",
    "https://１２７.０.０.１:{port}",
    "https://127.0.0.1:{port}/\u202e",
    "https://127.0.0.1:{port}/%00",
    "https://127.0.0.1:{port}/\x1b[2J",
    "-",
    "--json",
]
ODD_TIMEOUTS = ["0", "-1", "nan", "inf", "-inf", "1e309", "1e-300", "0.0001", "3600", "3601"]
ODD_TIMEOUTS += ["1_0", "\u0661\u0660", "５", " 5 ", "0x10", "", "5s", "1e3"]
ODD_RETRIES = ["0", "5", "6", "-1", "1" + "0" * 30, "²", "\u0663", "+1", "1.0", " 1", ""]
ODD_RETRIES += ["0x1", "1_0"]


def argv_text(text: str) -> str:
    """Text as a command line can hold it: no NUL, and of the surrogates only those that
    stand for bytes that are not UTF-8 (U+DC80 to U+DCFF)."""
    return "".join(ch for ch in text if ch != "\x00" and not _unspeakable_surrogate(ch))


def _unspeakable_surrogate(ch: str) -> bool:
    return "\ud800" <= ch < "\udc80" or "\udcff" < ch <= "\udfff"


# The secret typed where it does not belong ("<s>" stands for it): each must be refused
# without being echoed.
SECRET_ON_THE_COMMAND_LINE = ["--appsecret <s>", "--appsecret=<s>", "--app-secret=<s>"]
SECRET_ON_THE_COMMAND_LINE += ["--secret <s>", "<s>", "-s <s>", "-s<s>", "--json <s>"]
SECRET_ON_THE_COMMAND_LINE += ["--appid <s>", "--config=<s>"]


class CommandLine(NamedTuple):
    secret: str  # in WECHAT_APPSECRET; and on the command line, by mistake, for some
    option: str  # the option given an odd value
    values: tuple[str, ...]


@st.composite
def command_lines(draw: st.DrawFn) -> CommandLine:
    secret = draw(secrets)
    tail = st.tuples(st.sampled_from("/?#"), nasty_text.map(argv_text)).map("".join)
    odd = {
        "--api-base": st.sampled_from(ODD_API_BASES) | tail.map("https://127.0.0.1:{port}".__add__),
        "--timeout": st.sampled_from(ODD_TIMEOUTS) | st.floats().map(repr) | nasty_text,
        "--retries": st.sampled_from(ODD_RETRIES) | st.integers().map(str) | nasty_text,
        "the secret": st.sampled_from(SECRET_ON_THE_COMMAND_LINE),
    }
    option = draw(st.sampled_from(list(odd)))
    value = draw(odd[option])
    if option == "the secret":
        values = tuple(value.replace("<s>", secret).split(" "))
    else:
        values = (option, argv_text(value))
    return CommandLine(secret, option, values)


@SHARED_FIXTURES
@given(line=command_lines(), flags=flag_sets)
@example(line=CommandLine(KNOWN_SECRET, "--api-base", ("--api-base", "https://[::1")), flags=())
@example(line=CommandLine(KNOWN_SECRET, "--retries", ("--retries", "\u0663")), flags=())
@example(line=CommandLine(KNOWN_SECRET, "the secret", ("--appid", KNOWN_SECRET)), flags=())
def test_any_command_line_value_keeps_every_promise(
    cli: CLI, fake: FakeWeChat, line: CommandLine, flags: tuple[str, ...]
) -> None:
    """Whatever --api-base, --timeout or --retries says (ports out of range, 'https://[::1',
    'nan', Arabic-Indic digits...), and even with the secret typed on the command line by
    mistake: no crash, no piece of the secret shown, nothing that acts on a terminal."""
    fake.reset()
    fake.behaviour = (200, token_body("cli_token"))
    port = str(fake.base_url.rsplit(":", 1)[1])
    values = [value.replace("{port}", port) for value in line.values]
    if line.option == "--api-base":  # the only API base, then: the fake's is not given
        args = ["--cacert", cli.ca_file, *FAST, "--no-cache", *values, *flags]
        result = run_main(cli, args, {"WECHAT_APPSECRET": line.secret}, base=False)
    else:  # given last, so the odd value overrides FAST's
        args = [*FAST, "--no-cache", *flags, *values]
        result = run_main(cli, args, {"WECHAT_APPSECRET": line.secret})
    # "--api-base --json" asks for JSON too: --json is an option, not a value, wherever it is.
    check_result(result, line.secret, "--json" in args)


LONG_OPTIONS = {  # each with a value that would work, were the abbreviation accepted
    "--json": "",
    "--verbose": "",
    "--no-cache": "",
    "--stable": "",
    "--no-stable": "",
    "--force-refresh": "",
    "--timeout": "=5",
    "--retries": "=0",
    "--appid": "=" + APPID,
}


@SHARED_FIXTURES
@given(option=st.sampled_from(list(LONG_OPTIONS)), length=st.integers(3, 20))
def test_abbreviated_options_are_refused(
    cli: CLI, fake: FakeWeChat, option: str, length: int
) -> None:
    """An abbreviation of a long option (--js for --json) is a usage error: exit 2."""
    abbreviation = option[: min(length, len(option) - 1)]
    fake.reset()
    fake.behaviour = (200, token_body("abbreviated_token"))
    result = run_main(cli, [*FAST, "--no-cache", abbreviation + LONG_OPTIONS[option]], {})
    check_result(result, SECRET, json_mode=False)
    assert result.code == 2, f"{abbreviation!r} was taken for {option}"


# --- Secrets the tool must refuse, and environments that are not UTF-8 --------------------

# Characters an AppSecret never holds: what a paste brings (spaces, line breaks, quotes),
# what URLs, JSON or HTML would escape, letters beyond ASCII, controls, invisible ones.
NOT_IN_ALPHABET = [" ", "\t", "\n", "\r", "\u3000", "\xa0", "\x1b", "\x7f", "\x85", "\u200b"]
NOT_IN_ALPHABET += ["\u202e", "\u00ad", "\ufeff", "\ue000", "\u0378", "\U000e0041", "\udcff"]
NOT_IN_ALPHABET += [*"+/&%=\\\"'`~.:;@#?!*", "é", "中", "😀", "İ", "Ａ", "\u2028"]
SECRET_HINT = (  # after every "not an AppSecret"
    f"copy the AppSecret again from {KEYS}: it is 16 to 64 letters, digits, - or _ "
    "(WeChat's are 32 hex characters, WeCom's 43); a stray quote, space or line break from "
    "a paste is the usual cause"
)
AS_WRITTEN = "config.ini takes values as written: appid = wx0123456789abcdef"


@st.composite
def any_secrets(draw: st.DrawFn) -> str:
    """What WECHAT_APPSECRET may be set to: an AppSecret with characters of any kind put in
    it, any text at all, or letters of the alphabet of any length (1 to 100)."""
    kind = draw(st.sampled_from(["spoiled", "any text", "the alphabet, any length"]))
    if kind == "spoiled":
        secret = draw(secrets)
        for bad in draw(st.lists(st.sampled_from(NOT_IN_ALPHABET), min_size=1, max_size=3)):
            at = draw(st.integers(0, len(secret)))
            secret = secret[:at] + bad + secret[at:]
    elif kind == "any text":
        secret = draw(st.text(min_size=1, max_size=80))
    else:
        secret = draw(st.text(st.sampled_from(ALPHABET), min_size=1, max_size=100))
    secret = argv_text(secret)  # what an environment can hold
    assume(secret and secret not in PLACEHOLDERS and secret != APPID)
    return secret


def refusal(secret: str) -> tuple[str, str]:
    """The error and hint for a WECHAT_APPSECRET that is not an AppSecret: what is wrong
    with it, told without any of it."""
    if secret[0] in "\"'" or secret[-1] in "\"'":  # as config.ini would keep quotes
        return "remove the quotes around the value", AS_WRITTEN

    def kind(char: str) -> str:
        if char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029":  # where str.splitlines() breaks
            return "a line break"
        if char.isspace():
            return "a space"
        return "a quote" if char in "'\"`" else "another character"

    odd = sorted({kind(char) for char in secret if char not in ALPHABET})
    odd = odd if 16 <= len(secret) <= 64 else []  # a length out of range is said first
    plural = "" if len(secret) == 1 else "s"
    what = f"it holds {' and '.join(odd)}" if odd else f"it has {len(secret)} character{plural}"
    return f"not an AppSecret: {what}", SECRET_HINT


# 64 of the alphabet that no message of the tool holds 8 of in a row
TYPED = "Q7zXw9VtK3mP5nR8-Jd2Hf6Lg4Sb1Ya_" + "q7ZxW9vTk3Mp5Nr8_jD2hF6lG4sB1yA-"


@SHARED_FIXTURES
@given(secret=any_secrets(), json_mode=st.booleans())
@example(secret=TYPED[:16], json_mode=False)  # 16: the shortest taken
@example(secret=TYPED[:15], json_mode=False)  # 15: refused
@example(secret=TYPED, json_mode=False)  # 64: the longest taken
@example(secret=TYPED + "Z", json_mode=True)  # 65: refused
@example(secret=TYPED[:10] + "+/&%=\\" + TYPED[10:20], json_mode=False)
@example(secret=f'"{TYPED[:20]}"', json_mode=False)
@example(secret=f"{TYPED[:20]}\r\n", json_mode=True)  # a paste with its line end
def test_any_secret_is_taken_if_it_is_an_appsecret_and_else_refused_unshown(
    cli: CLI, fake: FakeWeChat, secret: str, json_mode: bool
) -> None:
    """Whatever WECHAT_APPSECRET holds: 16 to 64 of [A-Za-z0-9_-] is sent as it is (and
    the fake, whose secret it is not, refuses it); anything else is a configuration error,
    exit 2, found before anything is sent, that says what is wrong and shows none of it."""
    fake.reset()
    flags = ["--json"] if json_mode else []
    result = run_main(cli, [*FAST, "--no-cache", *flags], {"WECHAT_APPSECRET": secret})
    check_result(result, secret, json_mode)
    if SECRET_PATTERN.fullmatch(secret):
        assert result.code == 1, result
        assert [request.query["secret"] for request in fake.requests] == [secret]
        assert (
            result.err == f"error: errcode 40125: invalid appsecret\nhint: {hint_for(40125, '')}\n"
        )
        return
    message, hint = refusal(secret)
    error = f"WECHAT_APPSECRET: {message}"
    out = json.dumps({"error": error, "hint": hint, "kind": "config"}, ensure_ascii=False) + "\n"
    assert result == Result(2, out if json_mode else "", f"error: {error}\nhint: {hint}\n")
    assert not fake.requests, "the refused secret was sent"


STRAY_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xed\xa0\x80", b"\xe4\xb8", b"\x1b[2J", b"\x80"]


@st.composite
def environment_bytes(draw: st.DrawFn) -> bytes:
    """A value for an environment variable: a real-looking secret with stray bytes put in
    it, or any bytes at all; no NUL (an environment cannot hold one), and 8 characters or
    more as Python decodes them (so that there is a run of 8 to look for)."""
    if draw(st.booleans()):
        value = draw(hex_secrets).encode()
        strays = st.sampled_from(STRAY_BYTES) | st.binary(min_size=1, max_size=4)
        for stray in draw(st.lists(strays, min_size=1, max_size=3)):
            at = draw(st.integers(0, len(value)))
            value = value[:at] + stray + value[at:]
    else:
        value = draw(st.binary(min_size=WINDOW, max_size=40))
    value = value.replace(b"\x00", b"")
    assume(len(value.decode("utf-8", "surrogateescape")) >= WINDOW)
    return value


@examples(8)
@given(secret=environment_bytes(), appid=st.just(APPID.encode()) | environment_bytes())
def test_environment_values_that_are_not_utf8_keep_every_promise(
    cli: CLI, fake: FakeWeChat, secret: bytes, appid: bytes
) -> None:
    """WECHAT_APPSECRET and WECHAT_APPID may hold any bytes (a Latin-1 terminal, a copy
    and paste gone wrong): no crash, nothing unprintable shown, no piece of the secret."""
    fake.reset()
    fake.behaviour = (200, token_body("env_token"))
    env = child_env({b"WECHAT_APPSECRET": secret, b"WECHAT_APPID": appid})
    result = run_child(cli.argv((*FAST, "--no-cache", "--json"), base=True), env)
    # What the tool sees: Python decodes the environment as UTF-8, bad bytes as surrogates.
    seen = secret.decode("utf-8", "surrogateescape")
    check_result(result, seen, json_mode=True)
    if not SECRET_PATTERN.fullmatch(seen):  # stray bytes are never part of an AppSecret
        assert result.code == 2, result
        assert fake.requests == [], "a secret that is not one was sent"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@examples(4)
@given(answer=answers())
def test_a_full_disk_on_stdout_keeps_every_promise(
    cli: CLI, fake: FakeWeChat, answer: Answer
) -> None:
    """stdout on a full disk (/dev/full: every write fails): a run that had something to
    print exits 74, and says so on stderr, never with a traceback. As stdout shows
    nothing here, exit 0, or 1 to 3 with --json, would mean the failure went unseen."""
    fake.reset()
    fake.behaviour = (answer.status, answer.body)
    args = cli.argv((*FAST, "--no-cache", *answer.flags), base=True)
    env = child_env({b"WECHAT_APPSECRET": answer.secret.encode()})
    with open("/dev/full", "wb") as full:
        result = run_child(args, env, stdout=full)
    json_mode = "--json" in answer.flags
    check_promises(*result, answer.secret, json_mode, codes=STDOUT_EXIT_CODES)


# --- A proxy's password: shown nowhere, whatever it holds and wherever it is given --------

PROXY_SHAPES = [  # {pw}: the password; {port}: a proxy on 127.0.0.1 that wants another one
    "http://robot:{pw}@127.0.0.1:{port}",
    "robot:{pw}@127.0.0.1:{port}",  # no scheme: curl takes it as http://
    "socks5h://robot:{pw}@127.0.0.1:{port}",
    "http://robot:{pw}@127.0.0.1:{port}/",
    "HTTP://robot:{pw}@localhost:{port}",
    "http://robot:{pw}@[::1]:{port}",
    "http://robot:{pw}@127.0.0.1:99999",
    "http://robot:{pw}@127.0.0.1",
    "http://robot:{pw}@",
    "http://robot:{pw}",
]


@pytest.fixture(scope="module")
def wary_proxy() -> Iterator[str]:
    """A real proxy that wants a password nobody in these examples gives: it answers 407."""
    with running_proxy("--auth", "robot:not-this-one") as proxy:
        yield str(proxy.port)


@SHARED_FIXTURES
@given(
    password=passwords,
    shape=st.sampled_from(PROXY_SHAPES),
    where=st.sampled_from(["--proxy", "https_proxy", "config"]),
    flags=flag_sets,
)
@example(password="p@ss/word:12345678", shape=PROXY_SHAPES[0], where="--proxy", flags=())
@example(password="p@ss/word:12345678", shape=PROXY_SHAPES[1], where="config", flags=())
def test_a_proxy_password_is_never_shown(
    cli: CLI,
    fake: FakeWeChat,
    wary_proxy: str,
    tmp_path: Path,
    password: str,
    shape: str,
    where: str,
    flags: tuple[str, ...],
) -> None:
    """-v names the proxy, errors name it: the password in its URL is masked in each, with
    '@', '/' or ':' in it, with or without a scheme, and when the URL itself is refused."""
    fake.reset()
    url = argv_text(shape.replace("{port}", wary_proxy).replace("{pw}", password))
    # A short timeout: a socks5h:// URL makes libcurl wait for a SOCKS answer that this
    # HTTP proxy never gives (the run then fails on the timeout, which is named too).
    args = ["--retries", "0", "--timeout", "0.5", "--no-cache", "-v", *flags]
    env: dict[str, str | None] = {"https_proxy": None}
    config = tmp_path / "config.ini"
    config.unlink(missing_ok=True)
    if where == "--proxy":
        args += ["--proxy", url]
    elif where == "https_proxy":
        env["https_proxy"] = url
    else:
        if "\n" in url or "\r" in url:  # cannot be one value in an INI file
            return
        config.write_text(f"[wechat]\nproxy = {url}\n", encoding="utf-8")
        args += ["--config", str(config)]
    result = run_main(cli, args, env)
    check_promises(result.code, result.out, result.err, password, "--json" in args)
    assert result.code in (2, 3), result
    assert fake.requests == []  # the proxy said no, or there was none to ask

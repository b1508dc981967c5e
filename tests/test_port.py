"""fetch_token.py, the port of the PHP example, run as its readers run it: `python fetch_token.py`
in a folder holding its config.ini, against the fake WeChat with real TLS.

The CA, its file and the fake are conftest's; the runner is defined here. Most runs call
fetch_token.main() in this process, as the file runs it (measured by coverage, and fast); the
token as a reader prints it, the timeout, and the copy run alone run as a subprocess with a
timeout, so no test can hang. The masking promise is checked in-process with Hypothesis.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import certifi
import pycurl
import pytest
import trustme
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import fetch_token as port

from fake_wechat import APPID, ERRMSG, SECRET, FakeWeChat

PORT = Path(__file__).resolve().parent.parent / "fetch_token.py"
RUN_TIMEOUT = 20  # seconds; the port bounds itself well below this
CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
NOT_WECHAT = "hint: is api_base WeChat's? a Wi-Fi login or a proxy may be in the way: try a browser"


# -- fixtures: conftest's CA, its file and fake; a folder as a user sets one up ---------------


@pytest.fixture
def folder(tmp_path: Path, fake: FakeWeChat, ca_file: str) -> Path:
    """A folder as a user sets one up: config.ini (for the fake) and the CA bundle it names."""
    shutil.copy(ca_file, tmp_path / "fake-ca.pem")
    write_config(tmp_path, api_base=fake.base_url, ca_bundle="fake-ca.pem")
    return tmp_path


def write_config(folder: Path, **settings: str | None) -> None:
    """config.ini with the fake's account, then these settings; a value None drops the key."""
    values: dict[str, str | None] = {"appid": APPID, "appsecret": SECRET, **settings}
    lines = [
        "[wechat]",
        *(f"{key} = {value}" for key, value in values.items() if value is not None),
    ]
    (folder / "config.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")


# What the port reads from the environment (its account; libcurl's proxy settings): the runs
# below have none of these but the test's.
READ_FROM_ENVIRONMENT = ("WECHAT_APPID", "WECHAT_APPSECRET", "https_proxy", "HTTPS_PROXY")
READ_FROM_ENVIRONMENT += ("all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def run(
    folder: Path,
    *args: str,
    process: bool = False,
    python: str = sys.executable,
    script: Path = PORT,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`python fetch_token.py ARGS` in that folder, with no account or proxy but `env`'s:
    fetch_token.main() in this process, or with process=True the file run by `python`.

    Whatever it printed, the secret may not be in it, in any letter case."""
    if process:
        done = subprocess.run(
            [python, str(script), *args],
            cwd=folder,
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=RUN_TIMEOUT,
        )
    else:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            patch.setattr(sys, "argv", [str(script), *args])
            for name in READ_FROM_ENVIRONMENT:
                patch.delenv(name, raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = port.main()
        done = subprocess.CompletedProcess(sys.argv, code, out.getvalue(), err.getvalue())
    assert_no_secret(done.stdout, done.stderr)
    return done


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        assert SECRET.lower() not in output.lower()


# -- the token ----------------------------------------------------------------------------------


def test_prints_the_token_alone(folder: Path, fake: FakeWeChat) -> None:
    done = run(folder, process=True)  # as its readers run it
    assert (done.returncode, done.stdout, done.stderr) == (0, "fake_token_1\n", "")
    # One GET; an AppSecret's characters are the same URL-encoded, so it is sent as it is.
    [request] = fake.requests
    assert (request.method, request.path) == ("GET", "/cgi-bin/token")
    assert request.raw_query == f"grant_type=client_credential&appid={APPID}&secret={SECRET}"


def test_the_environment_overrides_config_ini(folder: Path, fake: FakeWeChat) -> None:
    write_config(
        folder,
        appid="your-appid-here",
        appsecret="your-appsecret-here",
        api_base=fake.base_url,
        ca_bundle="fake-ca.pem",
    )
    done = run(folder, WECHAT_APPID=APPID, WECHAT_APPSECRET=SECRET)
    assert (done.returncode, done.stdout, done.stderr) == (0, "fake_token_1\n", "")


# -- WeChat refuses: exit 1, its errcode and a hint ----------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "error", "hint"),
    [
        pytest.param(
            40164,
            "errcode 40164: invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7,"
            " not in whitelist rid: 1",
            "add this machine's public egress IP 203.0.113.7 to 'API IP 白名单' at "
            f"{CONSOLE} → 开发密钥",
            id="40164-ip-whitelist",
        ),
        pytest.param(
            40125,
            "errcode 40125: invalid appsecret",
            f"check or reset the AppSecret at {CONSOLE} → 开发密钥",
            id="40125-appsecret",
        ),
        pytest.param(
            40013, "errcode 40013: invalid appid", f"check the AppID at {CONSOLE}", id="40013-appid"
        ),
        pytest.param(
            -1,
            "errcode -1: system error",
            "WeChat is busy: wait a few seconds and try again",
            id="-1-busy",
        ),
        pytest.param(
            45009,
            "errcode 45009: reach max api daily quota limit",
            "look up this errcode in WeChat's 全局返回码说明",
            id="other-errcode",
        ),
    ],
)
def test_errcode(folder: Path, fake: FakeWeChat, errcode: int, error: str, hint: str) -> None:
    fake.behaviour = errcode
    done = run(folder)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [f"error: {error}", f"hint: {hint}"]
    assert len(fake.requests) == 1  # no retries


def test_the_secret_echoed_by_wechat_is_masked(folder: Path, fake: FakeWeChat) -> None:
    fake.behaviour = "echo-secret"
    done = run(folder)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        "error: errcode 40125: invalid appsecret *** (in capitals: ***)",
        f"hint: check or reset the AppSecret at {CONSOLE} → 开发密钥",
    ]
    assert_no_secret(done.stdout, done.stderr)


def test_control_characters_in_errmsg_are_shown_escaped(folder: Path, fake: FakeWeChat) -> None:
    fake.behaviour = "escapes"
    done = run(folder)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        r"error: errcode 40013: invalid \x1b[31mappid\x1b[0m\x07\r\nforged line",
        f"hint: check the AppID at {CONSOLE}",
    ]


# -- not a token: exit 3 ------------------------------------------------------------------------


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    folder: Path, fake: FakeWeChat
) -> None:
    write_config(folder, api_base=fake.base_url)  # ca_bundle unset: certifi's, lacking the fake's
    done = run(folder)
    assert (done.returncode, done.stdout) == (3, "")
    error, hint = done.stderr.splitlines()
    # libcurl words it by version: "SSL certificate problem: unable to get local issuer
    # certificate", or "SSL certificate OpenSSL verify result: unable to ... certificate (20)".
    assert re.fullmatch(
        r"error: TLS verification failed: SSL certificate .*"
        r"unable to get local issuer certificate.*",
        error,
    )
    assert hint == "hint: never turn verification off: someone on the path may be posing as WeChat"
    assert fake.requests == []  # the secret never left


def test_a_certificate_for_another_host_is_refused_before_anything_is_sent(
    folder: Path, ca: trustme.CA
) -> None:
    # From the trusted CA, but for another name: only SSL_VERIFYHOST stops this one.
    with FakeWeChat(ca.issue_cert("api.weixin.qq.com")) as impostor:
        write_config(folder, api_base=impostor.base_url, ca_bundle="fake-ca.pem")
        done = run(folder)
    assert (done.returncode, done.stdout) == (3, "")
    error, hint = done.stderr.splitlines()
    # libcurl's wording ("ipv4" or "IPv4") depends on its version.
    assert re.fullmatch(
        r"error: TLS verification failed: SSL: no alternative certificate subject name"
        r" matches target (?i:ipv4) address '127\.0\.0\.1'",
        error,
    )
    assert hint == "hint: never turn verification off: someone on the path may be posing as WeChat"
    assert impostor.requests == []


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        pytest.param("html", "error: the answer is a web page, not JSON", id="wifi-login-page"),
        pytest.param((200, b"not json"), "error: the answer is not JSON", id="not-json"),
        pytest.param("empty", "error: the answer is not JSON", id="empty"),
        pytest.param("502", "error: HTTP 502, not WeChat's answer", id="http-502"),
        pytest.param(
            "redirect", "error: HTTP 302, not WeChat's answer", id="redirect-not-followed"
        ),
        pytest.param("huge", "error: the answer is over 65536 bytes", id="huge"),
        pytest.param("huge-chunked", "error: the answer is over 65536 bytes", id="huge-chunked"),
        pytest.param(
            (200, b'{"expires_in": 7200}'),
            "error: the answer has no usable access_token",
            id="no-access-token",
        ),
        pytest.param(
            (200, b'{"access_token": 7}'),
            "error: the answer has no usable access_token",
            id="access-token-not-a-string",
        ),
        pytest.param(
            (200, b"[1, 2]"), "error: the answer has no usable access_token", id="json-list"
        ),
        pytest.param(  # printed, it would put the secret on stdout (or "***" as a token)
            (200, json.dumps({"access_token": SECRET.upper(), "expires_in": 7200}).encode()),
            "error: the answer has no usable access_token",
            id="access-token-is-the-secret",
        ),
        pytest.param(
            (200, b'{"access_token": "a b", "expires_in": 7200}'),
            "error: the answer has no usable access_token",
            id="access-token-with-a-space",
        ),
    ],
)
def test_not_a_token(
    folder: Path, fake: FakeWeChat, behaviour: str | tuple[int, bytes], error: str
) -> None:
    fake.behaviour = behaviour
    done = run(folder)
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.splitlines() == [error, NOT_WECHAT]
    assert "Hotel WiFi" not in done.stderr  # the page is named, not shown
    assert len(fake.requests) == 1  # one request: no retry, no redirect followed


def test_a_server_that_never_answers_is_cut_by_the_timeout(folder: Path, fake: FakeWeChat) -> None:
    write_config(folder, api_base=fake.base_url, ca_bundle="fake-ca.pem", timeout="0.5")
    fake.behaviour = "hang"
    started = time.monotonic()
    done = run(folder, process=True)
    assert time.monotonic() - started < 5
    assert (done.returncode, done.stdout) == (3, "")
    error, hint = done.stderr.splitlines()
    assert re.fullmatch(
        r"error: network: Operation timed out after \d+ milliseconds"
        r" with 0 bytes received \(curl error 28\)",
        error,
    )
    assert hint == "hint: check that this machine reaches api_base over https, or raise timeout"


# -- configuration: exit 2, nothing sent ---------------------------------------------------------

PLACEHOLDER_HINT = f"hint: cp config.ini.example config.ini; fill it in from {CONSOLE}"
NOT_A_SECRET = "error: appsecret: not 16 to 64 of A-Z a-z 0-9 - _"
NOT_A_SECRET_HINT = f"hint: copy it again: {CONSOLE} → 开发密钥"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            None,
            ["error: no appid: set WECHAT_APPID or [wechat] appid in config.ini", PLACEHOLDER_HINT],
            id="no-config-ini",
        ),
        pytest.param(
            {"appid": None},
            ["error: no appid: set WECHAT_APPID or [wechat] appid in config.ini", PLACEHOLDER_HINT],
            id="no-appid",
        ),
        pytest.param(
            {"appid": "your-appid-here"},
            ["error: appid is still your-appid-here", PLACEHOLDER_HINT],
            id="appid-placeholder",
        ),
        pytest.param(
            {"appsecret": "your-appsecret-here"},
            ["error: appsecret is still your-appsecret-here", PLACEHOLDER_HINT],
            id="appsecret-placeholder",
        ),
        pytest.param(
            {"appsecret": f'"{SECRET}"'},
            [
                "error: appsecret: spaces, quotes or odd characters",
                "hint: write it bare: WECHAT_APPSECRET or [wechat] appsecret in config.ini",
            ],
            id="quoted-appsecret",
        ),
        pytest.param(
            {"appsecret": f"{SECRET}  # my secret"},
            [
                "error: appsecret: spaces, quotes or odd characters",
                "hint: write it bare: WECHAT_APPSECRET or [wechat] appsecret in config.ini",
            ],
            id="comment-after-appsecret",
        ),
        pytest.param(
            {"appsecret": "Q7zXw9Vt+/&%=Q7zXw9Vt"},  # urlencode() would change these
            [NOT_A_SECRET, NOT_A_SECRET_HINT],
            id="appsecret-with-url-characters",
        ),
        pytest.param(
            {"appsecret": "Q7zXw9Vt\\Q7zXw9Vt"},
            [NOT_A_SECRET, NOT_A_SECRET_HINT],
            id="appsecret-with-a-backslash",
        ),
        pytest.param(
            {"appsecret": "Q7zXw9VtQ7zXw9V"},
            [NOT_A_SECRET, NOT_A_SECRET_HINT],
            id="appsecret-of-15-characters",
        ),
        pytest.param(
            {"appsecret": "Q7zXw9Vt" * 8 + "Q"},
            [NOT_A_SECRET, NOT_A_SECRET_HINT],
            id="appsecret-of-65-characters",
        ),
        pytest.param(
            {"appsecret": "Q7zXw9Vté中Q7zXw9Vt"},  # not ASCII: refused by the first check
            [
                "error: appsecret: spaces, quotes or odd characters",
                "hint: write it bare: WECHAT_APPSECRET or [wechat] appsecret in config.ini",
            ],
            id="appsecret-not-ascii",
        ),
        pytest.param(
            {"api_base": "http://127.0.0.1:1"},
            ["error: api_base must be one https:// URL", "hint: e.g. https://api.weixin.qq.com"],
            id="api-base-http",
        ),
        pytest.param(
            {"timeout": "ten"},
            [
                "error: timeout must be a number of seconds, at most 3600",
                "hint: e.g. timeout = 10",
            ],
            id="timeout-not-a-number",
        ),
        pytest.param(
            {"timeout": "0"},
            [
                "error: timeout must be a number of seconds, at most 3600",
                "hint: e.g. timeout = 10",
            ],
            id="timeout-zero",
        ),
    ],
)
def test_configuration_error(
    folder: Path, fake: FakeWeChat, config: dict[str, str | None] | None, expected: list[str]
) -> None:
    if config is None:
        (folder / "config.ini").unlink()
    else:
        write_config(folder, **{"api_base": fake.base_url, "ca_bundle": "fake-ca.pem", **config})
    done = run(folder)
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (2, "", expected)
    assert "Q7z" not in done.stderr  # nothing of a value refused as a secret
    assert fake.requests == []


@pytest.mark.parametrize(
    "secret",
    ["Q7zXw9Vt+/&%=Q7zXw9Vt", "Q7zXw9Vt\\Q7zXw9Vt", "Q7zXw9Vt~Q7zXw9Vt", "Q7zXw9VtQ7zXw9V"],
)
def test_a_secret_outside_the_alphabet_in_the_environment_is_refused(
    folder: Path, fake: FakeWeChat, secret: str
) -> None:
    done = run(folder, WECHAT_APPSECRET=secret)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"{NOT_A_SECRET}\n{NOT_A_SECRET_HINT}\n",
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    "secret",
    ["0123456789abcdef", "0123456789abcdef" * 4, "Ab-_" * 10 + "Z9c", "-_-_-_-_-_-_-_-_"],
)
def test_every_secret_of_the_alphabet_is_taken(folder: Path, fake: FakeWeChat, secret: str) -> None:
    """16 and 64 characters, WeCom's 43, only - and _: each is sent, and WeChat (the fake)
    says it is not the account's."""
    done = run(folder, WECHAT_APPSECRET=secret)
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (
        1,
        "",
        [
            "error: errcode 40125: invalid appsecret",
            f"hint: check or reset the AppSecret at {CONSOLE} → 开发密钥",
        ],
    )
    assert fake.requests[0].raw_query.endswith(f"&secret={secret}")


def test_a_missing_ca_bundle_is_a_configuration_error(folder: Path, fake: FakeWeChat) -> None:
    write_config(folder, api_base=fake.base_url, ca_bundle="no-such.pem")
    done = run(folder)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"error: ca_bundle: no file {folder.resolve() / 'no-such.pem'}",
        "hint: name a PEM file",
    ]


def test_a_config_ini_that_is_not_ini_is_not_quoted(folder: Path, fake: FakeWeChat) -> None:
    (folder / "config.ini").write_text(f"appsecret = {SECRET}\n", encoding="utf-8")  # no [wechat]
    done = run(folder)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "error: config.ini cannot be parsed",
        "hint: compare with config.ini.example",
    ]


def test_a_config_ini_saved_with_a_byte_order_mark_is_read(folder: Path, fake: FakeWeChat) -> None:
    """Notepad saves UTF-8 with a BOM: the file is read as it reads in the editor."""
    text = (folder / "config.ini").read_text(encoding="utf-8")
    (folder / "config.ini").write_text(text, encoding="utf-8-sig")
    done = run(folder)
    assert (done.returncode, done.stdout, done.stderr) == (0, "fake_token_1\n", "")


@pytest.mark.parametrize("args", [["--verbose"], ["-h"], ["extra", "args"]])
def test_arguments_are_refused(folder: Path, fake: FakeWeChat, args: list[str]) -> None:
    done = run(folder, *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "usage: python fetch_token.py  (no arguments; see its docstring)\n"
    assert fake.requests == []


# -- copied alone, it runs ------------------------------------------------------------------------


def importable_parts(module: ModuleType) -> list[Path]:
    """What `import module` needs: its file or package folder, and any *.libs folder beside it
    (auditwheel puts the wheel's bundled libcurl, OpenSSL... there)."""
    path = Path(module.__file__ or "")
    top = path.parent if path.name == "__init__.py" else path
    return [top, *top.parent.glob(f"{module.__name__}*.libs")]


def test_copied_alone_into_a_venv_with_only_pycurl_and_certifi(
    tmp_path: Path, fake: FakeWeChat, ca_file: str
) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(PORT, alone / "fetch_token.py")
    shutil.copy(ca_file, alone / "fake-ca.pem")
    write_config(alone, api_base=fake.base_url, ca_bundle="fake-ca.pem")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=RUN_TIMEOUT,
    ).stdout.strip()
    for part in [*importable_parts(pycurl), *importable_parts(certifi)]:
        (Path(site) / part.name).symlink_to(part, target_is_directory=part.is_dir())
    isolated = subprocess.run(
        [python, "-c", "import trustme"], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert "No module named 'trustme'" in isolated.stderr  # only what was put there
    done = run(alone, process=True, python=python, script=alone / "fetch_token.py")
    assert (done.returncode, done.stdout, done.stderr) == (0, "fake_token_1\n", "")


# -- the masking promise, for any errmsg ----------------------------------------------------------


def test_the_port_tested_in_process_is_the_file_readers_copy() -> None:
    assert Path(port.__file__ or "").resolve() == PORT


# A secret as the port accepts one: 16 to 64 of A-Z a-z 0-9 - _ (like the command's).
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
secrets = st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)
# Around it: text the secret cannot run into (no character of its alphabet): ASCII
# punctuation, Chinese, and control characters (escapes, line breaks) a server might send.
APART = [c for c in map(chr, range(0x20, 0x7F)) if c not in ALPHABET and c != "*"]
APART_PRINTABLE = [*APART, *"微信白名单→"]
CONTROLS = [*map(chr, range(0x20)), "\x7f", "\u2028"]
# And text of any kind, its alphabet too, which may hold a piece of the secret.
ANY_TEXT = st.text(st.sampled_from([*ALPHABET, *APART_PRINTABLE, *CONTROLS]), max_size=30)


# 200 examples in the "ci" profile, the "hunt" profile's 3000 under it (conftest.py): a pure
# function, so many examples cost little.
EXAMPLES = settings(max_examples=max(200, settings().max_examples), deadline=None)


def any_case(draw: st.DrawFn, text: str) -> str:
    """The text with each letter in upper or lower case, as Hypothesis picks."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def echoes(draw: st.DrawFn) -> tuple[str, str]:
    """(secret, an errmsg holding it whole, in any letter case, amid any text)."""
    secret = draw(secrets)
    parts = [draw(ANY_TEXT)]
    for _ in range(draw(st.integers(1, 4))):
        parts += [any_case(draw, secret), draw(ANY_TEXT)]
    return secret, "".join(parts)


@EXAMPLES
@given(echoes())
@example(("0123456789abcdef", "0123456789ABCDEF0123456789abcdef"))  # touching
@example(("aaaaaaaaaaaaaaaa", "a" + "A" * 16))  # found again one character on
def test_the_secret_in_any_letter_case_does_not_survive_masking(case: tuple[str, str]) -> None:
    secret, errmsg = case
    shown = port.mask(errmsg, secret)
    assert secret.lower() not in shown.lower()
    assert shown.isprintable()  # control characters are escaped


@st.composite
def echoes_apart(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """(secret, the texts around it, the secret as echoed each time): texts that hold no
    character of the secret's alphabet, so what mask() shows can be told exactly."""
    secret = draw(secrets)
    around = draw(st.lists(st.text(st.sampled_from(APART_PRINTABLE), max_size=20), min_size=2))
    return secret, around, [any_case(draw, secret) for _ in around[1:]]


@EXAMPLES
@given(echoes_apart())
def test_mask_shows_exactly_the_text_with_each_echo_as_stars(
    case: tuple[str, list[str], list[str]],
) -> None:
    secret, around, echoed = case
    errmsg = around[0] + "".join(e + text for e, text in zip(echoed, around[1:], strict=True))
    assert port.mask(errmsg, secret) == around[0] + "".join(f"***{text}" for text in around[1:])


@EXAMPLES
@given(secrets, st.text(st.sampled_from([*ALPHABET, *APART_PRINTABLE, " "]), max_size=60))
def test_printable_text_without_the_whole_secret_is_shown_unchanged(secret: str, text: str) -> None:
    assume(secret.lower() not in text.lower())
    assert port.mask(text, secret) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"secret={SECRET}!", "secret=***!"),
        (f"secret={SECRET.upper()} or {SECRET.lower()}", "secret=*** or ***"),
        (SECRET * 2, "******"),  # touching: each one masked
        (f"\x1b[2J{SECRET}\n", r"\x1b[2J***\n"),  # escaped, then masked
        # The port's promise is the whole secret: a piece of it, however long, is shown.
        (f"secret={SECRET[:31]}", f"secret={SECRET[:31]}"),
        (f"secret={SECRET[1:]}", f"secret={SECRET[1:]}"),
        ("%53%33cret_Value-0f9d8c7b6a5e4d3c2b1a", "%53%33cret_Value-0f9d8c7b6a5e4d3c2b1a"),
    ],
)
def test_mask_exactly(text: str, shown: str) -> None:
    assert port.mask(text, SECRET) == shown


def test_mask_without_a_secret_only_escapes() -> None:
    """Before the settings are read there is no secret: nothing is masked."""
    assert port.mask("a\x07b", "") == r"a\x07b"


@pytest.mark.parametrize("errcode", ["{" + SECRET + "}", "{0}", "{ip}"])
def test_an_errcode_that_looks_like_a_format_field_is_shown_as_it_is(
    folder: Path, fake: FakeWeChat, errcode: str
) -> None:
    """The hint names the errcode: it was a format string, and "{0}" or "{SECRET}" from the
    server raised IndexError or KeyError, a traceback holding the whole AppSecret."""
    fake.behaviour = json.dumps({"errcode": errcode, "errmsg": "x"}).encode()
    done = run(folder)
    shown = errcode.replace(SECRET, "***")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"error: errcode {shown}: x",
        "hint: look up this errcode in WeChat's 全局返回码说明",
    ]


def test_a_ca_bundle_path_that_holds_the_secret_is_masked(folder: Path, fake: FakeWeChat) -> None:
    write_config(folder, api_base=fake.base_url, ca_bundle=f"keys/{SECRET.lower()}.pem")
    done = run(folder)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"error: ca_bundle: no file {folder.resolve() / 'keys'}/***.pem",
        "hint: name a PEM file",
    ]


# -- under a Chinese locale, every message in Chinese ---------------------------------------------


def _templates(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> set[str]:
    """The templates an expression of the port can be: a literal, either branch of an `if`,
    HINTS.get()'s values and default, a local name's values, a module constant's (a template
    or a dict of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _templates(node.body, assigned) | _templates(node.orelse, assigned)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):  # HINTS.get(k, d)
        assert node.func.attr == "get", ast.unparse(node)
        return _templates(node.func.value, assigned) | _templates(node.args[1], assigned)
    assert isinstance(node, ast.Name), f"line {node.lineno}: which template is this?"
    if node.id in assigned:
        return set().union(*(_templates(value, assigned) for value in assigned[node.id]))
    value = getattr(port, node.id)
    return set(value.values()) if isinstance(value, dict) else {value}


def _assigned(function: ast.FunctionDef) -> dict[str, list[ast.expr]]:
    """Each local name of a function, and every value assigned to it (`a, b = x, y` too)."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=True))
                for name, value in pairs:
                    if isinstance(name, ast.Name):
                        assigned.setdefault(name.id, []).append(value)
    return assigned


def english_templates() -> set[str]:
    """Every English template the port prints: each Failure's error and hint, and say()'s
    own (the usage line); not the error and hint main() renders, which are Failure's."""
    found = set()
    for function in ast.parse(PORT.read_text(encoding="utf-8")).body:
        if not isinstance(function, ast.FunctionDef):
            continue
        assigned = _assigned(function)
        for call in ast.walk(function):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                if call.func.id == "Failure":
                    found |= _templates(call.args[1], assigned) | _templates(call.args[2], assigned)
                elif call.func.id == "say" and getattr(call.args[0], "id", "") not in assigned:
                    found |= _templates(call.args[0], assigned)
    return found


def test_every_english_message_of_the_port_has_a_chinese_one_and_back() -> None:
    english = english_templates()
    assert len(english) > 30  # the resolver found them, not none
    assert sorted(english - set(port.ZH)) == []
    assert sorted(set(port.ZH) - english) == []


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


# Three ASCII words in a row make an English phrase (as in test_messages.py).
ENGLISH = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?: [A-Za-z]+(?:'[a-z]+)?){2,}")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("english", sorted(port.ZH))
def test_a_chinese_message_of_the_port_has_the_same_fields_and_no_english(english: str) -> None:
    chinese = port.ZH[english]
    assert fields(chinese) == fields(english)
    text = re.sub(r"\{[^{}]*\}", " ", chinese)
    assert ENGLISH.findall(text) == []
    assert CJK.search(text), chinese


# libcurl's words: after the port's full-width colon, up to its full-width parenthesis
LIBCURL = r"(?<=\uff1a)[^\uff08]+"
CLOSED = "https://127.0.0.1:{closed_port}"  # a port that refuses connections


@pytest.mark.parametrize(
    ("config", "behaviour", "code", "outside"),
    [
        pytest.param(None, "ok", 2, "", id="no-config-ini"),
        pytest.param("appsecret = x", "ok", 2, "", id="config-ini-not-ini"),
        pytest.param({"appsecret": None}, "ok", 2, "", id="no-appsecret"),
        pytest.param({"appid": "your-appid-here"}, "ok", 2, "", id="appid-placeholder"),
        pytest.param({"appsecret": f'"{SECRET}"'}, "ok", 2, "", id="quoted-appsecret"),
        pytest.param({"appsecret": "Q7zXw9VtQ7zXw9V"}, "ok", 2, "", id="appsecret-15-characters"),
        pytest.param({"api_base": "http://127.0.0.1:1"}, "ok", 2, "", id="api-base-http"),
        pytest.param({"ca_bundle": "no-such.pem"}, "ok", 2, "", id="no-ca-bundle"),
        pytest.param({"timeout": "ten"}, "ok", 2, "", id="timeout-not-a-number"),
        *(
            pytest.param({}, errcode, 1, re.escape(ERRMSG[errcode]), id=str(errcode))
            for errcode in (40164, 40013, 40125, -1, 45009)
        ),
        pytest.param({"ca_bundle": None}, "ok", 3, LIBCURL, id="untrusted-certificate"),
        pytest.param({"api_base": CLOSED}, "ok", 3, LIBCURL, id="connection-refused"),
        pytest.param({}, "huge", 3, "", id="huge"),
        pytest.param({}, "502", 3, "", id="http-502"),
        pytest.param({}, "html", 3, "", id="web-page"),
        pytest.param({}, (200, b"not json"), 3, "", id="not-json"),
        pytest.param({}, (200, b'{"expires_in": 7200}'), 3, "", id="no-access-token"),
    ],
)
def test_under_a_chinese_locale_each_failure_is_told_in_chinese(
    folder: Path,
    fake: FakeWeChat,
    closed_port: int,
    config: dict[str, str | None] | str | None,
    behaviour: str | int | tuple[int, bytes],
    code: int,
    outside: str,
) -> None:
    """The error: and hint: lines in Chinese, with no English phrase but the text from outside
    (WeChat's errmsg, libcurl's message), quoted as it came."""
    if config is None:
        (folder / "config.ini").unlink()
    elif isinstance(config, str):
        (folder / "config.ini").write_text(config + "\n", encoding="utf-8")
    else:
        settings = {"api_base": fake.base_url, "ca_bundle": "fake-ca.pem", **config}
        api_base = (settings["api_base"] or "").format(closed_port=closed_port)
        write_config(folder, **{**settings, "api_base": api_base})
    fake.behaviour = behaviour
    done = run(folder, LANG="zh_CN.UTF-8")
    assert (done.returncode, done.stdout) == (code, "")
    error, hint = done.stderr.splitlines()
    assert (error[:7], hint[:6]) == ("error: ", "hint: ")
    error, quoted = re.subn(outside or "^$", " ", error[7:], count=1)
    assert quoted == bool(outside), done.stderr  # the errmsg, libcurl's words: as they came
    for text in (error, hint[6:]):
        assert CJK.search(text), done.stderr
        assert ENGLISH.findall(text) == [], done.stderr


def test_under_a_chinese_locale_the_usage_line_is_chinese(folder: Path) -> None:
    done = run(folder, "-h", LANG="zh_CN.UTF-8")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "用法：python fetch_token.py（不带参数；说明见文件开头的文档字符串）\n"


@pytest.mark.parametrize(
    "environ",
    [
        {"LC_ALL": "zh_CN.UTF-8", "LANG": "C.UTF-8"},
        {"LC_MESSAGES": "zh_TW.UTF-8", "LANG": "C"},
        {"LANGUAGE": "zh_CN:en", "LC_ALL": "C"},  # as gettext: LANGUAGE first, a list
    ],
)
def test_the_first_locale_variable_set_decides(
    folder: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert port.say(port.USAGE).startswith("用法：")
    monkeypatch.setenv("LANGUAGE", "en_US:en")  # LANGUAGE first: English again
    assert port.say(port.USAGE) == port.USAGE


def test_a_chinese_locale_on_a_console_that_cannot_show_chinese_gets_english(
    folder: Path,
) -> None:
    """English reads better than \\u escapes: Chinese only where stderr can show it."""
    usage = "usage: python fetch_token.py  (no arguments; see its docstring)\n"
    done = run(folder, "-h", process=True, LANG="zh_CN.UTF-8", PYTHONIOENCODING="ascii")
    assert (done.returncode, done.stderr) == (2, usage)
    done = run(folder, "-h", process=True, LANG="zh_CN.UTF-8", PYTHONIOENCODING="utf-8")
    assert done.stderr.startswith("用法：")

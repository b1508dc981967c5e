"""The fake as a program: the README's first command (--demo) and the fake to experiment with.

The demo and the served fake run as the user runs them, in a subprocess, from a folder
outside the project, so every path they print is absolute and can be asserted exactly.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import pytest

import fake_wechat
from conftest import COMMAND, OUTPUTS, ROOT
from fake_wechat import APPID, SECRET

FAKE = str(ROOT / "tests" / "fake_wechat.py")
SERVE_FAKE = shlex.join([sys.executable, FAKE])  # the command the demo says to run next
CLEAN_ENV = fake_wechat.clean_environ()


def _fake_program(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, FAKE, *args],
        cwd=cwd,
        env=CLEAN_ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _folder(out: str) -> str:
    """The fake's temporary folder, as printed."""
    found = re.search(r"(\S+/wechat_token-fake-[^/\s]+)/config\.ini", out)
    assert found, out
    return found.group(1)


@contextmanager
def _served(*args: str, cwd: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The fake served as a program, and what it printed before its first request.

    Whatever happens, the process is gone on exit: a test that fails cannot leave it running.
    """
    proc = _fake_program(*args, cwd=cwd)
    try:
        yield proc, _read_lines(proc, until="Ctrl-C stops it and deletes the folder.")
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def _read_lines(proc: subprocess.Popen[str], until: str) -> list[str]:
    """The lines it prints up to the one that contains `until`, read for at most 60 s."""
    timer = threading.Timer(60, proc.kill)  # a test that waits for a line must not hang
    timer.start()
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n")]
        while until not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"ended before printing {until!r}: {lines}"
            lines.append(line.rstrip("\n"))
        return lines
    finally:
        timer.cancel()


def _rest(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """What it prints until it ends (killed after `timeout` s), and its stderr.

    Not communicate(): that reads the pipe itself, and misses what readline() buffered.
    """
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        out = proc.stdout.read()
        err = proc.stderr.read()  # short: its pipe cannot fill up while stdout is read
        proc.wait(timeout=10)
        return out, err
    finally:
        timer.cancel()


def _served_header(url: str, folder: str, behaviour: str = "ok") -> list[str]:
    """What the served fake prints first, from a folder outside the project."""
    command = shlex.join([*COMMAND, "--config", f"{folder}/config.ini", "-v"])
    return [
        f"fake WeChat serving {url}, with a certificate from a throwaway CA",
        f"  its CA:    {folder}/fake-ca.pem",
        f"  config:    {folder}/config.ini (the fake account, this address, this CA)",
        f"  behaviour: {behaviour}",
        "",
        "In another terminal, from this folder:",
        f"  {command}",
        "",
        "Start it with --behaviour 40164 (or -1, 45009, html, hang, ...) to make it misbehave.",
        "Ctrl-C stops it and deletes the folder.",
    ]


def _demo(cwd: Path) -> tuple[int, str, str]:
    """The demo run to its end (within a minute): its exit code, stdout and stderr."""
    with _fake_program("--demo", cwd=cwd) as proc:
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()  # a no-op once it ended; else `with` would wait for it forever
    OUTPUTS.extend((out, err))
    return proc.returncode, out, err


def test_demo_shows_each_step_with_its_command(tmp_path: Path) -> None:
    code, out, err = _demo(tmp_path)
    assert (code, err) == (0, "")
    folder = _folder(out)
    run = shlex.join([*COMMAND, "--config", f"{folder}/config.ini"])
    lines = out.splitlines()
    assert re.fullmatch(
        r"A fake WeChat is serving https://127\.0\.0\.1:\d+, with a certificate from a"
        r" throwaway CA\.",
        lines[0],
    )
    # Its commands cannot be copied once it ends: it says so, and what to run instead.
    assert lines[1:7] == [
        f"{folder}/config.ini holds its account, address and CA.",
        "Each step runs the real wechat-token command against it.",
        "The commands below use this fake and folder, which are gone when the demo ends.",
        "For a fake that stays up, and a command to try against it, run:",
        f"  {SERVE_FAKE}",
        "",
    ]
    commands = [line for line in out.splitlines() if line.startswith("$ ")]
    assert commands[:4] == [
        f"$ {run} -v",
        f"$ {run} -v",
        f"$ {run} --json",
        f"$ {run} --no-cache",
    ]
    assert re.fullmatch(
        rf"\$ {re.escape(run)} --no-cache --api-base https://127\.0\.0\.1:\d+", commands[4]
    )
    assert re.findall(r"^\(exit .*\)$", out, flags=re.MULTILINE) == [
        "(exit 0)",
        "(exit 0; the fake got no request)",  # the cache
        "(exit 0)",
        "(exit 1)",
        "(exit 3; that server got no request)",  # refused before the URL was sent
    ]
    assert lines.count("fake_token_1") == 2
    assert f"* CA bundle: {folder}/fake-ca.pem" in lines
    assert any(line.startswith("* time since start: DNS ") for line in lines)
    answer = json.loads(next(line for line in lines if line.startswith("{")))
    assert (answer["access_token"], answer["cached"]) == ("fake_token_1", True)
    # the hint's wording is the tool's, tested there: here, that the demo shows it
    assert any(line.startswith("hint: add 203.0.113.7 to the IP whitelist (") for line in lines)
    assert (
        f"error: TLS: the certificate of 127.0.0.1 is not from a CA in {folder}/fake-ca.pem"
        " (untrusted CA); nothing was sent"
    ) in lines
    assert lines[-4:-2] == [
        "Every step went as expected. Next:",
        f"  {SERVE_FAKE}   serves a fake until Ctrl-C, to try things yourself",
    ]
    assert not os.path.exists(folder)


# Stand-ins for the tool that break what a step shows, so that the demo must say so.
ALWAYS_FETCHES = "import runpy, sys\n" + (
    "sys.argv.append('--no-cache')\n"
    "runpy.run_module('wechat_token', run_name='__main__', alter_sys=True)\n"
)
ALWAYS_SUCCEEDS = "print('fake_token_1')\n"


@pytest.mark.parametrize(
    ("stand_in", "notes", "verdict"),
    [
        # no cache: the second run asks the fake again
        (ALWAYS_FETCHES, "(exit 0; the fake got 1 request)", "Step 2 did not go as expected."),
        # no error and no TLS refusal: a demo that shows neither must fail
        (ALWAYS_SUCCEEDS, "(exit 0; expected 1)", "Step 4, 5 did not go as expected."),
    ],
    ids=["no-cache", "no-errors"],
)
def test_demo_says_when_a_step_goes_wrong(
    stand_in: str,
    notes: str,
    verdict: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = tmp_path / "fetch_token.py"
    script.write_text(stand_in, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with fake_wechat._Playground(command=[sys.executable, str(script)]) as playground:
        code = fake_wechat.demo(playground)
    out = capsys.readouterr().out
    OUTPUTS.append(out)
    assert code == 1
    assert notes in out.splitlines()
    assert out.splitlines()[-1] == verdict


def test_served_fake_prints_a_command_that_works_and_stops_cleanly(tmp_path: Path) -> None:
    """The command it prints works as printed; `kill` stops it as Ctrl-C does (Ctrl-C after
    requests: test_served_fake_logs_what_it_answered_to_each_kind_of_request)."""
    with _served("--behaviour", "-1", "--behaviour", "ok", cwd=tmp_path) as (proc, head):
        folder = _folder("\n".join(head))
        url = head[0].split()[3].rstrip(",")
        assert head == _served_header(url, folder, "-1 then ok")

        used = subprocess.run(
            shlex.split(head[6]),
            cwd=tmp_path,
            env=CLEAN_ENV,
            capture_output=True,
            text=True,
            timeout=30,
        )
        OUTPUTS.extend((used.stdout, used.stderr))
        assert (used.returncode, used.stdout) == (0, "fake_token_1\n")
        assert "* attempt 1 of 3 failed: errcode -1: system error" in used.stderr.splitlines()

        proc.send_signal(signal.SIGTERM)
        rest, err = _rest(proc, timeout=10)
    OUTPUTS.extend((rest, err))
    assert (proc.returncode, err) == (0, "")
    assert rest.splitlines() == [
        "fake WeChat got: GET /cgi-bin/token, answered errcode -1",
        "fake WeChat got: GET /cgi-bin/token, answered access_token fake_token_1",
        "stopped",
    ]
    assert not os.path.exists(folder)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--behaviour", "nope"],
            "argument --behaviour: 'nope' is neither an errcode nor a behaviour listed in --help",
        ),
        (
            ["--behaviour", ""],
            "argument --behaviour: '' is neither an errcode nor a behaviour listed in --help",
        ),
        (["--port", "70000"], "argument --port: '70000' is not a port number (0 to 65535)"),
        (["--port", "-1"], "argument --port: '-1' is not a port number (0 to 65535)"),
    ],
)
def test_bad_arguments_get_one_message_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        fake_wechat.main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.splitlines()[-1] == f"fake_wechat.py: error: {message}"


def test_a_port_in_use_gets_one_message_exit_2_and_no_folder_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert fake_wechat.main(["--port", str(port)]) == 2
    assert capsys.readouterr() == (
        "",
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n",
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "behaviour"),
    [
        ("-1", -1),  # an errcode
        ("40164", 40164),
        ("502", "502"),  # a behaviour's name wins: HTTP 502, not errcode 502
        ("hang", "hang"),
    ],
)
def test_behaviours_are_read_as_the_help_says(text: str, behaviour: object) -> None:
    assert fake_wechat._behaviour(text) == behaviour


@pytest.mark.parametrize(
    "args", [["--demo", "--behaviour", "40164"], ["--behaviour", "hang", "--demo"]]
)
def test_behaviour_with_demo_is_a_usage_error(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the demo sets the fake's behaviour for each step: a --behaviour would be ignored
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        fake_wechat.main(args)
    assert stop.value.code == 2
    assert capsys.readouterr() == (
        "",
        "usage: fake_wechat.py [-h] [--demo] [--port PORT] [--behaviour B]\n"
        "fake_wechat.py: error: argument --behaviour: not allowed with --demo,"
        " which sets the fake's behaviour for each step itself\n",
    )
    assert list(tmp_path.iterdir()) == []  # stopped before making its folder


def test_served_fake_logs_what_it_answered_to_each_kind_of_request(tmp_path: Path) -> None:
    behaviours = ["--behaviour", "45009", "--behaviour", "html", "--behaviour", "ok"]
    with _served(*behaviours, cwd=tmp_path) as (proc, head):
        folder = _folder("\n".join(head))
        url = head[0].split()[3].rstrip(",")
        assert head == _served_header(url, folder, "45009 then html then ok")
        tls = ssl.create_default_context(cafile=f"{folder}/fake-ca.pem")

        def ask(path: str, body: dict[str, str] | None = None) -> str:
            """The body it answers, or its HTTP status if not 200 (no proxy, fake's CA)."""
            https = http.client.HTTPSConnection(urlsplit(url).netloc, context=tls, timeout=10)
            try:
                if body is None:
                    https.request("GET", path)
                else:
                    headers = {"Content-Type": "application/json"}
                    https.request("POST", path, json.dumps(body), headers)
                response = https.getresponse()
                answer = response.read().decode()
                return answer if response.status == 200 else f"HTTP {response.status}"
            finally:
                https.close()

        account = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        token = "/cgi-bin/token?" + urlencode(account)
        api = "/cgi-bin/get_api_domain_ip?access_token="
        got = [
            ask(token),  # as told: 45009, then an HTML page
            ask(token),
            ask(token),  # then all is well: fake_token_1
            ask(api + "fake_token_1"),
            ask(token),  # fake_token_2 replaces fake_token_1
            ask(api + "fake_token_1"),  # so the API refuses the old one
            ask(api),
            ask("/cgi-bin/stable_token", account),  # fake_token_3
            ask("/cgi-bin/stable_token"),  # with GET
            ask(token.replace("secret=", "secret=wrong")),
            ask("/nowhere"),
        ]
        proc.send_signal(signal.SIGINT)
        rest, err = _rest(proc, timeout=10)
    OUTPUTS.extend((*got, rest, err))
    assert [json.loads(answer).get("errcode") for answer in got if answer.startswith("{")] == [
        45009,
        None,
        None,
        None,
        40001,
        41001,
        None,
        43002,
        40125,
    ]
    assert (proc.returncode, err) == (0, "")
    # each line says what that request got, never the query that holds the secret
    assert rest.splitlines() == [
        f"fake WeChat got: {line}"
        for line in [
            "GET /cgi-bin/token, answered errcode 45009",
            "GET /cgi-bin/token, answered HTTP 200 (html)",
            "GET /cgi-bin/token, answered access_token fake_token_1",
            "GET /cgi-bin/get_api_domain_ip, answered ip_list",
            "GET /cgi-bin/token, answered access_token fake_token_2",
            "GET /cgi-bin/get_api_domain_ip, answered errcode 40001",
            "GET /cgi-bin/get_api_domain_ip, answered errcode 41001",
            "POST /cgi-bin/stable_token, answered access_token fake_token_3",
            "GET /cgi-bin/stable_token, answered errcode 43002",
            "GET /cgi-bin/token, answered errcode 40125",
            "GET /nowhere, answered HTTP 404",
        ]
    ] + ["stopped"]


STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


class _Stopped(NamedTuple):
    code: int
    head: list[str]  # what it printed up to its folder's config.ini
    folder: str
    rest: str  # what it printed after the signal
    err: str


def _stopped_once_it_prints(*args: str, signum: int, cwd: Path, timeout: float) -> _Stopped:
    """Run the fake program, send `signum` as soon as it has printed its folder (the first
    flush), and collect what it printed. The process is gone on return, whatever happens."""
    proc = _fake_program(*args, cwd=cwd)
    try:
        head = _read_lines(proc, until="config.ini")
        folder = _folder("\n".join(head))
        proc.send_signal(signum)
        rest, err = _rest(proc, timeout=timeout)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    OUTPUTS.extend((*head, rest, err))
    return _Stopped(proc.returncode, head, folder, rest, err)


@pytest.mark.parametrize("signum", STOPS, ids=[s.name for s in STOPS])
def test_a_signal_as_soon_as_it_prints_stops_the_served_fake_and_deletes_its_folder(
    signum: signal.Signals, tmp_path: Path
) -> None:
    # Closing its terminal (SIGHUP) or `kill` (SIGTERM) cleans up as Ctrl-C does.
    stopped = _stopped_once_it_prints(signum=signum, cwd=tmp_path, timeout=10)
    url = stopped.head[0].split()[3].rstrip(",")
    assert (stopped.code, stopped.err) == (0, "")
    assert stopped.head + stopped.rest.splitlines() == [
        *_served_header(url, stopped.folder),
        "stopped",
    ]
    assert not os.path.exists(stopped.folder)


@pytest.mark.parametrize("signum", STOPS, ids=[s.name for s in STOPS])
def test_a_signal_during_the_demo_stops_it_and_deletes_its_folder(
    signum: signal.Signals, tmp_path: Path
) -> None:
    # Its folder is printed just before step 1 runs.
    stopped = _stopped_once_it_prints("--demo", signum=signum, cwd=tmp_path, timeout=30)
    assert (stopped.code, stopped.err) == (130, "interrupted\n")
    assert "Every step went as expected. Next:" not in stopped.rest
    assert not os.path.exists(stopped.folder)


@pytest.mark.parametrize(
    ("environ", "readme"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "README.zh-CN.md"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "README.zh-CN.md"),
        ({"LC_ALL": "", "LC_MESSAGES": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "README.md"),
        ({"LANG": "C.UTF-8"}, "README.md"),
        ({}, "README.md"),
    ],
)
def test_the_demo_points_at_the_readme_in_the_readers_language(
    environ: dict[str, str], readme: str
) -> None:
    assert fake_wechat._readme(environ)[0] == readme


# -- its own lines in the reader's language -------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_the_narration_has_the_same_keys_and_fields_in_both_languages() -> None:
    english, chinese = fake_wechat.NARRATION_EN, fake_wechat.NARRATION_ZH
    assert sorted(english) == sorted(chinese)
    assert {key: _fields(text) for key, text in chinese.items()} == {
        key: _fields(text) for key, text in english.items()
    }


# Three ASCII words in a row make an English phrase (as in test_messages.py).
ENGLISH = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?: [A-Za-z]+(?:'[a-z]+)?){2,}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _assert_chinese(lines: list[str]) -> None:
    for line in lines:
        assert CJK.search(line), line
        assert ENGLISH.findall(line) == [], line


@pytest.fixture
def chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake program, as _fake_program() starts it, under a Chinese locale."""
    monkeypatch.setitem(CLEAN_ENV, "LANG", "zh_CN.UTF-8")


@pytest.mark.usefixtures("chinese")
def test_under_a_chinese_locale_the_demo_narrates_in_chinese(tmp_path: Path) -> None:
    """Its own lines in Chinese; the tool's lines it shows are the tool's, not asserted here."""
    code, out, err = _demo(tmp_path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    titles = [line for line in lines if re.match(r"\d\. ", line)]
    notes = [line for line in lines if re.fullmatch(r"（.*）", line)]
    assert notes == [
        "（退出码 0）",
        "（退出码 0；模拟服务器没有收到请求）",
        "（退出码 0）",
        "（退出码 1）",
        "（退出码 3；那个服务器没有收到请求）",
    ]
    done = lines.index("每一步都符合预期。接下来：")
    next_steps = [line.rsplit("   ", 1)[1] for line in lines[done + 1 :]]
    assert lines[-1].startswith("  README.zh-CN.md ")
    assert (len(titles), len(next_steps)) == (5, 3)
    assert lines[5] == f"  {SERVE_FAKE}"
    _assert_chinese([*lines[:5], *titles, *notes, lines[done], *next_steps])


@pytest.mark.usefixtures("chinese")
def test_a_chinese_locale_on_a_console_that_cannot_show_chinese_gets_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the tool does: English, not a UnicodeEncodeError (nor \\u escapes)."""
    monkeypatch.setitem(CLEAN_ENV, "PYTHONIOENCODING", "ascii")
    code, out, err = _demo(tmp_path)
    assert (code, err) == (0, "")
    assert "\nEvery step went as expected. Next:\n" in out
    assert out.isascii()


@pytest.mark.usefixtures("chinese")
def test_under_a_chinese_locale_the_served_fake_narrates_in_chinese(tmp_path: Path) -> None:
    stopped = _stopped_once_it_prints(signum=signal.SIGTERM, cwd=tmp_path, timeout=10)
    assert (stopped.code, stopped.err) == (0, "")
    lines = stopped.head + stopped.rest.splitlines()
    command = shlex.join([*COMMAND, "--config", f"{stopped.folder}/config.ini", "-v"])
    assert (lines[6], lines[-1]) == (f"  {command}", "已停止")
    _assert_chinese([line for number, line in enumerate(lines) if line and number != 6])
    assert not os.path.exists(stopped.folder)


def test_under_a_chinese_locale_the_demo_says_in_chinese_when_a_step_goes_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "fetch_token.py"
    script.write_text(ALWAYS_SUCCEEDS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    with fake_wechat._Playground(command=[sys.executable, str(script)]) as playground:
        code = fake_wechat.demo(playground)
    out = capsys.readouterr().out
    OUTPUTS.append(out)
    assert code == 1
    assert "（退出码 0；应为 1）" in out.splitlines()
    assert out.splitlines()[-1] == "第 4、5 步没有按预期进行"

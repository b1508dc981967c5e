"""The fake as a program: the README's first command (--demo) and the fake to experiment with.

The demo and the served fake run as the user runs them, in a subprocess, from a folder
outside the project, so every path they print is absolute and can be asserted exactly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import fake_wechat
from conftest import OUTPUTS, ROOT, SCRIPT

FAKE = str(ROOT / "tests" / "fake_wechat.py")
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
    found = re.search(r"(\S+/fetch_token-fake-[^/\s]+)/config\.ini", out)
    assert found, out
    return found.group(1)


def test_demo_shows_each_step_with_its_command(tmp_path: Path) -> None:
    with _fake_program("--demo", cwd=tmp_path) as proc:
        out, err = proc.communicate(timeout=120)
    OUTPUTS.extend((out, err))
    assert (proc.returncode, err) == (0, "")
    folder = _folder(out)
    run = shlex.join([sys.executable, SCRIPT, "--config", f"{folder}/config.ini"])
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
    lines = out.splitlines()
    assert lines.count("fake_token_1") == 2
    assert f"* CA bundle: {folder}/fake-ca.pem" in lines
    assert any(line.startswith("* time since start: DNS ") for line in lines)
    answer = json.loads(next(line for line in lines if line.startswith("{")))
    assert (answer["access_token"], answer["cached"]) == ("fake_token_1", True)
    assert any(
        line.startswith("hint: add 203.0.113.7 to the IP whitelist (IP白名单) in 公众号后台")
        for line in lines
    )
    assert (
        f"error: TLS: the certificate of 127.0.0.1 is not from a CA in {folder}/fake-ca.pem"
        " (untrusted CA); nothing was sent"
    ) in lines
    assert lines[-4:-2] == [
        "Every step went as expected. Next:",
        f"  {sys.executable} {FAKE}   serves the fake until Ctrl-C, to try things yourself",
    ]
    assert not os.path.exists(folder)


# Stand-ins for fetch_token.py that break what a step shows, so that the demo must say so.
ALWAYS_FETCHES = "import runpy, sys\n" + (
    f"sys.argv.append('--no-cache')\nrunpy.run_path({SCRIPT!r}, run_name='__main__')\n"
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
    with fake_wechat._Playground(script=str(script)) as playground:
        code = fake_wechat.demo(playground)
    out = capsys.readouterr().out
    OUTPUTS.append(out)
    assert code == 1
    assert notes in out.splitlines()
    assert out.splitlines()[-1] == verdict


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_served_fake_prints_a_command_that_works_and_stops_cleanly(
    signum: int, tmp_path: Path
) -> None:
    with _fake_program("--behaviour", "-1", "--behaviour", "ok", cwd=tmp_path) as proc:
        timer = threading.Timer(60, proc.kill)  # a test that waits for a line must not hang
        timer.start()
        assert proc.stdout is not None
        head = []
        while not head or not head[-1].startswith("Ctrl-C"):
            head.append(proc.stdout.readline().rstrip("\n"))
        timer.cancel()
        folder = _folder("\n".join(head))
        command = shlex.join([sys.executable, SCRIPT, "--config", f"{folder}/config.ini", "-v"])
        assert head[3:7] == [
            "  behaviour: -1 then ok",
            "",
            "In another terminal, from this folder:",
            f"  {command}",
        ]

        used = subprocess.run(
            shlex.split(command),
            cwd=tmp_path,
            env=CLEAN_ENV,
            capture_output=True,
            text=True,
            timeout=30,
        )
        OUTPUTS.extend((used.stdout, used.stderr))
        assert (used.returncode, used.stdout) == (0, "fake_token_1\n")
        assert "* attempt 1 of 3 failed: errcode -1: system error" in used.stderr.splitlines()

        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=10)
    OUTPUTS.extend((rest, err))
    assert (proc.returncode, err) == (0, "")
    assert rest.splitlines() == [
        "fake WeChat got: GET /cgi-bin/token, answered -1",
        "fake WeChat got: GET /cgi-bin/token, answered ok",
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
    monkeypatch.setattr(fake_wechat.tempfile, "tempdir", str(tmp_path))
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

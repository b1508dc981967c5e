"""The shell recipes, run as bash runs them, against a fake WeChat that refuses.

README.md's recipes and docs/recipes.md ("In a shell script") say that `$(wechat-token)`
inside another command's arguments, or in `local t=$(wechat-token)`, hides a failure even
under `set -euo pipefail`: the script goes on, calls curl with an empty access_token and
exits 0. Here each pattern runs under `bash -euo pipefail` with `wechat-token` on PATH as a
wrapper that runs this package against the fake (errcode 40164), and `curl` as a stand-in
that only writes its arguments to a file: the wrong patterns reach it, the right ones stop
before it, with the tool's exit code and its error. The check script of docs/recipes.md
("Monitoring") runs here too: it alerts at once on refused, quota and tls, and on the other
kinds only when they repeat.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme

from conftest import OUTPUTS, ROOT
from fake_wechat import FakeWeChat

TIMEOUT = 30  # seconds for one script: a hang fails the test
API = "https://api.weixin.qq.com/cgi-bin/get_api_domain_ip?access_token="  # never reached

# The patterns as docs/recipes.md shows them (test_the_patterns_are_the_recipes_own checks).
WRONG = {
    "in-arguments": f'curl -sS "{API}$(wechat-token)"\n',
    "local-assignment": (
        f'send() {{\n    local t=$(wechat-token)\n    curl -sS "{API}$t"\n}}\nsend\n'
    ),
}
RIGHT = {
    "or-exit": f'TOKEN=$(wechat-token) || exit 1\ncurl -sS "{API}$TOKEN"\n',
    "local-then-assign": (
        f'send() {{\n    local t\n    t=$(wechat-token)\n    curl -sS "{API}$t"\n}}\nsend\n'
    ),
}


class Done(NamedTuple):
    code: int
    out: str
    err: str


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def _wrapper(path: Path, fake: FakeWeChat, cacert: str) -> None:
    """`wechat-token`: this package, against the fake, as the command runs it."""
    argv = [sys.executable, "-m", "wechat_token", "--api-base", fake.base_url, "--cacert", cacert]
    _executable(path, f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')


def _environ(path: str, home: Path) -> dict[str, str]:
    """The test's environment (the fake's account, from `env`), messages in English, a
    cache of its own under `home`, and `path` first on PATH."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")
    }
    environ.update(
        LANG="C.UTF-8",
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        PATH=os.pathsep.join((path, environ.get("PATH", ""))),
    )
    return environ


def _run(argv: list[str], cwd: Path, environ: dict[str, str]) -> Done:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    OUTPUTS.extend((done.stdout, done.stderr))  # the secret guard reads these
    return Done(done.returncode, done.stdout, done.stderr)


# --- `$(wechat-token)` in a shell script ---------------------------------------------------


class Shell(NamedTuple):
    folder: Path
    bin: Path  # wechat-token and the stand-in curl
    curl_log: Path  # curl's arguments, one a line, if it was called

    def run(self, name: str, argv: list[str]) -> Done:
        """`argv` in a folder of its own, with a cache of its own: every run asks the fake."""
        home = self.folder / name
        home.mkdir()
        return _run(argv, home, _environ(str(self.bin), home))

    def bash(self, name: str, script: str) -> Done:
        path = self.folder / f"{name}.sh"
        path.write_text(script, encoding="utf-8")
        return self.run(name, ["bash", "-euo", "pipefail", str(path)])


@pytest.fixture
def shell(fake: FakeWeChat, ca_file: str, env: pytest.MonkeyPatch, tmp_path: Path) -> Shell:
    fake.behaviour = 40164  # this machine's IP is not on the whitelist: exit 1
    folder = tmp_path / "shell"
    log = folder / "curl.log"
    _wrapper(folder / "bin" / "wechat-token", fake, ca_file)
    _executable(
        folder / "bin" / "curl", f'#!/bin/sh\nprintf "%s\\n" "$@" >> {shlex.quote(str(log))}\n'
    )
    return Shell(folder, folder / "bin", log)


def _tool_alone(shell: Shell) -> Done:
    """What `wechat-token` itself prints and exits with, run with no script around it."""
    alone = shell.run("alone", ["wechat-token"])
    assert alone.code == 1
    assert alone.out == ""
    assert alone.err.startswith("error: errcode 40164: ")
    assert "\nhint: " in alone.err
    return alone


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_pattern_sends_an_empty_token_and_exits_0(
    shell: Shell, fake: FakeWeChat, name: str
) -> None:
    alone = _tool_alone(shell)
    done = shell.bash(name, WRONG[name])
    assert done == Done(0, "", alone.err)  # the tool's error, and the script carried on
    assert shell.curl_log.read_text(encoding="utf-8") == f"-sS\n{API}\n"  # access_token=
    assert len(fake.requests) == 2  # the tool ran once in the script


@pytest.mark.parametrize("name", RIGHT)
def test_a_right_pattern_stops_before_curl(shell: Shell, fake: FakeWeChat, name: str) -> None:
    alone = _tool_alone(shell)
    done = shell.bash(name, RIGHT[name])
    assert done == Done(1, "", alone.err)  # the tool's exit code and error, nothing more
    assert not shell.curl_log.exists()
    assert len(fake.requests) == 2


def test_the_patterns_are_the_recipes_own() -> None:
    """The patterns run here are the ones the recipes show, word for word."""
    recipes = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert all(script in recipes for script in (*WRONG.values(), *RIGHT.values()))
    assert RIGHT["or-exit"] in (ROOT / "README.md").read_text(encoding="utf-8")


# --- The monitoring check -------------------------------------------------------------------


def _check_script() -> str:
    """docs/recipes.md's check script: the bash block of its Monitoring section."""
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    section = text.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    (script,) = re.findall(r"^```sh\n(#!/bin/bash\n.*?)^```", section, flags=re.M | re.S)
    return str(script)


class Check(NamedTuple):
    app: Path  # the script, its state file, .venv/bin/wechat-token
    environ: dict[str, str]

    def run(self) -> Done:
        return _run(["bash", str(self.app / "check-token.sh")], self.app, self.environ)

    def failures(self) -> str | None:
        state = self.app / "check-token.failures"
        return state.read_text(encoding="utf-8") if state.exists() else None


def _check(fake: FakeWeChat, cacert: str, tmp_path: Path) -> Check:
    """The check where the recipe puts it: beside config.ini and .venv, here /srv/app."""
    app = tmp_path / "srv" / "app"
    _wrapper(app / ".venv" / "bin" / "wechat-token", fake, cacert)
    _executable(app / "check-token.sh", _check_script())
    # The same cache for every run, as for a user's programs; the fake's account from `env`
    return Check(app, _environ(os.path.dirname(sys.executable), tmp_path / "home"))


def _alert(done: Done, head: str) -> dict[str, object]:
    """The alert's JSON, after checking the run: exit 1, stdout `head` then the JSON."""
    assert (done.code, done.err) == (1, "")
    assert done.out.startswith(head), done.out
    return dict(json.loads(done.out[len(head) :]))


@pytest.mark.parametrize(("behaviour", "kind"), [(40164, "refused"), (45009, "quota")])
def test_the_check_alerts_at_once_on_what_will_not_pass(
    fake: FakeWeChat,
    ca_file: str,
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    behaviour: int,
    kind: str,
) -> None:
    check = _check(fake, ca_file, tmp_path)
    fake.behaviour = behaviour
    answer = _alert(check.run(), f"wechat-token: {kind}: ")
    assert (answer["kind"], answer["errcode"]) == (kind, behaviour)
    assert check.failures() == "1\n"


def test_the_check_alerts_at_once_on_a_certificate_refused(
    fake: FakeWeChat, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A certificate from a CA not trusted: a proxy that re-signs, or an impostor."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    check = _check(fake, str(other_ca), tmp_path)
    answer = _alert(check.run(), "wechat-token: tls: ")
    assert answer["kind"] == "tls"
    assert fake.requests == []  # refused before anything was sent


def test_the_check_alerts_on_the_rest_when_repeated(
    fake: FakeWeChat, ca_file: str, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    check = _check(fake, ca_file, tmp_path)
    fake.behaviour = "html"  # a Wi-Fi login page: it may pass by itself
    for failures in (1, 2):
        assert check.run() == Done(0, "", "")
        assert check.failures() == f"{failures}\n"
    answer = _alert(check.run(), "wechat-token: response, 3 runs in a row: ")
    assert answer["kind"] == "response"
    fake.behaviour = "ok"
    assert check.run() == Done(0, "", "")
    assert check.failures() is None  # a token: the count starts again
    fake.behaviour = "html"
    assert check.run() == Done(0, "", "")  # the cached token: no request, nothing to report
    assert len(fake.requests) == 4

"""Every README block meant to run runs here, against the fake; the two READMEs match.

How a block runs (README.md, "Development", says the same for readers):
- ```python is executed, ```sh runs with bash, and in ```console each `$ ` line runs and
  what it prints (stdout and stderr, in order) is compared with the lines under it.
- Each block starts afresh, in a folder laid out as after "Use it with a real account":
  fetch_token.py and a config.ini for the fake's account in ~/app, WECHAT_APPID and
  WECHAT_APPSECRET set, a home folder of its own (so an empty cache), `python` on PATH.
- WeChat's two domains, in the block and in that folder's copy of fetch_token.py, become
  the addresses of two fakes; certifi's bundle (a copy of certifi first on PYTHONPATH),
  curl's, and the CA path in the block trust the fakes' throwaway CA.
- `<!-- fake: JSON -->` before a block sets the first fake's behaviour for the block;
  `<!-- not run: why -->` marks an illustration, which is skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme

from conftest import OUTPUTS, ROOT, SCRIPT
from fake_wechat import APPID, SECRET, FakeWeChat, certifi_trusting

READMES = ("README.md", "README.zh-CN.md")
RUNNABLE = ("python", "sh", "console")
WECHAT = {"https://api.weixin.qq.com": 0, "https://api2.weixin.qq.com": 1}  # -> which fake
PROXY_CA = "/etc/ssl/certs/corporate-proxy-ca.pem"  # the recipe's CA path -> the fake's CA
TIMEOUT = 30  # seconds for a whole block
# How README transcripts show what differs on each run (the actual output is mapped to it).
SHOWN_PORTS = ("8443", "8444")
SHOWN_HOME = "/home/me"
SHOWN_CERTIFI = "/home/me/app/.venv/lib/python3.12/site-packages"


class Block(NamedTuple):
    readme: str
    line: int  # of the opening fence, counted from 1
    lang: str
    text: str
    not_run: str | None  # why not, for an illustration
    fake: str | None  # the JSON of <!-- fake: ... -->

    def __str__(self) -> str:
        return f"{self.readme}:{self.line} ({self.lang})"


def parse(readme: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a README, and its headings as (level, text)."""
    lines = (ROOT / readme).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    directives: dict[str, str] = {}
    number = 0
    while number < len(lines):
        line = lines[number]
        fence = re.fullmatch(r"( *)```(\S*)\s*", line)
        if fence:
            indent, start = len(fence[1]), number
            body = []
            number += 1
            while lines[number].strip() != "```":  # an IndexError: a fence left open
                body.append(lines[number][indent:])
                number += 1
            text = "\n".join(body) + "\n"
            not_run, fake = directives.get("not run"), directives.get("fake")
            blocks.append(Block(readme, start + 1, fence[2], text, not_run, fake))
            directives = {}
        elif directive := re.fullmatch(r"\s*<!-- (not run|fake): (.+) -->", line):
            directives[directive[1]] = directive[2]
        elif heading := re.match(r"(#+) (.*)", line):
            headings.append((len(heading[1]), heading[2]))
        elif line.strip():
            directives = {}  # a directive belongs to the block right below it
        number += 1
    return blocks, headings


def runnable(readme: str) -> list[Block]:
    return [block for block in parse(readme)[0] if block.not_run is None]


# --- The sandbox: a folder as after setup, and two fakes in WeChat's place --------------


class Sandbox(NamedTuple):
    home: Path
    app: Path
    env: dict[str, str]
    fakes: tuple[FakeWeChat, FakeWeChat]
    ca_file: str
    certifi_folder: str

    def substitute(self, text: str) -> str:
        """WeChat's domains become the fakes' addresses; the proxy's CA becomes theirs."""
        for domain, which in WECHAT.items():
            text = text.replace(domain, self.fakes[which].base_url)
        return text.replace(PROXY_CA, self.ca_file)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv,
            cwd=self.app,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        OUTPUTS.extend((done.stdout, done.stderr))  # the secret guard reads these
        return done

    def shown(self, output: str) -> str:
        """Actual output as README transcripts show it: fixed ports and paths."""
        for fake, port in zip(self.fakes, SHOWN_PORTS, strict=True):
            output = output.replace(fake.base_url.rsplit(":", 1)[1], port)
        output = output.replace(self.certifi_folder, SHOWN_CERTIFI)
        return output.replace(str(self.home), SHOWN_HOME)

    def errcodes(self) -> list[int]:
        return [code for fake in self.fakes for code in fake.errcodes]

    def requests(self) -> int:
        return sum(len(fake.requests) for fake in self.fakes)


@pytest.fixture(scope="module")
def backup_fake(ca: trustme.CA) -> Iterator[FakeWeChat]:
    """The second fake, in api2.weixin.qq.com's place."""
    with FakeWeChat(ca.issue_cert("127.0.0.1", "localhost")) as server:
        yield server


@pytest.fixture(scope="module")
def certifi_folder(ca_file: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return certifi_trusting(ca_file, str(tmp_path_factory.mktemp("certifi")))


@pytest.fixture
def sandbox(
    fake: FakeWeChat, backup_fake: FakeWeChat, ca_file: str, certifi_folder: str, tmp_path: Path
) -> Iterator[Sandbox]:
    home = tmp_path / "home"
    app = home / "app"
    app.mkdir(parents=True)
    backup_fake.reset()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WECHAT_")
        and not name.lower().endswith("_proxy")
        and name not in ("XDG_CACHE_HOME", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR")
    }
    env.update(
        HOME=str(home),
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=certifi_folder,
        WECHAT_APPID=APPID,
        WECHAT_APPSECRET=SECRET,
        CURL_CA_BUNDLE=ca_file,
        SSL_CERT_FILE=ca_file,
    )
    box = Sandbox(home, app, env, (fake, backup_fake), ca_file, certifi_folder)
    script = Path(SCRIPT).read_text(encoding="utf-8")
    assert all(domain in script for domain in WECHAT)  # else the copy would reach nothing
    (app / "fetch_token.py").write_text(box.substitute(script), encoding="utf-8")
    config = app / "config.ini"
    config.write_text(f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\n", encoding="utf-8")
    config.chmod(0o600)
    # The recipes' .venv/bin/python: this Python, the one with pycurl and certifi.
    (app / ".venv" / "bin").mkdir(parents=True)
    venv_python = app / ".venv" / "bin" / "python"
    venv_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    venv_python.chmod(0o755)
    yield box
    backup_fake.reset()


def run_block(block: Block, box: Sandbox) -> None:
    if block.fake is not None:
        box.fakes[0].behaviour = json.loads(block.fake)
    text = box.substitute(block.text)
    if block.lang == "console":
        run_transcript(text, box)
        return
    name, argv = {
        "python": ("block.py", [sys.executable, "block.py"]),
        "sh": ("block.sh", ["bash", "-euo", "pipefail", "block.sh"]),
    }[block.lang]
    (box.app / name).write_text(text, encoding="utf-8")
    done = box.run(argv)
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    assert box.errcodes() == []  # no API call refused, no token request refused


def transcript(text: str) -> list[tuple[str, str]]:
    """A console block as (command, what it printed) pairs."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("$ "):
            pairs.append((line[2:].rstrip("\n"), ""))
        else:
            assert pairs, f"output before the first command: {line!r}"
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + line)
    return pairs


_MARK = "@@@ next command @@@"
# What changes on each run, in the transcript and in the actual output alike.
_VARYING = [
    (re.compile(r"\d+\.\d ms"), "N ms"),
    (re.compile(r'"(expires_in|expires_at)": \d+'), r'"\1": N'),
    (re.compile(r"valid for \d+ s more"), "valid for N s more"),
]


def varying(text: str) -> str:
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


def run_transcript(text: str, box: Sandbox) -> None:
    """Run the commands in one shell (so variables carry over) and compare their output."""
    pairs = transcript(text)
    script = "".join(f"echo '{_MARK}'\n{command}\n" for command, _ in pairs)
    (box.app / "transcript.sh").write_text(script, encoding="utf-8")
    done = box.run(["bash", "-c", "exec 2>&1; . ./transcript.sh"])
    outputs = box.shown(done.stdout).split(_MARK + "\n")[1:]
    assert len(outputs) == len(pairs), done.stdout
    for (command, expected), actual in zip(pairs, outputs, strict=True):
        assert varying(actual) == varying(expected), f"$ {command}"


# --- The tests -------------------------------------------------------------------------


def _ids(blocks: list[Block]) -> list[str]:
    return [str(block) for block in blocks]


ALL_RUNNABLE = [block for readme in READMES for block in runnable(readme)]


@pytest.mark.parametrize("block", ALL_RUNNABLE, ids=_ids(ALL_RUNNABLE))
def test_readme_block_runs(block: Block, sandbox: Sandbox) -> None:
    run_block(block, sandbox)
    assert sandbox.requests() >= 1  # it reached a fake: the substitution took


@pytest.mark.parametrize("readme", READMES)
def test_every_block_runs_or_says_why_not(readme: str) -> None:
    blocks, _ = parse(readme)
    text = (ROOT / readme).read_text(encoding="utf-8")
    assert len(blocks) * 2 == len(re.findall(r"^ *```", text, flags=re.MULTILINE))
    unmarked = [str(b) for b in blocks if b.not_run is None and b.lang not in RUNNABLE]
    assert unmarked == [], "mark illustrations with <!-- not run: why -->"
    assert len(runnable(readme)) >= 10


def _without_comments(block: Block) -> str:
    """A runnable block's code, whatever language its comments are in."""
    lines = []
    for line in block.text.splitlines():
        if block.lang != "console" or line.startswith("$ "):
            line = re.sub(r"(^|\s)#.*", "", line).rstrip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def test_the_chinese_readme_has_the_same_sections_and_blocks() -> None:
    (en_blocks, en_headings), (zh_blocks, zh_headings) = parse(READMES[0]), parse(READMES[1])
    assert [level for level, _ in zh_headings] == [level for level, _ in en_headings]

    def shape(blocks: list[Block]) -> list[tuple[str, bool, str | None]]:
        return [(b.lang, b.not_run is None, b.fake) for b in blocks]

    assert shape(zh_blocks) == shape(en_blocks)
    for en, zh in zip(en_blocks, zh_blocks, strict=True):
        if en.not_run is None:
            assert _without_comments(zh) == _without_comments(en), f"{zh} differs from {en}"


def test_each_readme_links_to_the_other() -> None:
    en, zh = ((ROOT / name).read_text(encoding="utf-8") for name in READMES)
    assert "](README.zh-CN.md)" in en.split("\n## ")[0]
    assert "](README.md)" in zh.split("\n## ")[0]


def test_ci_runs_the_first_two_commands_word_for_word() -> None:
    first = parse(READMES[0])[0][0]
    assert ".ci/run" in (first.not_run or "")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = first.text.splitlines()
    assert len(commands) == 2
    assert all(command in ci for command in commands)
    assert commands[1].endswith("-m pytest")  # the test command


# --- The minimal version: what it does when things go wrong ------------------------------


def _minimal(readme: str) -> Block:
    (block,) = [b for b in runnable(readme) if "def fetch_access_token" in b.text]
    return block


def test_minimal_version_is_the_same_in_both_readmes() -> None:
    assert _without_comments(_minimal(READMES[0])) == _without_comments(_minimal(READMES[1]))


def test_minimal_version_raises_wechats_errcode(sandbox: Sandbox) -> None:
    sandbox.fakes[0].behaviour = 40164
    (sandbox.app / "minimal.py").write_text(sandbox.substitute(_minimal(READMES[0]).text))
    done = sandbox.run([sys.executable, "minimal.py"])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1] == (
        "RuntimeError: WeChat errcode 40164: "
        "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 1"
    )


def test_minimal_version_refuses_a_certificate_its_cas_do_not_vouch_for(
    sandbox: Sandbox,
) -> None:
    impostor_ca = trustme.CA()
    with FakeWeChat(impostor_ca.issue_cert("127.0.0.1", "localhost")) as impostor:
        code = _minimal(READMES[0]).text.replace("https://api.weixin.qq.com", impostor.base_url)
        (sandbox.app / "minimal.py").write_text(code)
        done = sandbox.run([sys.executable, "minimal.py"])
        assert impostor.requests == []  # refused in the handshake: the secret never sent
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1].startswith("pycurl.error: (60, ")


def test_transcript_comparison_can_fail(sandbox: Sandbox) -> None:
    """The transcript check is not vacuous: a wrong token in a transcript fails it."""
    with pytest.raises(AssertionError, match=r"\$ python fetch_token.py"):
        run_transcript("$ python fetch_token.py\nfake_token_2\n", sandbox)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@pytest.mark.parametrize("readme", READMES)
def test_every_link_to_a_section_finds_it(readme: str) -> None:
    anchors = {_slug(text) for _, text in parse(readme)[1]}
    text = (ROOT / readme).read_text(encoding="utf-8")
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links  # the test reads them
    assert sorted(set(links) - anchors) == []


# --- The cron recipe, run as cron runs it ------------------------------------------------


def _cron_script(readme: str) -> Block:
    (block,) = [b for b in runnable(readme) if b.text.startswith("#!/bin/sh\n")]
    return block


@pytest.mark.skipif(not os.path.exists("/usr/bin/env"), reason="needs env -i")
@pytest.mark.parametrize("readme", READMES)
def test_the_cron_recipe_works_as_cron_runs_it(readme: str, sandbox: Sandbox) -> None:
    """cron gives a minimal PATH, no shell variables, and the home folder as the current
    one: the recipe found no `python`, and a failure left an empty token.txt.new."""
    script = sandbox.app / "refresh-token.sh"
    script.write_text(sandbox.substitute(_cron_script(readme).text), encoding="utf-8")
    script.chmod(0o755)
    # No PYTHONPATH under cron, so certifi's bundle does not trust the fakes: the config
    # names their CA, as a config behind a re-signing proxy would.
    config = sandbox.app / "config.ini"
    config.write_text(config.read_text() + f"ca_bundle = {sandbox.ca_file}\n")
    cron = ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", f"HOME={sandbox.home}", "SHELL=/bin/sh"]

    def run() -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*cron, str(script)],
            cwd=sandbox.home,  # cron starts jobs in the home folder
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        OUTPUTS.extend((done.stdout, done.stderr))
        return done

    done = run()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    token = sandbox.app / "token.txt"
    assert token.read_text() == "fake_token_1\n"
    assert oct(token.stat().st_mode & 0o777) == oct(0o600)

    sandbox.fakes[0].behaviour = 40164  # refused: the old token stays, nothing is left over
    config.write_text(config.read_text() + "cache_file = no-cache-here/token.json\n")
    done = run()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: errcode 40164: ")
    assert token.read_text() == "fake_token_1\n"
    assert sorted(p.name for p in sandbox.app.iterdir() if p.name.startswith("token")) == [
        "token.txt"
    ]


@pytest.mark.skipif(not os.path.exists("/usr/bin/env"), reason="needs env -i")
def test_the_cron_recipe_leaves_nothing_behind_when_killed(sandbox: Sandbox) -> None:
    """A job killed mid-request (cron's own timeout, a reboot) left an empty token.txt.new."""
    import signal
    import time

    script = sandbox.app / "refresh-token.sh"
    script.write_text(sandbox.substitute(_cron_script(READMES[0]).text), encoding="utf-8")
    script.chmod(0o755)
    config = sandbox.app / "config.ini"
    config.write_text(config.read_text() + f"ca_bundle = {sandbox.ca_file}\n")
    (sandbox.app / "token.txt").write_text("old_token\n")
    sandbox.fakes[0].behaviour = "hang"
    cron = ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", f"HOME={sandbox.home}", "SHELL=/bin/sh"]
    with subprocess.Popen(
        [*cron, str(script)],
        cwd=sandbox.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as cron gives each job
    ) as job:
        try:
            deadline = time.monotonic() + TIMEOUT
            while not sandbox.fakes[0].requests and time.monotonic() < deadline:
                time.sleep(0.02)  # until the request is under way, the new file open
            assert (sandbox.app / "token.txt.new").exists()
            os.killpg(job.pid, signal.SIGTERM)
            out, err = job.communicate(timeout=TIMEOUT)
        finally:
            job.kill()
    OUTPUTS.extend((out, err))
    assert job.returncode != 0
    assert (sandbox.app / "token.txt").read_text() == "old_token\n"
    assert not (sandbox.app / "token.txt.new").exists()

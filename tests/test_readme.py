"""Every documented block meant to run runs here, against the fake; the translations match.

The documents are README.md, README.zh-CN.md and docs/*.md. How a block runs
(docs/development.md says the same for readers):
- ```python is executed, ```sh runs with bash, and in ```console each `$ ` line runs and
  what it prints (stdout and stderr, in order) is compared with the lines under it.
- Each block starts afresh, in a folder laid out as after "Use it with a real account":
  fetch_token.py and a config.ini for the fake's account in ~/app, WECHAT_APPID and
  WECHAT_APPSECRET set, a home folder of its own (so an empty cache), and `python`,
  `wechat-token` and ~/app/.venv/bin/{python,wechat-token} on PATH.
- WeChat's two domains become the addresses of two fakes: in the block, in that folder's
  copy of fetch_token.py, and in wechat_token/endpoints.py of a copy of the package that
  comes first on PYTHONPATH. certifi's bundle (a copy of certifi, also on PYTHONPATH),
  curl's, and the CA path in the block trust the fakes' throwaway CA.
- `<!-- fake: JSON -->` before a block sets the first fake's behaviour for the block;
  `<!-- not run: why -->` marks an illustration, which is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme

from conftest import OUTPUTS, ROOT
from fake_wechat import APPID, SECRET, FakeWeChat, certifi_trusting

PORT = ROOT / "fetch_token.py"  # the port of the PHP example
READMES = ("README.md", "README.zh-CN.md")
DOCUMENTS = (*READMES, *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")))
# Each translation beside the document it translates
PAIRS = [
    (name.replace(".zh-CN.md", ".md"), name) for name in DOCUMENTS if name.endswith(".zh-CN.md")
]
RUNNABLE = ("python", "sh", "console")
MAX_README_LINES = 250  # a README is read in one sitting (issue 17)
WECHAT = {"https://api.weixin.qq.com": 0, "https://api2.weixin.qq.com": 1}  # -> which fake
PROXY_CA = "/etc/ssl/certs/corporate-proxy-ca.pem"  # the recipe's CA path -> the fake's CA
TIMEOUT = 30  # seconds for a whole block
# How transcripts show what differs on each run (the actual output is mapped to it).
SHOWN_PORTS = ("8443", "8444")
SHOWN_HOME = "/home/me"
SHOWN_CERTIFI = "/home/me/app/.venv/lib/python3.12/site-packages"


class Block(NamedTuple):
    document: str
    line: int  # of the opening fence, counted from 1
    lang: str
    text: str
    not_run: str | None  # why not, for an illustration
    fake: str | None  # the JSON of <!-- fake: ... -->

    def __str__(self) -> str:
        return f"{self.document}:{self.line} ({self.lang})"


def read(document: str) -> str:
    return (ROOT / document).read_text(encoding="utf-8")


def parse(document: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a document, and its headings as (level, text)."""
    lines = read(document).splitlines()
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
            blocks.append(Block(document, start + 1, fence[2], text, not_run, fake))
            directives = {}
        elif directive := re.fullmatch(r"\s*<!-- (not run|fake): (.+) -->", line):
            directives[directive[1]] = directive[2]
        elif heading := re.match(r"(#+) (.*)", line):
            headings.append((len(heading[1]), heading[2]))
        elif line.strip():
            directives = {}  # a directive belongs to the block right below it
        number += 1
    return blocks, headings


def runnable(document: str) -> list[Block]:
    return [block for block in parse(document)[0] if block.not_run is None]


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
        """Actual output as transcripts show it: fixed ports and paths."""
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


def _package_for_the_fakes(box: Sandbox, folder: Path) -> None:
    """A copy of wechat_token whose API_BASES are the fakes' addresses."""
    shutil.copytree(ROOT / "wechat_token", folder, ignore=shutil.ignore_patterns("__pycache__"))
    endpoints = folder / "endpoints.py"
    text = endpoints.read_text(encoding="utf-8")
    assert all(domain in text for domain in WECHAT)  # else the copy would reach WeChat
    endpoints.write_text(box.substitute(text), encoding="utf-8")


def _shim(path: Path, site: Path, *args: str) -> None:
    """An executable that runs this Python (the one with pycurl and certifi) with the
    package copy first on PYTHONPATH, even under cron's empty environment."""
    path.write_text(
        f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}"\nexport PYTHONPATH\n'
        f'exec "{sys.executable}" {" ".join(args)} "$@"\n',
        encoding="utf-8",
    )
    path.chmod(0o755)


@pytest.fixture
def sandbox(
    fake: FakeWeChat, backup_fake: FakeWeChat, ca_file: str, certifi_folder: str, tmp_path: Path
) -> Iterator[Sandbox]:
    home = tmp_path / "home"
    app = home / "app"
    venv_bin = app / ".venv" / "bin"  # the recipes' .venv/bin/python and wechat-token
    venv_bin.mkdir(parents=True)
    site = tmp_path / "site"  # the package, as installed, but for the fakes
    backup_fake.reset()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WECHAT_")
        and not name.lower().endswith("_proxy")
        and name not in ("XDG_CACHE_HOME", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR", "PYTHONPATH")
    }
    path = os.pathsep.join((str(venv_bin), os.path.dirname(sys.executable), env.get("PATH", "")))
    env.update(
        HOME=str(home),
        PATH=path,
        PYTHONPATH=os.pathsep.join((str(site), certifi_folder)),
        WECHAT_APPID=APPID,
        WECHAT_APPSECRET=SECRET,
        CURL_CA_BUNDLE=ca_file,
        SSL_CERT_FILE=ca_file,
    )
    box = Sandbox(home, app, env, (fake, backup_fake), ca_file, certifi_folder)
    _package_for_the_fakes(box, site / "wechat_token")
    port = PORT.read_text(encoding="utf-8")
    assert "https://api.weixin.qq.com" in port  # else the copy would reach WeChat
    (app / "fetch_token.py").write_text(box.substitute(port), encoding="utf-8")
    config = app / "config.ini"
    config.write_text(f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\n", encoding="utf-8")
    config.chmod(0o600)
    _shim(venv_bin / "python", site)
    _shim(venv_bin / "wechat-token", site, "-m", "wechat_token")
    yield box
    backup_fake.reset()


def run_block(block: Block, box: Sandbox) -> None:
    if block.document.endswith(".zh-CN.md"):  # its reader's locale: the tool speaks Chinese
        box.env["LANG"] = "zh_CN.UTF-8"
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
    (re.compile(r"还有 \d+ 秒有效"), "还有 N 秒有效"),
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


# --- Every block runs, or says why not ---------------------------------------------------


def _ids(blocks: list[Block]) -> list[str]:
    return [str(block) for block in blocks]


ALL_RUNNABLE = [block for document in DOCUMENTS for block in runnable(document)]


@pytest.mark.parametrize("block", ALL_RUNNABLE, ids=_ids(ALL_RUNNABLE))
def test_block_runs(block: Block, sandbox: Sandbox) -> None:
    run_block(block, sandbox)
    assert sandbox.requests() >= 1  # it reached a fake: the substitution took


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_block_runs_or_says_why_not(document: str) -> None:
    blocks, _ = parse(document)
    assert len(blocks) * 2 == len(re.findall(r"^ *```", read(document), flags=re.MULTILINE))
    unmarked = [str(b) for b in blocks if b.not_run is None and b.lang not in RUNNABLE]
    assert unmarked == [], "mark illustrations with <!-- not run: why -->"


def test_the_documents_are_read_and_run() -> None:
    """The parser finds what is there: a change to it cannot make every check vacuous."""
    assert {"README.md", "README.zh-CN.md", "docs/options.md"} <= set(DOCUMENTS)
    assert all(len(runnable(readme)) >= 5 for readme in READMES)
    assert len(ALL_RUNNABLE) >= 30


def test_transcript_comparison_can_fail(sandbox: Sandbox) -> None:
    """The transcript check is not vacuous: a wrong token in a transcript fails it."""
    with pytest.raises(AssertionError, match=r"\$ wechat-token"):
        run_transcript("$ wechat-token\nfake_token_2\n", sandbox)


# --- The READMEs: short, and the port they show is fetch_token.py ------------------------


@pytest.mark.parametrize("readme", READMES)
def test_a_readme_is_read_in_one_sitting(readme: str) -> None:
    assert len(read(readme).splitlines()) <= MAX_README_LINES


def test_ci_runs_the_first_two_commands_word_for_word() -> None:
    first = parse(READMES[0])[0][0]
    assert ".ci/run" in (first.not_run or "")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = first.text.splitlines()
    assert len(commands) == 2
    assert all(command in ci for command in commands)
    assert commands[1].endswith("-m pytest")  # the test command


_EXCERPT = re.compile(r"fetch_token\.py\D*(\d+)-(\d+)")  # in the block's <!-- not run: -->


@pytest.mark.parametrize("readme", READMES)
def test_the_port_shown_is_fetch_token_py(readme: str) -> None:
    """There is one copy of the port, the file: the README shows a run of its lines."""
    (block,) = [b for b in parse(readme)[0] if b.not_run and _EXCERPT.search(b.not_run)]
    found = _EXCERPT.search(block.not_run or "")
    assert found
    first, last = int(found[1]), int(found[2])
    lines = PORT.read_text(encoding="utf-8").splitlines()[first - 1 : last]
    assert block.text == textwrap.dedent("\n".join(lines) + "\n")
    assert f"](fetch_token.py#L{first}-L{last})" in read(readme)  # where readers see them


def _normal(code: str) -> str:
    return " ".join(code.split())


def _in_order(code: str, line: str) -> bool:
    """`code` is in `line`, where "..." in `code` stands for anything."""
    position = 0
    for piece in code.split("..."):
        position = line.find(piece, position)
        if position < 0:
            return False
        position += len(piece)
    return True


@pytest.mark.parametrize("readme", READMES)
def test_the_walkthrough_points_at_the_lines_of_fetch_token_py(readme: str) -> None:
    """Each row: the PHP line as the README's PHP block has it, and the Python that
    replaces it, on the line of fetch_token.py that the row links to."""
    php = _normal(next(b.text for b in parse(readme)[0] if b.lang == "php"))
    port = PORT.read_text(encoding="utf-8").splitlines()
    rows = [row for row in read(readme).splitlines() if re.match(r"\|.*\(fetch_token\.py#L", row)]
    assert len(rows) >= 10
    for row in rows:
        php_cell, python_cell = [cell.strip() for cell in row.strip("|").split("|")][:2]
        link = re.search(r"\]\(fetch_token\.py#L(\d+)\)", python_cell)
        assert link, row
        line = port[int(link[1]) - 1]
        codes = re.findall(r"`([^`]+)`", python_cell)
        assert codes, row
        assert all(_in_order(code, line) for code in codes), f"{row}\nline {link[1]}: {line}"
        assert all(_in_order(_normal(code), php) for code in re.findall(r"`([^`]+)`", php_cell)), (
            row
        )


# --- Translations: the same structure, the same code --------------------------------------


def _without_comments(block: Block) -> str:
    """A block's code, whatever language its comments are in; of a transcript, the commands
    (what they print is in the reader's language, and each is checked by running it)."""
    lines = []
    for line in block.text.splitlines():
        if block.lang == "console" and not line.startswith("$ "):
            continue
        line = re.sub(r"(^|\s)#.*", "", line).rstrip()
        if line:
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize(("english", "chinese"), PAIRS, ids=[zh for _, zh in PAIRS])
def test_a_translation_has_the_same_sections_and_blocks(english: str, chinese: str) -> None:
    """The same outline (heading levels) and the same blocks in the same order, with the
    same code and commands; the prose is free, written for its readers."""
    (en_blocks, en_headings), (zh_blocks, zh_headings) = parse(english), parse(chinese)
    assert [level for level, _ in zh_headings] == [level for level, _ in en_headings]

    def shape(blocks: list[Block]) -> list[tuple[str, bool, str | None]]:
        return [(b.lang, b.not_run is None, b.fake) for b in blocks]

    assert shape(zh_blocks) == shape(en_blocks)
    for en, zh in zip(en_blocks, zh_blocks, strict=True):
        assert _without_comments(zh) == _without_comments(en), f"{zh} differs from {en}"


def test_the_user_documents_are_in_both_languages() -> None:
    english = {name for name in DOCUMENTS if not name.endswith(".zh-CN.md")}
    assert {en for en, _ in PAIRS} <= english  # no translation without its original
    wanted = {"README.md", "docs/options.md", "docs/errcodes.md", "docs/recipes.md"}
    assert wanted <= {en for en, _ in PAIRS}


@pytest.mark.parametrize(("english", "chinese"), PAIRS, ids=[zh for _, zh in PAIRS])
def test_each_translation_links_to_the_other(english: str, chinese: str) -> None:
    en, zh = read(english).split("\n## ")[0], read(chinese).split("\n## ")[0]
    assert f"]({Path(chinese).name})" in en
    assert f"]({Path(english).name})" in zh


# --- Links -------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _anchors(document: str) -> set[str]:
    return {_slug(text) for _, text in parse(document)[1]}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_finds_its_file_section_or_line(document: str) -> None:
    folder = (ROOT / document).parent
    links = re.findall(r"\]\(([^)\s]+)\)", read(document))
    assert links  # the test reads them
    for link in links:
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (folder / path).resolve() if path else ROOT / document
        assert target.is_file(), f"{document}: {link}: no such file"
        if not anchor:
            continue
        name = target.relative_to(ROOT).as_posix()
        if name.endswith(".md"):
            assert anchor in _anchors(name), f"{document}: {link}: no such section"
        else:  # a line or lines of a source file: #L93 or #L93-L139
            lines = re.fullmatch(r"L(\d+)(?:-L(\d+))?", anchor)
            assert lines, f"{document}: {link}"
            last = int(lines[2] or lines[1])
            assert last <= len(target.read_text(encoding="utf-8").splitlines()), link


# --- The cron recipe, run as cron runs it ------------------------------------------------

CRON_SCRIPTS = [b for doc in DOCUMENTS for b in runnable(doc) if b.text.startswith("#!/bin/sh\n")]


def _cron(sandbox: Sandbox, block: Block) -> tuple[Path, list[str]]:
    """The script written where the recipe puts it, and cron's environment."""
    script = sandbox.app / "refresh-token.sh"
    script.write_text(sandbox.substitute(block.text), encoding="utf-8")
    script.chmod(0o755)
    # Under cron's empty environment the .venv/bin shims put the package copy on PYTHONPATH,
    # but not the copy of certifi: the config names the fakes' CA, as a config behind a
    # re-signing proxy would.
    config = sandbox.app / "config.ini"
    config.write_text(config.read_text() + f"ca_bundle = {sandbox.ca_file}\n")
    env = ["PATH=/usr/bin:/bin", f"HOME={sandbox.home}", "SHELL=/bin/sh"]
    return script, ["/usr/bin/env", "-i", *env]


@pytest.mark.skipif(not os.path.exists("/usr/bin/env"), reason="needs env -i")
@pytest.mark.parametrize("block", CRON_SCRIPTS, ids=_ids(CRON_SCRIPTS))
def test_the_cron_recipe_works_as_cron_runs_it(block: Block, sandbox: Sandbox) -> None:
    """cron gives a minimal PATH, no shell variables, and the home folder as the current
    one: the recipe found no `python`, and a failure left an empty token.txt.new."""
    script, cron = _cron(sandbox, block)

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
    config = sandbox.app / "config.ini"
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

    script, cron = _cron(sandbox, CRON_SCRIPTS[0])
    (sandbox.app / "token.txt").write_text("old_token\n")
    sandbox.fakes[0].behaviour = "hang"
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

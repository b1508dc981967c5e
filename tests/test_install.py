"""The wheel that `pipx install .` builds, installed: `wechat-token`, `python -m
wechat_token` and the port `python -m fetch_token` run from it.

Offline throughout: the wheel is built by the setuptools of this environment
(requirements-dev.txt), through the PEP 517 hook that pip calls, and installed by pip with
--no-index into a fresh venv, which borrows pycurl and certifi from this environment
through a .pth file. The module takes a few seconds: one build and one venv, shared by its
tests. POSIX only (bin/, not Scripts\\).
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest

import wechat_token

from conftest import CLI, OUTPUTS, ROOT, Result

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout (bin/)"),
    pytest.mark.xdist_group("install"),  # one worker builds the wheel, once
]

TIMEOUT = 60  # seconds for one build, install or run; the whole module takes a few
DIST_INFO = f"wechat_token-{wechat_token.__version__}.dist-info"


class Installed(NamedTuple):
    wheel: Path
    venv: Path
    site_packages: Path

    def run(self, program: str, *args: str, cwd: Path) -> Result:
        """Run bin/PROGRAM of the fresh venv, in CWD, with nothing of the project on the path."""
        environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        done = subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        OUTPUTS.extend((done.stdout, done.stderr))  # the secret guard reads these
        return Result(done.returncode, done.stdout, done.stderr)


def _check(argv: list[str], cwd: Path | None = None) -> str:
    """Run a step of the build or install; its stdout."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _build(kind: str, source: Path, into: Path) -> Path:
    """Build a wheel or an sdist of SOURCE with setuptools' PEP 517 hook, as pip and
    `python -m build` do, without their start-up (about 2 s); the file it made."""
    code = f"import sys, setuptools.build_meta as b; print(b.build_{kind}(sys.argv[1]))"
    name = _check([sys.executable, "-c", code, str(into)], cwd=source).strip().splitlines()[-1]
    return into / name


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built offline from this folder, installed into a fresh venv."""
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    source = tmp_path_factory.mktemp("source")  # a copy: the build writes beside the files
    _copy_tree(source)
    wheel = _build("wheel", source, dist)

    venv = tmp_path_factory.mktemp("venv")
    _check([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)])
    python = str(venv / "bin" / "python")
    # This environment's pip installs into the venv (pip >= 22.3), faster than ensurepip.
    _check([*pip, "--python", python, "install", "--no-index", "--no-deps", str(wheel)])
    # pycurl and certifi without the network: the venv also reads this environment's
    # site-packages, after its own (so the installed modules come first).
    ours = sysconfig.get_paths()
    theirs = _check([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    theirs = theirs.strip()
    lines = dict.fromkeys([ours["purelib"], ours["platlib"]])  # one line if they are the same
    (Path(theirs) / "_dev_site_packages.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Installed(wheel, venv, Path(theirs))


PACKAGE = sorted(
    str(path.relative_to(ROOT / "wechat_token")) for path in (ROOT / "wechat_token").rglob("*.py")
)


def _copy_tree(folder: Path) -> None:
    """What a clean clone holds that the build reads, copied to FOLDER."""
    import shutil

    for name in ("pyproject.toml", "README.md", "README.zh-CN.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copy(ROOT / "config.ini.example", folder / "config.ini.example")
    shutil.copy(ROOT / "fetch_token.py", folder / "fetch_token.py")
    for name in PACKAGE:
        (folder / "wechat_token" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "wechat_token" / name, folder / "wechat_token" / name)
    shutil.copytree(ROOT / "docs", folder / "docs")


def test_the_wheel_holds_the_port_the_package_the_licence_and_the_metadata(
    installed: Installed,
) -> None:
    assert installed.wheel.name == f"wechat_token-{wechat_token.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = email.message_from_bytes(wheel.read(f"{DIST_INFO}/METADATA"))
        entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
        licence = wheel.read(f"{DIST_INFO}/licenses/LICENSE").decode()
    assert names == {
        "fetch_token.py",
        *(f"wechat_token/{name}" for name in PACKAGE),
        f"{DIST_INFO}/METADATA",
        f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/RECORD",
        f"{DIST_INFO}/entry_points.txt",
        f"{DIST_INFO}/top_level.txt",
        f"{DIST_INFO}/licenses/LICENSE",
    }
    assert metadata["Name"] == "wechat-token"
    assert metadata["Version"] == wechat_token.__version__
    assert metadata["Summary"] == (
        "Fetch a WeChat Official Account access_token over verified TLS, cached and shared"
    )
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License-Expression"] == "MIT"
    # The same dependencies as requirements.txt.
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line for line in requirements if line and not line.startswith("#")]
    assert metadata.get_all("Requires-Dist") == wanted == ["pycurl>=7.45.3", "certifi>=2024.2.2"]
    assert entry_points.split() == [
        "[console_scripts]",
        "wechat-token",
        "=",
        "wechat_token.cli:main",
    ]
    assert licence == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n")


def test_the_installed_modules_are_the_ones_imported(installed: Installed, tmp_path: Path) -> None:
    code = "import fetch_token, wechat_token; print(fetch_token.__file__, wechat_token.__file__)"
    result = installed.run("python", "-c", code, cwd=tmp_path)
    assert result.code == 0, result.err
    port, package = map(Path, result.out.split())
    assert port == installed.site_packages / "fetch_token.py"
    assert package == installed.site_packages / "wechat_token" / "__init__.py"


def test_each_way_of_running_the_tool_names_it_wechat_token(
    installed: Installed, cli: CLI, tmp_path: Path
) -> None:
    version = f"wechat-token {wechat_token.__version__}\n"
    assert cli.main("--version", base=False) == Result(0, version, "")
    assert installed.run("wechat-token", "--version", cwd=tmp_path) == Result(0, version, "")
    assert installed.run("python", "-m", "wechat_token", "--version", cwd=tmp_path) == Result(
        0, version, ""
    )
    help_text = installed.run("wechat-token", "--help", cwd=tmp_path)
    assert help_text.out.startswith("usage: wechat-token [-h]")


def test_wechat_token_fetches_a_token(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    args = ("--api-base", cli.fake.base_url, "--cacert", cli.ca_file, "--no-cache")
    assert installed.run("wechat-token", *args, cwd=tmp_path) == Result(0, "fake_token_1\n", "")
    assert len(cli.fake.requests) == 1


def test_wechat_token_exits_with_mains_code(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    """The console-script wrapper passes main()'s return value to sys.exit."""
    cli.fake.behaviour = 40164
    args = ("--api-base", cli.fake.base_url, "--cacert", cli.ca_file, "--no-cache")
    result = installed.run("wechat-token", *args, cwd=tmp_path)
    assert (result.code, result.out) == (1, "")
    assert "40164" in result.err
    assert cli.fake.errcodes == [40164]


def test_the_installed_port_fetches_a_token(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    """`python -m fetch_token` from the wheel: the port reads config.ini in this folder."""
    (tmp_path / "config.ini").write_text(
        f"[wechat]\napi_base = {cli.fake.base_url}\nca_bundle = {cli.ca_file}\n",
        encoding="utf-8",
    )
    assert installed.run("python", "-m", "fetch_token", cwd=tmp_path) == Result(
        0, "fake_token_1\n", ""
    )


@pytest.mark.usefixtures("signals_delivered")  # even when pytest runs in the background
def test_ctrl_c_while_wechat_token_waits_kills_it_by_sigint(
    installed: Installed, cli: CLI, tmp_path: Path
) -> None:
    """From main() on, Ctrl-C ends the installed command at once, as it ends curl."""
    cli.fake.behaviour = "hang"
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    args = ("--api-base", cli.fake.base_url, "--cacert", cli.ca_file, "--no-cache")
    with subprocess.Popen(
        [str(installed.venv / "bin" / "wechat-token"), *args],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + TIMEOUT
            while not cli.fake.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
    OUTPUTS.extend((out, err))
    assert (proc.returncode, out, err) == (-signal.SIGINT, "", "")


def test_the_source_archive_holds_the_files_and_what_a_user_reads_beside_them(
    tmp_path: Path,
) -> None:
    """The sdist: the port, the package, the licence, the READMEs, docs/ and the example."""
    import tarfile

    source = tmp_path / "source"
    source.mkdir()
    _copy_tree(source)
    with tarfile.open(_build("sdist", source, tmp_path)) as archive:
        names = {member.split("/", 1)[1] for member in archive.getnames() if "/" in member}
    assert {
        "LICENSE",
        "PKG-INFO",
        "README.md",
        "README.zh-CN.md",
        "config.ini.example",
        "fetch_token.py",
        "pyproject.toml",
        *(f"wechat_token/{name}" for name in PACKAGE),
        *(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")),
    } <= names

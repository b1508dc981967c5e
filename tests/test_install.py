"""The package: the wheel that `pipx install .` builds, installed, runs as `fetch-token`.

Offline throughout: the wheel is built with the flit_core of this environment
(requirements-dev.txt) and installed with --no-index into a fresh venv, which borrows
pycurl and certifi from this environment through a .pth file. The module takes a few
seconds: one build and one venv, shared by its tests. POSIX only (bin/, not Scripts\\).
"""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest

import fetch_token

from conftest import CLI, OUTPUTS, ROOT, Result

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout (bin/)")

TIMEOUT = 60  # seconds for one build, install or run; the whole module takes a few
DIST_INFO = f"fetch_token-{fetch_token.__version__}.dist-info"


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


def _check(argv: list[str]) -> None:
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built offline from this folder, installed into a fresh venv."""
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    offline = ["--no-build-isolation", "--no-deps", "--no-index"]  # flit_core from here
    _check([*pip, "wheel", *offline, "--wheel-dir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("*.whl")

    venv = tmp_path_factory.mktemp("venv")
    _check([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)])
    python = str(venv / "bin" / "python")
    # This environment's pip installs into the venv (pip >= 22.3), faster than ensurepip.
    _check([*pip, "--python", python, "install", "--no-index", "--no-deps", str(wheel)])
    # pycurl and certifi without the network: the venv also reads this environment's
    # site-packages, after its own (so the installed fetch_token.py comes first).
    ours = sysconfig.get_paths()
    theirs = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    lines = dict.fromkeys([ours["purelib"], ours["platlib"]])  # one line if they are the same
    (Path(theirs) / "_dev_site_packages.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Installed(wheel, venv, Path(theirs))


def test_the_wheel_holds_the_module_the_licence_and_the_metadata(installed: Installed) -> None:
    assert installed.wheel.name == f"fetch_token-{fetch_token.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = email.message_from_bytes(wheel.read(f"{DIST_INFO}/METADATA"))
        entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
        licence = wheel.read(f"{DIST_INFO}/licenses/LICENSE").decode()
    assert names == {
        "fetch_token.py",
        f"{DIST_INFO}/METADATA",
        f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/RECORD",
        f"{DIST_INFO}/entry_points.txt",
        f"{DIST_INFO}/licenses/LICENSE",
    }
    assert metadata["Name"] == "fetch-token"
    assert metadata["Version"] == fetch_token.__version__
    assert metadata["Summary"] == (fetch_token.__doc__ or "").strip().splitlines()[0]
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License-Expression"] == "MIT"
    # The same dependencies as requirements.txt.
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line for line in requirements if line and not line.startswith("#")]
    assert metadata.get_all("Requires-Dist") == wanted == ["pycurl>=7.45.3", "certifi>=2024.2.2"]
    assert entry_points.split() == ["[console_scripts]", "fetch-token=fetch_token:main"]
    assert licence == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n")


def test_the_source_archive_holds_the_file_and_what_a_user_reads_beside_it(
    tmp_path: Path,
) -> None:
    """The sdist: the module, the licence, both READMEs and the example config."""
    import tarfile

    from flit_core import buildapi

    here = os.getcwd()
    os.chdir(ROOT)  # flit builds from the current folder
    try:
        name = buildapi.build_sdist(str(tmp_path))
    finally:
        os.chdir(here)
    with tarfile.open(tmp_path / name) as archive:
        names = {member.split("/", 1)[1] for member in archive.getnames()}
    assert names == {
        "LICENSE",
        "PKG-INFO",
        "README.md",
        "README.zh-CN.md",
        "config.ini.example",
        "fetch_token.py",
        "pyproject.toml",
    }


def test_the_installed_module_is_the_one_imported(installed: Installed, tmp_path: Path) -> None:
    code = "import fetch_token, certifi, pycurl; print(fetch_token.__file__)"
    result = installed.run("python", "-c", code, cwd=tmp_path)
    assert result.code == 0, result.err
    assert Path(result.out.strip()) == installed.site_packages / "fetch_token.py"


def test_fetch_token_version(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    """Each way of running it names itself as the user typed it."""
    version = fetch_token.__version__
    assert cli.main("--version", base=False) == Result(0, f"fetch_token.py {version}\n", "")
    assert installed.run("fetch-token", "--version", cwd=tmp_path) == Result(
        0, f"fetch-token {version}\n", ""
    )
    assert installed.run("python", "-m", "fetch_token", "--version", cwd=tmp_path) == Result(
        0, f"fetch_token.py {version}\n", ""
    )
    help_text = installed.run("fetch-token", "--help", cwd=tmp_path)
    assert help_text.out.startswith("usage: fetch-token [-h]")


@pytest.mark.parametrize("delay", [0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05])
def test_ctrl_c_while_fetch_token_starts_gives_no_traceback(
    installed: Installed, tmp_path: Path, delay: float
) -> None:
    """The wrapper imports the module as fetch_token, not __main__: a Ctrl-C during that
    import printed a traceback through lines of fetch_token.py."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    with subprocess.Popen(
        [
            str(installed.venv / "bin" / "fetch-token"),
            "--no-cache",
            "--api-base",
            "https://127.0.0.1:9",
        ],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
    OUTPUTS.extend((out, err))
    assert re.search(r'fetch_token\.py", line [1-9]', err) is None, err


def test_fetch_token_fetches_a_token(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    args = ("--api-base", cli.fake.base_url, "--cacert", cli.ca_file, "--no-cache")
    assert installed.run("fetch-token", *args, cwd=tmp_path) == Result(0, "fake_token_1\n", "")
    assert len(cli.fake.requests) == 1


def test_fetch_token_exits_with_mains_code(installed: Installed, cli: CLI, tmp_path: Path) -> None:
    """The console-script wrapper passes main()'s return value to sys.exit."""
    cli.fake.behaviour = 40164
    args = ("--api-base", cli.fake.base_url, "--cacert", cli.ca_file, "--no-cache")
    result = installed.run("fetch-token", *args, cwd=tmp_path)
    assert (result.code, result.out) == (1, "")
    assert "40164" in result.err
    assert cli.fake.errcodes == [40164]

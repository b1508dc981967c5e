"""Benchmark of the tool and the port against the floors that no pycurl program can beat.

Starts the fake WeChat (tests/fake_wechat.py) on 127.0.0.1 and measures, as medians of
interleaved rounds, whole commands as users run them: the `wechat-token` command (a cache
hit, a ticket's cache hit and a fresh fetch), the same as `python -m wechat_token`, the port `python
fetch_token.py`; against `python -c pass`, the standard-library floor of a cache hit, a
minimal pycurl snippet, the same fetch with requests, and the PHP example (bugs fixed)
where php is installed. In one Python process it also times a warm TokenCache.get(), and
counts the requests that 16 threads in each of 8 processes make on an empty cache.

The package is installed from its wheel, built offline, into a throwaway venv, and every
Python row runs with that venv's python: as after `pip install .`, and without the
editable-install hook of the project's .venv, which every start there pays. Every Python
row finds its CA bundle the default way, through certifi: a copy of certifi that trusts
the fake's CA comes first on PYTHONPATH. Nothing leaves 127.0.0.1.

A measurement, not a test: it exits 0 whatever the targets say, and non-zero only when a
measured command fails. Run it from anywhere:

    .venv/bin/python tests/benchmark.py [--runs N] [--markdown] [--python PATH]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_wechat import APPID, SECRET, FakeWeChat, certifi_trusting

ROOT = Path(__file__).resolve().parent.parent
PORT_SCRIPT = ROOT / "fetch_token.py"
TIMEOUT = 30  # seconds: a command still running then is killed, and the benchmark fails
PASS, HIT_FLOOR = "python -c pass", "stdlib floor of a hit"
CACHE_HIT_I, FRESH_I = "cache hit, wechat-token", "fresh fetch, wechat-token"  # installed
CACHE_HIT_M, FRESH_M = "cache hit, python -m wechat_token", "fresh fetch, python -m wechat_token"
TICKET_HIT = "ticket cache hit, wechat-token ticket jsapi"
PORT = "port: python fetch_token.py"  # a fresh fetch: the port has no cache
MINIMAL, REQUESTS, PHP = "minimal pycurl", "requests", "PHP curl (fixed)"
TARGETS = (  # left <= factor * right, in median wall time (ms)
    (CACHE_HIT_I, 1.2, HIT_FLOOR),
    (TICKET_HIT, 1.2, CACHE_HIT_I),
    (PORT, 1.1, MINIMAL),
    (FRESH_I, 1.15, MINIMAL),
    (FRESH_I, 0.6, REQUESTS),
)
WARM_GET_TARGET_US = 20  # a warm TokenCache.get(), in microseconds
THREADS, PROCESSES = 16, 8  # the crowd that asks at once on an empty cache

# Linux charges a child, when it calls exec, with the peak RSS of the process it was
# spawned from: spawned from this process (trustme, the fake server) every command would
# seem to use this process's memory. So a Python at its smallest (-I -S, builtin modules
# only: importing `signal` alone adds 0.9 MiB to /bin/true's RSS) spawns them. For each
# command it prints the child's pid at once (Spawner.run kills it after TIMEOUT), then its
# exit code, wall time (ns) and ru_maxrss (KiB).
SPAWNER = """
import posix, sys, time
W = posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC
for line in sys.stdin:
    out, err, *argv = line.rstrip("\\n").split("\\0")
    files = [(posix.POSIX_SPAWN_OPEN, 0, "/dev/null", posix.O_RDONLY, 0),
             (posix.POSIX_SPAWN_OPEN, 1, out, W, 0o600),
             (posix.POSIX_SPAWN_OPEN, 2, err, W, 0o600)]
    start = time.perf_counter_ns()
    pid = posix.posix_spawn(argv[0], argv, posix.environ, file_actions=files)
    print(pid, flush=True)
    _, status, usage = posix.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
    print(posix.waitstatus_to_exitcode(status), wall, usage.ru_maxrss, flush=True)
"""

MINIMAL_SNIPPET = """\
import json
from io import BytesIO
from urllib.parse import urlencode

import certifi  # the default CA bundle, as for the real WeChat
import pycurl

query = urlencode({{"grant_type": "client_credential", "appid": {appid!r}, "secret": {secret!r}}})
body = BytesIO()
c = pycurl.Curl()
c.setopt(pycurl.URL, {base!r} + "/cgi-bin/token?" + query)
c.setopt(pycurl.SSL_VERIFYPEER, 1)
c.setopt(pycurl.SSL_VERIFYHOST, 2)
c.setopt(pycurl.CAINFO, certifi.where())
c.setopt(pycurl.WRITEDATA, body)
c.perform()
c.close()
print(json.loads(body.getvalue())["access_token"])
"""

REQUESTS_SNIPPET = """\
import requests

params = {{"grant_type": "client_credential", "appid": {appid!r}, "secret": {secret!r}}}
url = {base!r} + "/cgi-bin/token"
print(requests.get(url, params=params, timeout=10).json()["access_token"])  # certifi's CAs
"""

# What any cache hit has to do with the standard library, and nothing else: parse the
# same options with argparse, read config.ini, read the cache file, fingerprint the
# secret (as wechat_token/cache.py does), print. No cache hit can be faster than this.
HIT_FLOOR_SNIPPET = """\
import argparse, configparser, hashlib, json

parser = argparse.ArgumentParser()
for option in {options!r}:
    parser.add_argument(option)
parser.parse_args()
config = configparser.ConfigParser(interpolation=None)
config.read("config.ini", encoding="utf-8")
with open({cache!r}, "rb") as file:
    entry = json.loads(file.read())
secret = config["wechat"]["appsecret"].encode()
assert entry["secret_sha256"] == hashlib.sha256(b"wechat_token cache:" + secret).hexdigest()
print(entry["value"])
"""

PHP_SNIPPET = """\
<?php
$appid = {appid};
$appsecret = {secret};
$url = {base} . "/cgi-bin/token?grant_type=client_credential&appid=" . urlencode($appid)
    . "&secret=" . urlencode($appsecret);
$ch = curl_init();
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, true);  // was FALSE
curl_setopt($ch, CURLOPT_SSL_VERIFYHOST, 2);  // was FALSE
curl_setopt($ch, CURLOPT_CAINFO, {ca});
curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);
$output = curl_exec($ch);
curl_close($ch);
$jsoninfo = json_decode($output, true);  // was $jsOninfo
$access_token = $jsoninfo["access_token"];
echo $access_token, "\\n";
"""


# In-process: a warm TokenCache.get(), timed in the Python being measured.
WARM_GET_SNIPPET = """\
import statistics, time
from wechat_token import TokenCache
tokens = TokenCache({appid!r}, {secret!r}, cache_file={cache!r}, api_bases=[{base!r}])
tokens.get()
rounds = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(100_000):
        tokens.get()
    rounds.append((time.perf_counter() - start) / 100_000 * 1e6)
print(f"{{statistics.median(rounds):.2f}}")
"""

# THREADS threads in each of PROCESSES processes ask at once, on an empty cache.
CROWD_SNIPPET = """\
import threading
from wechat_token import TokenCache
tokens = TokenCache({appid!r}, {secret!r}, cache_file={cache!r}, api_bases=[{base!r}])
threads = [threading.Thread(target=tokens.get) for _ in range({threads})]
for thread in threads: thread.start()
for thread in threads: thread.join(30)
"""


class Case(NamedTuple):
    name: str
    argv: list[str]
    prints_token: bool = True
    same_output: bool = False  # each run must print what the warm-up printed (cache hit)


class Run(NamedTuple):
    code: int  # exit status; -9 when killed after TIMEOUT
    wall_ms: float  # from spawn to reap
    rss_mib: float  # the child's peak resident set size
    out: str
    err: str


class Verdict(NamedTuple):
    met: bool | None  # None: a row it needs was not measured
    target: str
    result: str


class CommandFailed(Exception):
    """A measured command failed: its timings would mean nothing."""


class Spawner:
    """The small process that runs every measured command (see SPAWNER)."""

    def __init__(self, workdir: str, env: dict[str, str]) -> None:
        self.out, self.err = os.path.join(workdir, "out.txt"), os.path.join(workdir, "err.txt")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SPAWNER],
            cwd=workdir,
            env=env,
            bufsize=0,  # unbuffered: select() below sees every byte the spawner wrote
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _line(self, argv: list[str]) -> list[str]:
        assert self.proc.stdout
        line = self.proc.stdout.readline().decode()
        if not line.endswith("\n"):
            raise CommandFailed(f"the spawner died running {' '.join(argv)}")
        return line.split()

    def run(self, argv: list[str]) -> Run:
        """Run `argv` once, in the working folder, and collect what it did."""
        assert self.proc.stdin
        assert self.proc.stdout
        self.proc.stdin.write(("\0".join([self.out, self.err, *argv]) + "\n").encode())
        (pid,) = self._line(argv)
        if not select.select([self.proc.stdout], [], [], TIMEOUT)[0]:
            os.kill(int(pid), signal.SIGKILL)  # the spawner reaps it and reports -9
        code, wall_ns, rss_kib = map(int, self._line(argv))
        out, err = Path(self.out).read_text().strip(), Path(self.err).read_text()
        return Run(code, wall_ns / 1e6, rss_kib / 1024, out, err)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT)


def run_case(spawner: Spawner, case: Case, expected: str | None = None) -> Run:
    """Run a case once; CommandFailed unless it exits 0 and prints a (or the) token."""
    run = spawner.run(case.argv)
    if run.code != 0 or (case.prints_token and not run.out):
        why = {0: "printed no token", -9: f"killed after {TIMEOUT} s"}.get(run.code)
        why = why or f"exit status {run.code}"
        raise CommandFailed(f"{case.name} failed ({why}): {' '.join(case.argv)}\n{run.err}")
    if expected is not None and run.out != expected:
        raise CommandFailed(f"{case.name} printed a new token: the cache was not used")
    return run


def measure(spawner: Spawner, cases: list[Case], runs: int) -> dict[str, list[Run]]:
    """A warm-up round in list order (it fills the cache), then `runs` rotated rounds."""
    first = {case.name: run_case(spawner, case).out for case in cases}
    results: dict[str, list[Run]] = {case.name: [] for case in cases}
    for round_ in range(runs):
        shift = round_ % len(cases)  # so that no case always runs first
        for case in cases[shift:] + cases[:shift]:
            expected = first[case.name] if case.same_output else None
            results[case.name].append(run_case(spawner, case, expected))
    return results


def probe(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess[str]:
    """Run a quick command to learn about the machine or set up (not measured)."""
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT * 4
    )


def child_env(workdir: str) -> dict[str, str]:
    """This environment without WeChat settings, proxies and overrides; home in `workdir`."""
    dropped = (
        *("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"),  # not certifi
        "PYTHONDONTWRITEBYTECODE",  # `python -m` should cache bytecode, as it does by default
        *("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"),  # a run under pytest-cov
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WECHAT_")
        and not key.lower().endswith("_proxy")
        and key not in dropped
    }
    env.update(HOME=workdir, XDG_CACHE_HOME=os.path.join(workdir, "cache"))
    return env


def php_string(text: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_cases(
    venv: Path, workdir: str, base: str, ca: str, env: dict[str, str]
) -> tuple[list[Case], list[str]]:
    """The cases this machine can run, and a note for each one it cannot."""
    python, installed = str(venv / "bin" / "python"), str(venv / "bin" / "wechat-token")
    values = {"appid": APPID, "secret": SECRET, "base": base, "ca": ca}
    # The usual setup: config.ini, 0600, in the current folder. api_base is for the port,
    # which takes no options; the command is given --api-base, as the README shows.
    config = Path(workdir, "config.ini")
    config.write_text(f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\napi_base = {base}\n")
    config.chmod(0o600)
    shutil.copy(PORT_SCRIPT, workdir)  # run as `python fetch_token.py`, from its folder
    cache = ["--cache-file", os.path.join(workdir, "cache.json")]
    tool = ["--api-base", base]  # no --cacert: certifi, as users have it
    usage = probe([installed, "--help"], env, workdir).stdout
    options = sorted(set(re.findall(r"--[a-z][a-z-]+", usage)) - {"--help"})
    floor = HIT_FLOOR_SNIPPET.format(options=options, cache=cache[1])
    Path(workdir, "hit_floor.py").write_text(floor)
    Path(workdir, "minimal.py").write_text(MINIMAL_SNIPPET.format(**values))
    cases = [  # the hits come before the floor: in the warm-up, they fill the cache it reads
        Case(PASS, [python, "-c", "pass"], prints_token=False),
        Case(CACHE_HIT_I, [installed, *tool, *cache], same_output=True),
        Case(CACHE_HIT_M, [python, "-m", "wechat_token", *tool, *cache], same_output=True),
        Case(TICKET_HIT, [installed, "ticket", "jsapi", *tool, *cache], same_output=True),
        Case(HIT_FLOOR, [python, "hit_floor.py"]),
        Case(FRESH_I, [installed, *tool, "--no-cache"]),
        Case(FRESH_M, [python, "-m", "wechat_token", *tool, "--no-cache"]),
        Case(PORT, [python, "fetch_token.py"]),
        Case(MINIMAL, [python, "minimal.py"]),
    ]
    notes = []
    if probe([python, "-c", "import requests"], env, workdir).returncode == 0:
        Path(workdir, "with_requests.py").write_text(REQUESTS_SNIPPET.format(**values))
        cases.append(Case(REQUESTS, [python, "with_requests.py"]))
    else:
        notes.append(f"{REQUESTS}: skipped, {python} cannot import requests")
    php = shutil.which("php")
    if php and "curl" in probe([php, "-m"], env, workdir).stdout.split():
        quoted = {key: php_string(value) for key, value in values.items()}
        Path(workdir, "token.php").write_text(PHP_SNIPPET.format(**quoted))
        cases.append(Case(PHP, [php, "token.php"]))
    else:
        notes.append(f"{PHP}: skipped, no php with the curl extension on PATH")
    return cases, notes


def install_wheel(python: str, workdir: str, env: dict[str, str]) -> Path:
    """A venv from `python` with the project's wheel installed, as pip or pipx would.

    Built and installed offline, from a copy of the sources (a build writes beside them):
    the venv gets pycurl, certifi and requests from `python`'s own site-packages through
    a .pth file, after its own, as pipx would install them from PyPI."""
    source, wheels, venv = (Path(workdir, name) for name in ("source", "wheels", "venv"))
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "fetch_token.py"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "wechat_token", source / "wechat_token", ignore=_bytecode)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    offline = ["--no-build-isolation", "--no-deps", "--no-index"]  # this setuptools
    venv_python = str(venv / "bin" / "python")
    steps = [
        [*pip, "wheel", *offline, "--wheel-dir", str(wheels), str(source)],
        [python, "-m", "venv", "--without-pip", str(venv)],
    ]
    for step in steps:
        done = probe(step, env, workdir)
        if done.returncode:
            raise CommandFailed(f"cannot install wechat-token: {' '.join(step)}\n{done.stderr}")
    (wheel,) = wheels.glob("*.whl")
    done = probe([*pip, "--python", venv_python, "install", *offline, str(wheel)], env, workdir)
    if done.returncode:
        raise CommandFailed(f"cannot install the wheel:\n{done.stderr}")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    theirs = probe([python, "-c", purelib], env, workdir).stdout.strip()
    ours = probe([venv_python, "-c", purelib], env, workdir).stdout.strip()
    Path(ours, "deps-from-the-benchmark.pth").write_text(theirs + "\n")
    return venv


def _bytecode(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def in_process(
    python: str, workdir: str, base: str, env: dict[str, str], server: FakeWeChat
) -> tuple[float, int]:
    """What a whole command cannot show: a warm TokenCache.get() in µs, and the requests
    that a crowd on an empty cache makes."""
    values = {"appid": APPID, "secret": SECRET, "base": base}
    warm = WARM_GET_SNIPPET.format(cache=os.path.join(workdir, "warm.json"), **values)
    done = probe([python, "-c", warm], env, workdir)
    if done.returncode:
        raise CommandFailed(f"TokenCache.get() failed:\n{done.stderr}")
    crowd = CROWD_SNIPPET.format(
        cache=os.path.join(workdir, "crowd.json"), threads=THREADS, **values
    )
    before = len(server.requests)
    procs = [
        subprocess.Popen([python, "-c", crowd], env=env, cwd=workdir) for _ in range(PROCESSES)
    ]
    try:
        codes = [proc.wait(timeout=TIMEOUT) for proc in procs]
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise CommandFailed(f"the crowd was still running after {TIMEOUT} s") from None
    if any(codes):
        raise CommandFailed(f"a process of the crowd failed: exit statuses {codes}")
    return float(done.stdout), len(server.requests) - before


def machine(python: str, env: dict[str, str], workdir: str) -> list[str]:
    """The date, machine, Python and libcurl: what the numbers depend on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    code = "import sys, pycurl; print(sys.version.split()[0]); print(pycurl.version)"
    version, _, curl = probe([python, "-c", code], env, workdir).stdout.strip().partition("\n")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"{now} on {cpu} ({os.cpu_count()} cores), {platform.platform()}",
        f"Python {version}; {curl}",
    ]


def medians(results: dict[str, list[Run]]) -> dict[str, float]:
    return {name: statistics.median(r.wall_ms for r in runs) for name, runs in results.items()}


def table(results: dict[str, list[Run]], markdown: bool) -> list[str]:
    """One row per case: median wall time, its ratios, median peak RSS."""
    ms = medians(results)
    rows = [["case", "median ms", "× python -c pass", "× minimal pycurl", "peak RSS MiB"]]
    for name, runs in results.items():
        rss = statistics.median(r.rss_mib for r in runs)
        vs_min = f"{ms[name] / ms[MINIMAL]:.2f}" if MINIMAL in ms else "-"
        rows.append([name, f"{ms[name]:.1f}", f"{ms[name] / ms[PASS]:.2f}", vs_min, f"{rss:.1f}"])
    return _markdown(rows, "---:") if markdown else _aligned(rows)


def targets(results: dict[str, list[Run]], warm_us: float, made: int) -> list[Verdict]:
    """Met or not, for each target: on median wall time, then the in-process two."""
    ms = medians(results)
    verdicts = []
    for left, factor, right in TARGETS:
        target = f"{left} ≤ {factor:g} × {right}"
        if left not in ms or right not in ms:
            verdicts.append(Verdict(None, target, f"no {right if left in ms else left} row"))
            continue
        ratio = ms[left] / ms[right]
        result = f"{ratio:.2f} × ({ms[left]:.1f} vs {factor * ms[right]:.1f} ms)"
        verdicts.append(Verdict(ratio <= factor, target, result))
    warm = f"warm TokenCache.get() ≤ {WARM_GET_TARGET_US} µs"
    verdicts.append(Verdict(warm_us <= WARM_GET_TARGET_US, warm, f"{warm_us:.2f} µs"))
    crowd = f"{THREADS} threads × {PROCESSES} processes on an empty cache: one request"
    verdicts.append(Verdict(made == 1, crowd, f"{made} made"))
    return verdicts


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def _markdown(rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|---|" + f"{align}|" * (len(rows[0]) - 1))
    return lines


def report(
    header: list[str], results: dict[str, list[Run]], notes: list[str], verdicts: list[Verdict]
) -> list[str]:
    shown = {True: "met", False: "MISSED", None: "not measured"}
    lines = [*header, "", *table(results, False), *notes, "", "targets:"]
    return lines + [f"  {shown[v.met]:<12}  {v.target}: {v.result}" for v in verdicts]


def report_markdown(
    header: list[str], results: dict[str, list[Run]], notes: list[str], verdicts: list[Verdict]
) -> list[str]:
    shown = {True: "met", False: "**missed**", None: "not measured"}
    rows = [["target", "result"], *([v.target, f"{shown[v.met]}: {v.result}"] for v in verdicts)]
    return [
        "Measured " + "; ".join(header) + ".",
        "",
        *table(results, True),
        "",
        *(f"- {note}" for note in notes),
        *([""] if notes else []),
        *_markdown(rows, "---"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per case (30)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown, to paste")
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter to measure (this one)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    python = os.path.abspath(shutil.which(args.python) or args.python)  # the cwd will change
    ca = trustme.CA()
    server = FakeWeChat(ca.issue_cert("127.0.0.1", "localhost")).start()
    try:
        with tempfile.TemporaryDirectory(prefix="wechat_token-bench-") as workdir:
            ca_file = os.path.join(workdir, "fake-ca.pem")
            ca.cert_pem.write_to_path(ca_file)
            env = child_env(workdir)
            venv = install_wheel(python, workdir, env)
            venv_python = str(venv / "bin" / "python")
            env["PYTHONPATH"] = certifi_trusting(ca_file, workdir, venv_python)
            cases, notes = build_cases(venv, workdir, server.base_url, ca_file, env)
            spawner = Spawner(workdir, env)
            try:
                floor = spawner.run([shutil.which("true") or "/bin/true"]).rss_mib
                results = measure(spawner, cases, args.runs)
            finally:
                spawner.close()
            warm_us, made = in_process(venv_python, workdir, server.base_url, env, server)
            header = machine(venv_python, env, workdir)
    except CommandFailed as error:
        sys.exit(f"benchmark: {error}")
    finally:
        server.stop()
    header.append(
        f"median of {args.runs} interleaved runs per case; peak RSS of /bin/true: {floor:.1f} MiB"
    )
    verdicts = targets(results, warm_us, made)
    lines = (report_markdown if args.markdown else report)(header, results, notes, verdicts)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of fetch_token.py against the floors that no pycurl port can beat.

Starts the fake WeChat (tests/fake_wechat.py) on 127.0.0.1 and measures, as medians of
interleaved rounds: `python -c pass`, a cache hit, a fresh fetch, a minimal pycurl
snippet, and the same fetch with requests and with the PHP example (bugs fixed) when
those are installed; also the floor of a cache hit, the standard-library work that any
hit must do. Every Python contender finds its CA bundle the default way, through
certifi: a copy of certifi that trusts the fake's CA comes first on PYTHONPATH.
A measurement, not a test: it exits 0 whatever the targets say, and non-zero only when
a measured command fails. Run it from the project's folder:

    .venv/bin/python tests/benchmark.py [--runs N] [--markdown] [--python PATH]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_wechat import APPID, SECRET, FakeWeChat, certifi_trusting

SCRIPT = str(Path(__file__).resolve().parent.parent / "fetch_token.py")
TIMEOUT = 30  # seconds: a command still running then is killed, and the benchmark fails
PASS, CACHE_HIT, FRESH = "python -c pass", "cache hit", "fresh fetch"
CACHE_HIT_M, FRESH_M = "cache hit, python -m", "fresh fetch, python -m"
CACHE_HIT_I, FRESH_I = "cache hit, fetch-token", "fresh fetch, fetch-token"  # pip-installed
MINIMAL, REQUESTS, PHP = "minimal pycurl", "requests", "PHP curl (fixed)"
HIT_FLOOR = "stdlib floor of a hit"
TARGETS = (  # left <= factor * right, in median wall time (ms), for the installed command
    (CACHE_HIT_I, 1.2, HIT_FLOOR),
    (FRESH_I, 1.15, MINIMAL),
    (FRESH_I, 0.6, REQUESTS),
)
WARM_GET_TARGET_US = 20  # a warm TokenCache.get(), in microseconds

# Linux charges a child, when it calls exec, with the peak RSS of the process it was
# spawned from: spawned from this process (trustme, the fake server) every command would
# seem to use this process's memory. So a Python at its smallest (-I -S, builtin modules
# only) spawns them, and reports each one's exit code, wall time (ns) and ru_maxrss (KiB).
SPAWNER = """
import _signal, posix, sys, time
_signal.signal(_signal.SIGALRM, lambda *_: posix.kill(pid, 9))
W = posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC
for line in sys.stdin:
    out, err, *argv = line.rstrip("\\n").split("\\0")
    files = [(posix.POSIX_SPAWN_OPEN, 0, "/dev/null", posix.O_RDONLY, 0),
             (posix.POSIX_SPAWN_OPEN, 1, out, W, 0o600),
             (posix.POSIX_SPAWN_OPEN, 2, err, W, 0o600)]
    start = time.perf_counter_ns()
    pid = posix.posix_spawn(argv[0], argv, posix.environ, file_actions=files)
    _signal.alarm(TIMEOUT)
    _, status, usage = posix.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
    _signal.alarm(0)
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
# secret, print. fetch_token.py cannot be faster than this on a hit.
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
secret = config["wechat"]["appsecret"]
assert entry["secret_sha256"] == hashlib.sha256(b"fetch_token cache:" + secret.encode()).hexdigest()
print(entry["access_token"])
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
import statistics, sys, time
from fetch_token import TokenCache
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

# 16 threads in each of 8 processes ask at once, on an empty cache.
CROWD_SNIPPET = """\
import threading
from fetch_token import TokenCache
tokens = TokenCache({appid!r}, {secret!r}, cache_file={cache!r}, api_bases=[{base!r}])
threads = [threading.Thread(target=tokens.get) for _ in range(16)]
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


class CommandFailed(Exception):
    """A measured command failed: its timings would mean nothing."""


class Spawner:
    """The small process that runs every measured command (see SPAWNER)."""

    def __init__(self, workdir: str, env: dict[str, str]) -> None:
        self.out, self.err = os.path.join(workdir, "out.txt"), os.path.join(workdir, "err.txt")
        code = SPAWNER.replace("TIMEOUT", str(TIMEOUT))
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code],
            cwd=workdir,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, argv: list[str]) -> Run:
        """Run `argv` once, in the working folder, and collect what it did."""
        assert self.proc.stdin
        assert self.proc.stdout
        self.proc.stdin.write("\0".join([self.out, self.err, *argv]) + "\n")
        self.proc.stdin.flush()
        fields = self.proc.stdout.readline().split()
        if len(fields) != 3:
            raise CommandFailed(f"the spawner died running {' '.join(argv)}")
        code, wall_ns, rss_kib = map(int, fields)
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
    """A warm-up round (it fills the cache), then `runs` rounds, each in a rotated order."""
    first = {case.name: run_case(spawner, case).out for case in cases}
    results: dict[str, list[Run]] = {case.name: [] for case in cases}
    for round_ in range(runs):
        shift = round_ % len(cases)  # so that no case always runs first
        for case in cases[shift:] + cases[:shift]:
            expected = first[case.name] if case.same_output else None
            results[case.name].append(run_case(spawner, case, expected))
    return results


def probe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a quick command to learn about the machine (not measured)."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def child_env(workdir: str) -> dict[str, str]:
    """This environment without WeChat settings, proxies and overrides; home in `workdir`."""
    dropped = (
        *("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"),  # not certifi
        "PYTHONDONTWRITEBYTECODE",  # `python -m` should cache bytecode, as it does by default
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
    python: str, workdir: str, base: str, ca: str, env: dict[str, str]
) -> tuple[list[Case], list[str]]:
    """The cases this machine can run, and a note for each one it cannot."""
    values = {"appid": APPID, "secret": SECRET, "base": base, "ca": ca}
    config = Path(workdir, "config.ini")  # the usual setup: config.ini, 0600, in the cwd
    config.write_text(f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\n")
    config.chmod(0o600)
    cache = ["--cache-file", os.path.join(workdir, "cache.json")]
    tool = [python, SCRIPT, "--api-base", base]  # no --cacert: certifi, as users have it
    shutil.copy(SCRIPT, workdir)  # `python -m fetch_token` finds it in the current folder
    as_module = [python, "-m", "fetch_token", "--api-base", base]  # bytecode cached
    installed = [install_wheel(python, workdir, env), "--api-base", base]
    usage = probe([python, SCRIPT, "--help"], env).stdout
    options = sorted(set(re.findall(r"--[a-z][a-z-]+", usage)) - {"--help"})
    floor = HIT_FLOOR_SNIPPET.format(options=options, cache=cache[1])
    Path(workdir, "hit_floor.py").write_text(floor)
    Path(workdir, "minimal.py").write_text(MINIMAL_SNIPPET.format(**values))
    cases = [
        Case(PASS, [python, "-c", "pass"], prints_token=False),
        Case(CACHE_HIT, [*tool, *cache], same_output=True),
        Case(CACHE_HIT_M, [*as_module, *cache], same_output=True),
        Case(CACHE_HIT_I, [*installed, *cache], same_output=True),
        Case(HIT_FLOOR, [python, os.path.join(workdir, "hit_floor.py")]),
        Case(FRESH, [*tool, "--no-cache"]),
        Case(FRESH_M, [*as_module, "--no-cache"]),
        Case(FRESH_I, [*installed, "--no-cache"]),
        Case(MINIMAL, [python, os.path.join(workdir, "minimal.py")]),
    ]
    notes = []
    if probe([python, "-c", "import requests"], env).returncode == 0:
        Path(workdir, "with_requests.py").write_text(REQUESTS_SNIPPET.format(**values))
        cases.append(Case(REQUESTS, [python, os.path.join(workdir, "with_requests.py")]))
    else:
        notes.append(f"{REQUESTS}: skipped, {python} cannot import requests")
    php = shutil.which("php")
    if php and "curl" in probe([php, "-m"], env).stdout.split():
        quoted = {key: php_string(value) for key, value in values.items()}
        Path(workdir, "token.php").write_text(PHP_SNIPPET.format(**quoted))
        cases.append(Case(PHP, [php, os.path.join(workdir, "token.php")]))
    else:
        notes.append(f"{PHP}: skipped, no php with the curl extension on PATH")
    return cases, notes


def install_wheel(python: str, workdir: str, env: dict[str, str]) -> str:
    """`fetch-token`, installed from the project's wheel into a venv, as pip or pipx would.

    Built and installed offline: the venv gets pycurl and certifi from `python`'s own
    site-packages through a .pth file, as pipx would install them from PyPI."""
    wheels, venv = os.path.join(workdir, "wheels"), os.path.join(workdir, "venv")
    root = os.path.dirname(SCRIPT)
    steps = [
        [
            python,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "-w",
            wheels,
            root,
        ],
        [python, "-m", "venv", "--without-pip", venv],
    ]
    for step in steps:
        done = probe(step, env)
        if done.returncode:
            raise CommandFailed(f"cannot install fetch-token: {' '.join(step)}\n{done.stderr}")
    (wheel,) = Path(wheels).glob("*.whl")
    venv_python = os.path.join(venv, "bin", "python")
    done = probe(
        [
            python,
            "-m",
            "pip",
            "--python",
            venv_python,
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            str(wheel),
        ],
        env,
    )
    if done.returncode:
        raise CommandFailed(f"cannot install the wheel:\n{done.stderr}")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    theirs = probe([python, "-c", purelib], env).stdout.strip()
    ours = probe([venv_python, "-c", purelib], env).stdout.strip()
    Path(ours, "deps-from-the-benchmark.pth").write_text(theirs + "\n")
    return os.path.join(venv, "bin", "fetch-token")


def in_process(
    python: str, workdir: str, base: str, env: dict[str, str], server: FakeWeChat
) -> list[str]:
    """The rows a whole command cannot show: a warm TokenCache.get(), and a crowd."""
    values = {"appid": APPID, "secret": SECRET, "base": base}
    warm = WARM_GET_SNIPPET.format(cache=os.path.join(workdir, "warm.json"), **values)
    done = probe([python, "-c", warm], env)
    if done.returncode:
        raise CommandFailed(f"TokenCache.get() failed:\n{done.stderr}")
    micro = float(done.stdout)
    verdict = "PASS" if micro <= WARM_GET_TARGET_US else "FAIL"
    crowd = CROWD_SNIPPET.format(cache=os.path.join(workdir, "crowd.json"), **values)
    before = len(server.requests)
    procs = [subprocess.Popen([python, "-c", crowd], env=env, cwd=workdir) for _ in range(8)]
    codes = [proc.wait(timeout=TIMEOUT) for proc in procs]
    made = len(server.requests) - before
    return [
        f"{verdict}  warm TokenCache.get() ≤ {WARM_GET_TARGET_US} µs: {micro:.2f} µs "
        "(median of 7 rounds of 100,000 calls)",
        f"{'PASS' if made == 1 and codes == [0] * 8 else 'FAIL'}  16 threads × 8 processes "
        f"on an empty cache make one request: {made} made",
    ]


def machine(python: str, env: dict[str, str], runs: int, floor: float) -> list[str]:
    """The date, machine, Python and libcurl: what the numbers depend on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    code = "import sys, pycurl; print(sys.version.split()[0]); print(pycurl.version)"
    version, _, curl = probe([python, "-c", code], env).stdout.strip().partition("\n")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"{now} on {cpu} ({os.cpu_count()} cores), {platform.platform()}",
        f"Python {version}; {curl}",
        f"median of {runs} interleaved runs per case; peak RSS of /bin/true here: {floor:.1f} MiB",
    ]


def table(results: dict[str, list[Run]], markdown: bool) -> list[str]:
    """One row per case: median wall time, its ratios, median peak RSS."""
    ms = {name: statistics.median(r.wall_ms for r in runs) for name, runs in results.items()}
    rows = [["case", "median ms", "× python -c pass", "× minimal pycurl", "peak RSS MiB"]]
    for name, runs in results.items():
        rss = statistics.median(r.rss_mib for r in runs)
        vs_min = f"{ms[name] / ms[MINIMAL]:.2f}" if MINIMAL in ms else "-"
        rows.append([name, f"{ms[name]:.1f}", f"{ms[name] / ms[PASS]:.2f}", vs_min, f"{rss:.1f}"])
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + "---|" + "---:|" * (len(rows[0]) - 1))
        return lines
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def targets(results: dict[str, list[Run]]) -> list[str]:
    """PASS, FAIL or SKIP for each target on median wall time."""
    lines = []
    for left, factor, right in TARGETS:
        text = f"{left} ≤ {factor:g} × {right}"
        if left not in results or right not in results:
            lines.append(f"SKIP  {text} (no {right if left in results else left} row)")
            continue
        got, base = (statistics.median(r.wall_ms for r in results[name]) for name in (left, right))
        verdict = "PASS" if got <= factor * base else "FAIL"
        lines.append(f"{verdict}  {text}: {got:.1f} vs {factor * base:.1f} ms ({got / base:.2f} ×)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per case (30)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    python = os.path.abspath(shutil.which(args.python) or args.python)  # the cwd will change
    ca = trustme.CA()
    server = FakeWeChat(ca.issue_cert("127.0.0.1", "localhost")).start()
    try:
        with tempfile.TemporaryDirectory(prefix="fetch_token-bench-") as workdir:
            ca_file = os.path.join(workdir, "fake-ca.pem")
            ca.cert_pem.write_to_path(ca_file)
            env = child_env(workdir)
            # The certifi copy, and the project's folder for `python -m fetch_token`.
            certifi_copy = certifi_trusting(ca_file, workdir, python)
            env["PYTHONPATH"] = certifi_copy  # not the project's folder: see build_cases
            cases, notes = build_cases(python, workdir, server.base_url, ca_file, env)
            spawner = Spawner(workdir, env)
            try:
                floor = spawner.run([shutil.which("true") or "/bin/true"]).rss_mib
                results = measure(spawner, cases, args.runs)
            finally:
                spawner.close()
            notes += in_process(python, workdir, server.base_url, env, server)
            header = machine(python, env, args.runs, floor)
    except CommandFailed as error:
        sys.exit(f"benchmark: {error}")
    finally:
        server.stop()
    if args.markdown:
        bullets = [f"- {line}" for line in [*notes, *targets(results)]]
        print("\n".join(["; ".join(header), "", *table(results, True), "", *bullets]))
    else:
        print("\n".join([*header, "", *table(results, False), *notes, "", "targets:"]))
        print("\n".join(f"  {line}" for line in targets(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

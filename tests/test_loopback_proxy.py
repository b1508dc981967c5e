"""The loopback proxy itself, driven by real pycurl with TLS verification on.

The command's proxy tests (test_proxy.py) rely on what these show: a CONNECT through it reaches
the fake, its log says so, and --auth, --deny and --to fail the ways a real proxy does.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pycurl
import pytest
import trustme

from fake_wechat import APPID, SECRET, FakeWeChat
from loopback_proxy import Proxy, running_proxy, unused_port

QUERY = "/cgi-bin/token?" + urlencode(
    {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
)
# A proxy that answers CONNECT with an error: recent libcurl (curl/curl#21084, 2026) says
# CURLE_COULDNT_CONNECT (7), older ones CURLE_RECV_ERROR (56). HTTP_CONNECTCODE is what
# tells it apart from a proxy that cannot be reached (0 there).
REFUSED_BY_PROXY = {pycurl.E_COULDNT_CONNECT, pycurl.E_RECV_ERROR}


def refusal(status: int) -> set[str]:
    """libcurl's message for a CONNECT answered with `status`: today's, and an older one."""
    return {
        f"CONNECT tunnel failed, response {status}",
        f"Received HTTP code {status} from proxy after CONNECT",
    }


class Outcome:
    """What one libcurl transfer through the proxy ended with."""

    def __init__(self, curl: pycurl.Curl, body: bytes, error: pycurl.error | None) -> None:
        self.status = curl.getinfo(pycurl.RESPONSE_CODE)
        self.connect_code = curl.getinfo(pycurl.HTTP_CONNECTCODE)
        self.body = body
        args: tuple[object, ...] = error.args if error else (0, "")  # (CURLcode, message)
        self.errno = int(str(args[0]))
        self.message = str(args[1])

    def __repr__(self) -> str:  # shown by a failing assert
        return f"Outcome({self.status}, connect {self.connect_code}, {self.errno} {self.message!r})"


def fetch(url: str, ca_file: str, proxy: str, userpwd: str | None = None) -> Outcome:
    """GET `url` through `proxy` with libcurl, verifying the server against `ca_file`."""
    body = BytesIO()
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.CAINFO, ca_file)  # verification stays on: the default, made explicit
    curl.setopt(pycurl.SSL_VERIFYPEER, 1)
    curl.setopt(pycurl.SSL_VERIFYHOST, 2)
    curl.setopt(pycurl.PROXY, proxy)
    curl.setopt(pycurl.NOPROXY, "")  # a no_proxy=127.0.0.1 in the environment must not bypass it
    if userpwd is not None:
        curl.setopt(pycurl.PROXYUSERPWD, userpwd)
    curl.setopt(pycurl.CONNECTTIMEOUT, 10)
    curl.setopt(pycurl.TIMEOUT, 20)
    curl.setopt(pycurl.WRITEDATA, body)
    try:
        curl.perform()
        error = None
    except pycurl.error as caught:
        error = caught
    outcome = Outcome(curl, body.getvalue(), error)
    curl.close()
    return outcome


def host_port(url: str) -> str:
    return urlsplit(url).netloc


def with_credentials(proxy: Proxy, userinfo: str) -> str:
    return f"http://{userinfo}@127.0.0.1:{proxy.port}"


@pytest.fixture
def token_url(fake: FakeWeChat) -> str:
    return fake.base_url + QUERY


def test_a_token_through_the_tunnel(fake: FakeWeChat, ca_file: str, token_url: str) -> None:
    with running_proxy() as proxy:
        got = fetch(token_url, ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno, got.status, got.connect_code) == (0, 200, 200), got
    assert b'"access_token"' in got.body
    assert log == [
        {"method": "CONNECT", "target": host_port(fake.base_url), "status": 200, "auth": None}
    ]
    assert [(r.method, r.path, r.query["appid"]) for r in fake.requests] == [
        ("GET", "/cgi-bin/token", APPID)
    ]


def test_it_starts_from_any_folder(
    fake: FakeWeChat, ca_file: str, token_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with running_proxy("--port", str(unused_port())) as proxy:
        assert fetch(token_url, ca_file, proxy.url).status == 200


def test_auth_required_without_credentials(fake: FakeWeChat, ca_file: str, token_url: str) -> None:
    with running_proxy("--auth", "u:p") as proxy:
        got = fetch(token_url, ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno in REFUSED_BY_PROXY, got.connect_code) == (True, 407), got
    assert got.message in refusal(407)
    assert [(e["status"], e["auth"]) for e in log] == [(407, None)]
    assert fake.requests == []


@pytest.mark.parametrize("way", ["PROXYUSERPWD", "in the URL"])
def test_auth_with_credentials(fake: FakeWeChat, ca_file: str, token_url: str, way: str) -> None:
    with running_proxy("--auth", "u:p") as proxy:
        if way == "PROXYUSERPWD":
            got = fetch(token_url, ca_file, proxy.url, userpwd="u:p")
        else:
            got = fetch(token_url, ca_file, with_credentials(proxy, "u:p"))
        log = proxy.log(at_least=1)
    assert (got.errno, got.status, got.connect_code) == (0, 200, 200), got
    assert [(e["method"], e["status"], e["auth"]) for e in log] == [("CONNECT", 200, "u:p")]
    assert len(fake.requests) == 1


def test_auth_with_wrong_credentials(fake: FakeWeChat, ca_file: str, token_url: str) -> None:
    with running_proxy("--auth", "u:p") as proxy:
        got = fetch(token_url, ca_file, with_credentials(proxy, "u:wrong"))
        log = proxy.log(at_least=1)
    assert (got.errno in REFUSED_BY_PROXY, got.connect_code) == (True, 407), got
    assert [(e["status"], e["auth"]) for e in log] == [(407, "u:wrong")]
    assert fake.requests == []


def test_407_challenges_for_basic() -> None:
    with running_proxy("--auth", "u:p") as proxy:
        head = raw_request(proxy, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
    assert b'\r\nProxy-Authenticate: Basic realm="loopback"\r\n' in head


def test_deny(fake: FakeWeChat, ca_file: str, token_url: str) -> None:
    with running_proxy("--deny") as proxy:
        got = fetch(token_url, ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno in REFUSED_BY_PROXY, got.connect_code) == (True, 403), got
    assert got.message in refusal(403)
    assert [(e["target"], e["status"]) for e in log] == [(host_port(fake.base_url), 403)]
    assert fake.requests == []


def test_unreachable_target(ca_file: str) -> None:
    target = f"127.0.0.1:{unused_port()}"
    with running_proxy() as proxy:
        got = fetch(f"https://{target}{QUERY}", ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno in REFUSED_BY_PROXY, got.connect_code) == (True, 502), got
    assert got.message in refusal(502)
    assert [(e["target"], e["status"]) for e in log] == [(target, 502)]


def test_proxy_not_running(fake: FakeWeChat, ca_file: str, token_url: str) -> None:
    got = fetch(token_url, ca_file, f"http://127.0.0.1:{unused_port()}")
    assert (got.errno, got.connect_code) == (pycurl.E_COULDNT_CONNECT, 0), got
    assert fake.requests == []


@pytest.fixture(scope="module")
def impostor() -> Iterator[FakeWeChat]:
    """The fake again, but with a certificate from a CA the client does not trust."""
    with FakeWeChat(trustme.CA().issue_cert("127.0.0.1", "localhost")) as server:
        yield server


def test_impostor_behind_the_proxy_is_refused(
    fake: FakeWeChat, impostor: FakeWeChat, ca_file: str, token_url: str
) -> None:
    impostor.reset()
    with running_proxy("--to", host_port(impostor.base_url)) as proxy:
        got = fetch(token_url, ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno, got.connect_code) == (pycurl.E_PEER_FAILED_VERIFICATION, 200), got
    assert "certificate" in got.message
    # The tunnel was made, to the impostor, and nothing was sent through it.
    assert [(e["target"], e["status"]) for e in log] == [(host_port(fake.base_url), 200)]
    assert impostor.connections == 1
    assert impostor.requests == []
    assert fake.requests == []


def test_other_methods_are_not_forwarded(fake: FakeWeChat, ca_file: str) -> None:
    plain = f"http://{host_port(fake.base_url)}/cgi-bin/token"
    with running_proxy() as proxy:
        got = fetch(plain, ca_file, proxy.url)
        log = proxy.log(at_least=1)
    assert (got.errno, got.status) == (0, 405), got
    assert [(e["method"], e["target"], e["status"]) for e in log] == [("GET", plain, 405)]
    assert fake.connections == 0


def test_garbage_gets_400() -> None:
    with running_proxy() as proxy:
        head = raw_request(proxy, b"garbage\r\n\r\n")
        log = proxy.log(at_least=1)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert [e["status"] for e in log] == [400]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_it_cleanly(
    fake: FakeWeChat, ca_file: str, token_url: str, signum: signal.Signals
) -> None:
    with running_proxy() as proxy:
        assert fetch(token_url, ca_file, proxy.url).status == 200
        # An open, idle tunnel must not hold the exit up.
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as tunnel:
            target = host_port(fake.base_url).encode()
            tunnel.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
            assert tunnel.recv(1024).startswith(b"HTTP/1.1 200 ")
            code = proxy.stop(signum, timeout=10)
        assert (code, proxy.stderr) == (0, "")
        assert len(proxy.log()) == 2


def test_start_failure_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="did not start"), running_proxy("--port", str(port)):
            pass


def raw_request(proxy: Proxy, request: bytes) -> bytes:
    """Send `request` to the proxy as is; its answer, up to the end of the headers."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer

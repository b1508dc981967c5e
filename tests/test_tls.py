"""Verification stays on: every bad certificate is refused before the request is sent."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import threading
from collections.abc import Iterator

import certifi
import pytest
import trustme

import wechat_token

from conftest import CLI
from fake_wechat import APPID, SECRET, FakeWeChat

# The hint line after each refusal, by what was wrong with the certificate
UNTRUSTED = (
    "behind a corporate proxy that re-signs TLS, give its CA with --cacert; "
    "elsewhere, something is posing as WeChat: do not turn verification off"
)
CLOCK = "check this machine's clock and time zone (date -u); if it is right, try later"

PAST = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
FUTURE = datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def bad_servers(ca: trustme.CA) -> Iterator[dict[str, FakeWeChat]]:
    """Fakes whose certificates must each be refused by a client that trusts `ca`."""
    certs = {
        "untrusted": trustme.CA().issue_cert("127.0.0.1"),  # from a CA nobody trusts
        "wrong host": ca.issue_cert("example.org"),  # trusted CA, another name
        "expired": ca.issue_cert("127.0.0.1", not_before=PAST, not_after=PAST),
        "not yet valid": ca.issue_cert("127.0.0.1", not_before=FUTURE, not_after=FUTURE),
    }
    servers = {name: FakeWeChat(cert).start() for name, cert in certs.items()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize(
    ("name", "message", "hint"),
    [
        (
            "untrusted",
            "TLS: the certificate of 127.0.0.1 is not from a CA in {ca} (untrusted CA)",
            UNTRUSTED,
        ),
        (
            "wrong host",
            "TLS: the certificate is not for 127.0.0.1 (wrong hostname)",
            "check --api-base: it must name the host the certificate is for",
        ),
        ("expired", "TLS: the certificate of 127.0.0.1 has expired", CLOCK),
        ("not yet valid", "TLS: the certificate of 127.0.0.1 is not valid yet", CLOCK),
    ],
)
def test_bad_certificate_refused_and_nothing_sent(
    cli: CLI, bad_servers: dict[str, FakeWeChat], name: str, message: str, hint: str
) -> None:
    server = bad_servers[name]
    result = cli.main("--api-base", server.base_url, "--cacert", cli.ca_file, base=False)
    expected = message.format(ca=cli.ca_file) + "; nothing was sent"
    assert (result.code, result.out, result.err) == (3, "", f"error: {expected}\nhint: {hint}\n")
    assert server.requests == []  # the secret never left this process


def test_tls_refusal_as_json_through_the_real_command(
    cli: CLI, bad_servers: dict[str, FakeWeChat]
) -> None:
    server = bad_servers["expired"]
    result = cli.run("--json", "--api-base", server.base_url, "--cacert", cli.ca_file, base=False)
    assert result.code == 3
    assert json.loads(result.out) == {
        "error": "TLS: the certificate of 127.0.0.1 has expired; nothing was sent",
        "hint": CLOCK,
        "kind": "tls",
    }


def test_certifi_is_the_default_ca_bundle(cli: CLI, fake: FakeWeChat) -> None:
    """Without --cacert, certifi's public CAs decide: they do not vouch for the fake."""
    result = cli.main("--api-base", fake.base_url, base=False)
    assert result.code == 3
    assert result.err == (
        f"error: TLS: the certificate of 127.0.0.1 is not from a CA in {certifi.where()} "
        f"(untrusted CA); nothing was sent\nhint: {UNTRUSTED}\n"
    )
    assert fake.requests == []


def test_certificate_for_localhost_works_by_name(cli: CLI, fake: FakeWeChat) -> None:
    """The fake's certificate names localhost too: host verification matches names."""
    base = fake.base_url.replace("127.0.0.1", "localhost")
    assert cli.main("--api-base", base, "--cacert", cli.ca_file, base=False).code == 0


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:{port}",  # plain http would send the secret in clear
        "ftp://127.0.0.1:{port}",
        "127.0.0.1:{port}",
        "https://",
        "https://127.0.0.1:{port}/?x=1",
    ],
)
def test_anything_but_an_https_url_is_refused_before_connecting(
    cli: CLI, fake: FakeWeChat, base: str
) -> None:
    base = base.format(port=fake.base_url.rsplit(":", 1)[1])
    result = cli.main("--api-base", base, "--cacert", cli.ca_file, base=False)
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"error: --api-base: '{base}' is not an https:// URL; refusing\n"
        "hint: write it like https://api.weixin.qq.com, without a path\n"
    )
    assert fake.requests == []


def test_only_https_is_spoken_even_when_a_caller_skips_the_checks(fake: FakeWeChat) -> None:
    """Every entry point refuses http:// where it enters (config); the one request, below
    that check, has libcurl refuse it too."""
    from wechat_token.endpoints import TOKEN
    from wechat_token.fetch import fetch

    http_base = fake.base_url.replace("https://", "http://")
    with pytest.raises(wechat_token.TransportError, match=r"curl error 1\)$"):
        fetch(TOKEN, APPID, SECRET, http_base)
    assert fake.requests == []


def test_ca_bundle_that_is_not_pem_is_a_configuration_error(cli: CLI, tmp_path: object) -> None:
    with open("not-a-ca.pem", "w") as file:
        file.write("hello\n")
    result = cli.main("--cacert", "not-a-ca.pem")
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: cannot use CA bundle not-a-ca.pem: ")


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A server that answers in plain HTTP where TLS is expected (a wrong port, say)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)

    def answer_once() -> None:
        with contextlib.suppress(OSError), server.accept()[0] as conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer_once)
    thread.start()
    yield server.getsockname()[1]
    thread.join(10)
    server.close()


def test_no_tls_at_all_is_a_tls_failure_that_names_the_port(cli: CLI, plain_http_port: int) -> None:
    """Issue 18, item 13: the hint said something may be posing as WeChat."""
    result = cli.main("--api-base", f"https://127.0.0.1:{plain_http_port}", base=False)
    assert (result.code, result.out) == (3, "")
    error, hint = result.err.splitlines()
    assert error.startswith("error: 127.0.0.1 answered without TLS (plain http?): ")
    assert error.endswith("wrong version number")
    assert hint == "hint: check the port in the API base: it must be the server's https port"

"""A real HTTP proxy on 127.0.0.1 for the tests: CONNECT tunnels only, standard library only.

libcurl reaches an https:// URL through an http:// proxy by sending `CONNECT host:port`;
once the proxy answers 200 it copies bytes both ways, so TLS stays end to end between
the client and the server and the proxy never sees the request. That is all this does:

    python tests/loopback_proxy.py [--port N] [--auth USER:PASSWORD] [--deny] [--to HOST:PORT]

It prints `listening on 127.0.0.1:PORT` once ready, then one JSON line per request:
{"method": "CONNECT", "target": "127.0.0.1:4443", "status": 200, "auth": "user:pass"}
(auth is null without Proxy-Authorization). SIGTERM or Ctrl-C stops it, exit status 0.

--auth    requires those Basic credentials, else 407 Proxy Authentication Required
--deny    refuses every CONNECT with 403 Forbidden (after --auth, as a real proxy would)
--to      tunnels every CONNECT to HOST:PORT instead of the requested address, so a test
          can put an impostor behind the proxy; the log still names the requested target
An unreachable target gets 502 Bad Gateway; a method other than CONNECT gets 405.

Tests start it with `running_proxy(...)`, which runs it as its own process.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import http.client
import json
import queue
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

TIMEOUT = 30.0  # seconds: every socket operation of the proxy, and an idle tunnel
BUFFER = 65536

# stdout carries the log and stderr the errors, from many threads: one writer at a time.
# On exit the main thread keeps the lock, so no daemon thread is inside a write while
# Python shuts down (that aborts the interpreter with "could not acquire lock").
_OUTPUT_LOCK = threading.Lock()


def _emit(stream: Any, line: str) -> None:
    with _OUTPUT_LOCK:
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # whoever read our output is gone: keep tunnelling regardless


# -- the proxy -------------------------------------------------------------------------


class _Settings(argparse.Namespace):
    port: int
    auth: str | None
    deny: bool
    to: tuple[str, int] | None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True  # an open tunnel must not keep the process alive on SIGTERM
    allow_reuse_address = True  # --port N can be used again at once after a stop

    def __init__(self, settings: _Settings) -> None:
        super().__init__(("127.0.0.1", settings.port), _Handler)
        self.settings = settings

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]  # one line, not a traceback: the tests read stderr
        _emit(sys.stderr, f"error with {client_address}: {error!r}")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = TIMEOUT  # applied to the client's socket by StreamRequestHandler
    # Unbuffered: reading the headers must not swallow the first bytes of the tunnel.
    rbufsize = 0

    def handle(self) -> None:
        line = self.rfile.readline(8193)
        if not line:
            return  # connected and left without a word
        words = line.decode("latin-1").split()
        try:
            headers = http.client.parse_headers(self.rfile)
        except http.client.HTTPException:
            headers = None
        if len(words) != 3 or headers is None:
            method, target = [*words, "", ""][:2]
            return self.answer(HTTPStatus.BAD_REQUEST, method, target, None)
        method, target, _version = words
        auth = _basic_credentials(headers.get("Proxy-Authorization", ""))
        settings = self.server.settings
        if method != "CONNECT":  # no plain-HTTP forwarding: the tests only tunnel
            return self.answer(
                HTTPStatus.METHOD_NOT_ALLOWED, method, target, auth, "Allow: CONNECT"
            )
        address = _host_port(target)
        if address is None:
            return self.answer(HTTPStatus.BAD_REQUEST, method, target, auth)
        if settings.auth is not None and auth != settings.auth:
            challenge = 'Proxy-Authenticate: Basic realm="loopback"'
            return self.answer(
                HTTPStatus.PROXY_AUTHENTICATION_REQUIRED, method, target, auth, challenge
            )
        if settings.deny:
            return self.answer(HTTPStatus.FORBIDDEN, method, target, auth)
        try:
            upstream = socket.create_connection(settings.to or address, timeout=TIMEOUT)
        except OSError:
            return self.answer(HTTPStatus.BAD_GATEWAY, method, target, auth)
        with upstream:
            self.answer(HTTPStatus.OK, method, target, auth, keep_open=True)
            _relay(self.connection, upstream)

    def answer(
        self,
        status: HTTPStatus,
        method: str,
        target: str,
        auth: str | None,
        header: str = "",
        keep_open: bool = False,
    ) -> None:
        """Log the request, then answer it: the log line is out before the client hears back."""
        entry = {"method": method, "target": target, "status": int(status), "auth": auth}
        _emit(sys.stdout, json.dumps(entry))
        if keep_open:  # 200 to a CONNECT: no body, the tunnel follows
            head = "HTTP/1.1 200 Connection established\r\n\r\n"
        else:
            body = f"{status.value} {status.phrase}\n"
            extra = f"{header}\r\n" if header else ""
            head = (
                f"HTTP/1.1 {status.value} {status.phrase}\r\n{extra}Content-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            )
        with contextlib.suppress(OSError):  # the client may have gone already
            self.wfile.write(head.encode("latin-1"))


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes, fails, or both stay quiet for TIMEOUT."""
    other = {client: upstream, upstream: client}
    while True:
        readable, _, _ = select.select(list(other), [], [], TIMEOUT)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(BUFFER)
                if not data:
                    return
                other[sock].sendall(data)
            except OSError:
                return


def _basic_credentials(header: str) -> str | None:
    """ "user:pass" from a `Proxy-Authorization: Basic ...` value; None if absent or not Basic."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def _host_port(text: str) -> tuple[str, int] | None:
    """("host", port) from "host:port" or "[v6]:port"; None if it is not that."""
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (colon and host and port.isdigit() and 0 < int(port) <= 65535):
        return None
    return host, int(port)


def _address(text: str) -> tuple[str, int]:
    """An argparse type for --to: HOST:PORT."""
    address = _host_port(text)
    if address is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return address


def _credentials(text: str) -> str:
    """An argparse type for --auth: USER:PASSWORD."""
    if ":" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not USER:PASSWORD")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loopback_proxy.py",
        description="An HTTP proxy on 127.0.0.1 that tunnels CONNECT requests, for tests.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free one)")
    parser.add_argument("--auth", type=_credentials, metavar="USER:PASSWORD")
    parser.add_argument("--deny", action="store_true", help="answer every CONNECT with 403")
    parser.add_argument("--to", type=_address, metavar="HOST:PORT", help="tunnel here instead")
    settings = parser.parse_args(argv, namespace=_Settings())
    # Both stop it the same way, even when started in the background (SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        with _Server(settings) as server:
            _emit(sys.stdout, f"listening on 127.0.0.1:{server.server_address[1]}")
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken
        _emit(sys.stderr, f"error: cannot listen on 127.0.0.1:{settings.port}: {error.strerror}")
        return 2
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal: no traceback
            signal.signal(signum, signal.SIG_IGN)
        # Kept (see _OUTPUT_LOCK); bounded, in case the signal came while main held it.
        _OUTPUT_LOCK.acquire(timeout=1)
    return 0


# -- for tests: the proxy as its own process -------------------------------------------


class Proxy:
    """A running loopback_proxy.py process, as `running_proxy` hands it out."""

    def __init__(self, process: subprocess.Popen[str], start_timeout: float) -> None:
        self.process = process
        self._entries: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._first_line: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            line = self._first_line.get(timeout=start_timeout)
        except queue.Empty:
            line = ""
        prefix = "listening on 127.0.0.1:"
        if not line.startswith(prefix):
            self.stop(signal.SIGKILL)
            raise RuntimeError(
                f"the proxy did not start within {start_timeout} s "
                f"(first line {line!r}, stderr {self.stderr!r})"
            )
        self.port = int(line[len(prefix) :])
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        first = True
        for line in self.process.stdout:
            if first:
                self._first_line.put(line.strip())
                first = False
                continue
            with self._changed:
                self._entries.append(json.loads(line))
                self._changed.notify_all()
        self._first_line.put("")  # at EOF: a start that never came is not waited for

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._stderr.append(line)

    def log(self, at_least: int = 0, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The requests logged so far, once there are `at_least` of them or after `timeout`.

        The proxy logs a request before answering it, but this process reads the line a
        moment later: ask for the count expected rather than sleeping.
        """
        with self._changed:
            self._changed.wait_for(lambda: len(self._entries) >= at_least, timeout)
            return list(self._entries)

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._stderr)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `signum`, wait up to `timeout` (then kill it), and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)  # the pipes reach EOF with the process
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return self.process.returncode


@contextlib.contextmanager
def running_proxy(*options: str, start_timeout: float = 10.0) -> Iterator[Proxy]:
    """Run `python loopback_proxy.py *options` until the block ends; yield it once it listens."""
    process = subprocess.Popen(
        [sys.executable, __file__, *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    proxy = Proxy(process, start_timeout)
    try:
        yield proxy
    finally:
        proxy.stop()


def unused_port() -> int:
    """A port on 127.0.0.1 on which nothing listens (a moment ago): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())

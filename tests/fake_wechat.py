"""A fake of WeChat's token endpoints: real HTTPS on 127.0.0.1, certificates from trustme.

The tests point the tool (wechat_token) and the port (fetch_token.py) at it: --api-base and
--cacert, or api_base and ca_bundle in config.ini. It serves
GET /cgi-bin/token and POST /cgi-bin/stable_token for one account (APPID/SECRET), and
GET /cgi-bin/get_api_domain_ip as an API call that needs a token it issued. It records
every request it gets and every errcode it answers, and misbehaves on demand: set
`fake.behaviour` to one of BEHAVIOURS, to an errcode (int), to bytes to serve as a
200 JSON body, or to a (status, body) tuple to answer exactly that; or to a list of
those, one per request, the last one repeated.

Run as a program, it is the fake for people rather than tests:

    python tests/fake_wechat.py --demo          # runs wechat-token against it, shows all
    python tests/fake_wechat.py                 # serves until Ctrl-C; prints the command
    python tests/fake_wechat.py --behaviour 40164   # ... and answers every request so
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import trustme

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

APPID = "wx0123456789abcdef"
# Of every kind of character an AppSecret may hold (both cases, digits, '-' and '_'), so
# that the tests see each of them masked.
SECRET = "S3cret_Value-0f9d8c7b6a5e4d3c2b1a"
WHITELIST_IP = "203.0.113.7"  # TEST-NET-3: documentation addresses, never routed
API_IPS = ["203.0.113.10", "203.0.113.11"]  # what get_api_domain_ip lists

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40125: "invalid appsecret",
    41001: "access_token missing",
    40164: f"invalid ip {WHITELIST_IP} ipv6 ::ffff:{WHITELIST_IP}, not in whitelist rid: 1",
    43002: "require POST method",
    45009: "reach max api daily quota limit",
    61004: f"access clientip {WHITELIST_IP} is not registered",
}
BEHAVIOURS = (
    "ok",  # checks the account, then issues fake_token_1, fake_token_2, ...
    "echo-secret",  # errcode 40125 whose errmsg repeats the secret, as sent and in capitals
    "escapes",  # errcode 40013 whose errmsg carries terminal escape sequences
    "html",  # HTTP 200 with an HTML page
    "502",  # HTTP 502 Bad Gateway
    "503",  # HTTP 503 Service Unavailable
    "redirect",  # HTTP 302 to another path of this server
    "huge",  # 70 KiB body with Content-Length
    "huge-chunked",  # 70 KiB body in chunks, length not announced
    "truncated",  # announces 100 bytes, sends 20, closes
    "empty",  # HTTP 200, empty body
    "hang",  # reads the request and never answers
    "slow",  # as "ok", half a second later
)

# Besides BEHAVIOURS: an errcode (int) is answered as {"errcode": it, "errmsg": ...}; bytes
# are served as the body of an HTTP 200; a tuple (status, body) is answered with exactly
# that HTTP status and that body, as application/json (the property tests generate these);
# (status, body, content type) with that Content-Type instead, or none if it is "".
Behaviour = str | int | bytes | tuple[int, bytes] | tuple[int, bytes, str]


class Request(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    body: bytes = b""
    content_type: str = ""
    host: str = ""  # the Host header: which name of this server the client used


class FakeWeChat:
    """An HTTPS server on 127.0.0.1 that plays WeChat's /cgi-bin/token."""

    def __init__(self, cert: trustme.LeafCert, port: int = 0) -> None:
        self.behaviour: Behaviour | list[Behaviour] = "ok"
        self.expires_in = 7200
        self.requests: list[Request] = []
        self.tokens_issued = 0
        self.connections = 0  # TCP connections accepted, TLS handshake or not
        self.stable_token = ""  # what /cgi-bin/stable_token hands out until forced
        self.classic_token = ""  # the newest from /cgi-bin/token: the only one API calls take
        self.errcodes: list[int] = []  # every errcode answered, in order
        # getticket's own behaviour: "ok", an errcode, or a list of them, one per request
        self.ticket_behaviour: str | int | list[str | int] = "ok"
        self.tickets_issued = 0
        # told each request ("GET /cgi-bin/token") and what it was answered
        self.log: Callable[[str, str], object] | None = None
        self._lock = threading.Lock()  # handlers run in threads
        self._stop = threading.Event()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._context)
        self._server = _TLSServer(("127.0.0.1", port), _Handler, self)
        # Polled every 0.05 s, not the default 0.5 s, for a request to stop: stop() waits
        # for the loop to see it, and the tests start and stop a dozen of these.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeWeChat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # frees handlers stuck in "hang"
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Back to a well-behaved server with no history (between tests)."""
        self.behaviour = "ok"
        self.expires_in = 7200
        self.requests.clear()
        self.tokens_issued = 0
        self.connections = 0
        self.stable_token = ""
        self.classic_token = ""
        self.ticket_behaviour = "ok"
        self.tickets_issued = 0
        self.errcodes.clear()

    def __enter__(self) -> FakeWeChat:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- answers -------------------------------------------------------------------

    def tell(self, request: Request, answered: str) -> None:
        """Log a request and what it is answered, just before the answer is sent."""
        if self.log:  # the path alone: the query holds the secret
            self.log(f"{request.method} {request.path}", answered)

    def answer(self, handler: _Handler, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            behaviour = self._next_behaviour()
        endpoint = (request.method, request.path)
        if endpoint == ("GET", "/cgi-bin/get_api_domain_ip"):  # an API call, for recipes
            return handler.reply_json(self._api_answer(request.query))
        if endpoint == ("GET", "/cgi-bin/ticket/getticket"):
            return handler.reply_json(self._ticket_answer(request.query))
        if endpoint == ("GET", "/cgi-bin/stable_token"):
            return handler.reply_json({"errcode": 43002, "errmsg": ERRMSG[43002]})
        if endpoint not in {("GET", "/cgi-bin/token"), ("POST", "/cgi-bin/stable_token")}:
            return handler.reply(404, b"not found", "text/plain")
        if isinstance(behaviour, tuple):  # (status, body[, type]): exactly this, however odd
            status, body, content_type = (*behaviour, "application/json")[:3]
            return handler.reply(status, body, content_type)
        if isinstance(behaviour, bytes):
            return handler.reply(200, behaviour)
        if isinstance(behaviour, int):
            return handler.reply_json({"errcode": behaviour, "errmsg": ERRMSG.get(behaviour, "")})
        if behaviour == "ok":
            return handler.reply_json(self._ok_answer(request))
        if behaviour == "echo-secret":
            secret = request.query.get("secret", "")
            errmsg = f"invalid appsecret {secret} (in capitals: {secret.upper()})"
            return handler.reply_json({"errcode": 40125, "errmsg": errmsg})
        if behaviour == "escapes":
            errmsg = "invalid \x1b[31mappid\x1b[0m\x07\r\nforged line"
            return handler.reply_json({"errcode": 40013, "errmsg": errmsg})
        if behaviour == "html":
            page = b"<html><body>Welcome to Hotel WiFi</body></html>"
            return handler.reply(200, page, "text/html", note=behaviour)
        if behaviour == "502":
            return handler.reply(502, b"<html>502 Bad Gateway</html>", "text/html")
        if behaviour == "503":
            return handler.reply(503, b"<html>503 Service Unavailable</html>", "text/html")
        if behaviour == "redirect":
            location = self.base_url + "/elsewhere"
            return handler.reply(302, b"", "text/plain", location=location, note=behaviour)
        if behaviour == "huge":
            return handler.reply(200, b"{" + b" " * 70 * 1024 + b"}", note=behaviour)
        if behaviour == "huge-chunked":
            return handler.reply_chunked(b" " * 70 * 1024, note=behaviour)
        if behaviour == "truncated":
            handler.reply(200, b'{"access_token":"abc', length=100, note=behaviour)
            handler.request.unwrap()  # a clean TLS close, 80 bytes short
            return None
        if behaviour == "empty":
            return handler.reply(200, b"", note=behaviour)
        if behaviour == "slow":
            self._stop.wait(0.5)
            return handler.reply_json(self._ok_answer(request))
        if behaviour == "hang":
            self.tell(request, "nothing (hang)")
            self._stop.wait(60)  # bounded, and freed by stop()
            return None
        raise ValueError(f"unknown behaviour {behaviour!r}")

    def _next_behaviour(self) -> Behaviour:
        if not isinstance(self.behaviour, list):
            return self.behaviour
        return self.behaviour.pop(0) if len(self.behaviour) > 1 else self.behaviour[0]

    def _ok_answer(self, request: Request) -> dict[str, Any]:
        """What WeChat answers when all is well, on either endpoint."""
        if request.method == "POST":
            return self._stable_token_answer(request)
        return self._token_answer(request.query)

    def _token_answer(self, query: dict[str, Any]) -> dict[str, Any]:
        """The classic endpoint: every call issues a new token, which replaces the last."""
        answer = self._refusal(query) or self._new_token()
        self.classic_token = answer.get("access_token", self.classic_token)
        return answer

    def _stable_token_answer(self, request: Request) -> dict[str, Any]:
        """The stable endpoint: one token for everyone, replaced only when forced."""
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict) or request.content_type != "application/json":
            return {"errcode": 47001, "errmsg": "data format error"}
        refusal = self._refusal(body)
        if refusal:
            return refusal
        if body.get("force_refresh") is True or not self.stable_token:
            self.stable_token = self._new_token()["access_token"]
        return {"access_token": self.stable_token, "expires_in": self.expires_in}

    def _refusal(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if fields.get("appid") != APPID:
            return {"errcode": 40013, "errmsg": ERRMSG[40013]}
        if fields.get("secret") != SECRET:
            return {"errcode": 40125, "errmsg": ERRMSG[40125]}
        return None

    def _api_answer(self, query: dict[str, str]) -> dict[str, Any]:
        """An API call: it works with the newest token of each endpoint. A token that a
        newer one replaced is refused with 40001 (WeChat allows it 5 more minutes)."""
        token = query.get("access_token", "")
        if not token:
            return {"errcode": 41001, "errmsg": ERRMSG[41001]}
        if token not in (self.classic_token, self.stable_token):
            return {"errcode": 40001, "errmsg": ERRMSG[40001]}
        return {"ip_list": API_IPS}

    def revoke_tokens(self) -> None:
        """Every token issued stops working, as when another program fetched a new one."""
        with self._lock:
            self.classic_token = self.stable_token = ""

    def _ticket_answer(self, query: dict[str, str]) -> dict[str, Any]:
        """getticket: a ticket for a token this fake issued and still holds; 40001 for any
        other (revoked, or never issued), as WeChat answers."""
        with self._lock:
            behaviour = self.ticket_behaviour
            if isinstance(behaviour, list):
                behaviour = behaviour.pop(0) if len(behaviour) > 1 else behaviour[0]
            token = query.get("access_token", "")
            if not token:
                return {"errcode": 41001, "errmsg": ERRMSG[41001]}
            if token not in (self.classic_token, self.stable_token):
                return {"errcode": 40001, "errmsg": ERRMSG[40001]}
            if query.get("type") not in ("jsapi", "wx_card"):
                return {"errcode": 40097, "errmsg": "invalid args"}
            if isinstance(behaviour, int):
                return {"errcode": behaviour, "errmsg": ERRMSG.get(behaviour, "")}
            self.tickets_issued += 1
            ticket = f"fake_{query['type']}_ticket_{self.tickets_issued}"
        return {"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": self.expires_in}

    def _new_token(self) -> dict[str, Any]:
        with self._lock:
            self.tokens_issued += 1
            token = f"fake_token_{self.tokens_issued}"
        return {"access_token": token, "expires_in": self.expires_in}


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeWeChat) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        self.fake.connections += 1  # one accepting thread: no lock needed
        # The handshake runs later in the handler's thread, so a client that stalls
        # or refuses our certificate cannot block the server.
        tls = self.fake._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients refusing our certificate are part of the tests, not errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TLSServer

    def setup(self) -> None:
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self.handle_request(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.handle_request(self.rfile.read(min(length, 65536)))

    def handle_request(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        content_type = self.headers.get("Content-Type", "")
        host = self.headers.get("Host", "")
        request = Request(self.command, parts.path, query, parts.query, body, content_type, host)
        self.close_connection = True
        self.asked = request
        self.server.fake.answer(self, request)

    def reply_json(self, answer: dict[str, Any]) -> None:
        if answer.get("errcode"):
            self.server.fake.errcodes.append(answer["errcode"])
        if "errcode" in answer:
            what = f"errcode {answer['errcode']}"
        elif "access_token" in answer:
            what = f"access_token {answer['access_token']}"
        else:
            what = " ".join(answer)  # ip_list
        self.reply(200, json.dumps(answer, ensure_ascii=False).encode(), what=what)

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=utf-8",
        length: int | None = None,
        location: str | None = None,
        note: str = "",
        what: str = "",
    ) -> None:
        """Answer that, logged as `what` it is (an errcode, a token), or as its HTTP status
        and the note (a behaviour's name)."""
        logged = what or f"HTTP {status}" + (f" ({note})" if note else "")
        self.server.fake.tell(self.asked, logged)
        self.send_response(status)
        if content_type:  # "": no Content-Type at all
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if location:
            self.send_header("Location", location)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def reply_chunked(self, body: bytes, size: int = 4096, note: str = "") -> None:
        self.server.fake.tell(self.asked, f"HTTP 200 ({note or 'chunked'})")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for start in range(0, len(body), size):
                chunk = body[start : start + size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up at its size limit: that is the point

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


def certifi_trusting(ca_file: str, folder: str, python: str = sys.executable) -> str:
    """A folder holding a copy of certifi whose bundle is `ca_file`, to put first on PYTHONPATH.

    Code that finds its CAs the usual way, `certifi.where()`, then trusts the fake as it
    would trust WeChat: the import and the call are certifi's own; only the bundle differs.
    `python` is the interpreter whose certifi is copied.
    """
    code = "import certifi, os; print(os.path.dirname(certifi.__file__))"
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    copy = os.path.join(folder, "certifi-for-the-fake", "certifi")
    shutil.copytree(found.stdout.strip(), copy)
    shutil.copyfile(ca_file, os.path.join(copy, "cacert.pem"))
    return os.path.dirname(copy)


# -- run as a program: the demo, and a fake to experiment with -------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tool, as the README runs it once requirements-dev.txt has installed it
COMMAND = (sys.executable, "-m", "wechat_token")
CHILD_TIMEOUT = 30  # seconds; wechat-token bounds itself well below this
# Each of these ends the program as Ctrl-C does: the fake stops and its folder goes.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


# What the demo and the served fake say, in English and in Chinese: the same keys and
# {fields} in both (test_demo). The tool's own output, which they show, is the tool's.
NARRATION_EN = {
    "demo.intro": (
        "A fake WeChat is serving {url}, with a certificate from a throwaway CA.\n"
        "{config} holds its account, address and CA.\n"
        "Each step runs the real wechat-token command against it.\n"
        "The commands below use this fake and folder, which are gone when the demo ends.\n"
        "For a fake that stays up, and a command to try against it, run:\n"
        "  {serve}"
    ),
    "step.token": "A token, over TLS verified with the fake's CA; -v shows each step",
    "step.cached": "The same command again: the token comes from the cache",
    "step.json": "--json, for programs: the same token, marked as cached",
    "step.refused": (
        "WeChat refuses (the fake is told to): this machine's IP is not on the whitelist"
    ),
    "step.impostor": "An impostor: a server whose certificate is not from that CA",
    "note.exit": "exit {code}",
    "note.expected": "expected {code}",
    "note.the_fake": "the fake",
    "note.that_server": "that server",
    "note.got_none": "{name} got no request",
    "note.got_one": "{name} got 1 request",
    "note.got_many": "{name} got {count} requests",
    "note.and": "; ",
    "note.notes": "({notes})",
    "note.still_running": "(still running after {seconds} s: stopped it)",
    "demo.failed": "\nStep {steps} did not go as expected.",
    "demo.and": ", ",
    "demo.done": "\nEvery step went as expected. Next:",
    "next.serve": "serves a fake until Ctrl-C, to try things yourself",
    "next.tests": "runs the tests, which drive the tool the same way",
    "next.readme": "explains each line, and how to use a real account",
    "serve.serving": (
        "fake WeChat serving {url}, with a certificate from a throwaway CA\n"
        "  its CA:    {ca}\n"
        "  config:    {config} (the fake account, this address, this CA)\n"
        "  behaviour: {behaviour}\n"
        "\n"
        "In another terminal, from this folder:\n"
        "  {command}\n"
        "\n"
        "Start it with --behaviour 40164 (or -1, 45009, html, hang, ...) to make it misbehave.\n"
        "Ctrl-C stops it and deletes the folder.\n"
    ),
    "serve.then": " then ",
    "serve.got": "fake WeChat got: {asked}, answered {answer}",
    "serve.stopped": "stopped",
    "interrupted": "interrupted",
}
NARRATION_ZH = {
    "demo.intro": (
        "模拟微信服务器已在 {url} 启动，证书由临时生成的 CA 签发。\n"
        "{config} 中是模拟服务器的账号、地址和 CA。\n"
        "下面每一步都用真实的 wechat-token 命令访问这个模拟服务器。\n"
        "下面的命令用到这个模拟服务器和这个目录：演示结束后，服务器会停止，目录会删除。\n"
        "如果想要一个一直运行的模拟服务器，并得到一条可以对它试用的命令，请运行：\n"
        "  {serve}"
    ),
    "step.token": "获取 access_token，用模拟服务器的 CA 做证书校验；-v 显示每一步",
    "step.cached": "再运行一次同样的命令：这次 access_token 来自缓存",
    "step.json": "--json，供程序读取：还是那个 access_token，并标明来自缓存",
    "step.refused": "微信拒绝了请求（模拟服务器特意这样设置）：本机 IP 不在「API IP 白名单」中",
    "step.impostor": "冒充微信的服务器：其证书不是由上述 CA 签发的",
    "note.exit": "退出码 {code}",
    "note.expected": "应为 {code}",
    "note.the_fake": "模拟服务器",
    "note.that_server": "那个服务器",
    "note.got_none": "{name}没有收到请求",
    "note.got_one": "{name}收到了 1 个请求",
    "note.got_many": "{name}收到了 {count} 个请求",
    "note.and": "；",
    "note.notes": "（{notes}）",
    "note.still_running": "（运行 {seconds} 秒后仍未结束：已强制停止）",
    "demo.failed": "\n第 {steps} 步没有按预期进行",
    "demo.and": "、",
    "demo.done": "\n每一步都符合预期。接下来：",
    "next.serve": "启动一个模拟服务器，一直运行到按下 Ctrl-C，方便自己动手试",
    "next.tests": "运行测试，测试也是这样驱动这个工具的",
    "next.readme": "逐行解释上面的输出，以及怎样使用真实的账号",
    "serve.serving": (
        "模拟微信服务器正在 {url} 上运行，证书由临时生成的 CA 签发\n"
        "  CA 证书：  {ca}\n"
        "  配置文件： {config}（模拟账号、这个地址、这个 CA）\n"
        "  行为：     {behaviour}\n"
        "\n"
        "在另一个终端里，从当前目录运行：\n"
        "  {command}\n"
        "\n"
        "启动时加上 --behaviour 40164（或 -1、45009、html、hang 等），可以让模拟服务器故意出错。\n"
        "按 Ctrl-C 停止模拟服务器，并删除这个目录。\n"
    ),
    "serve.then": "，然后 ",
    "serve.got": "模拟微信服务器收到 {asked}，返回 {answer}",
    "serve.stopped": "已停止",
    "interrupted": "已中断",
}


def _chinese(environ: Mapping[str, str]) -> bool:
    """Whether to narrate in Chinese, by the tool's rule: the reader's locale is Chinese
    (the first of LANGUAGE, LC_ALL, LC_MESSAGES and LANG that is set starts with "zh", as
    gettext reads it) and stdout can show Chinese (else English, not \\u escapes)."""
    names = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    locale = next((environ[name] for name in names if environ.get(name)), "")
    shows = "微信".encode(sys.stdout.encoding or "utf-8", "ignore")  # b"" where it cannot
    return locale.startswith("zh") and shows != b""


def _say(key: str, /, **fields: object) -> str:
    """The narration `key` in the reader's language, its {fields} filled in."""
    return (NARRATION_ZH if _chinese(os.environ) else NARRATION_EN)[key].format(**fields)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo (--demo), or serve the fake until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="fake_wechat.py",
        description="A fake WeChat on 127.0.0.1 with real HTTPS, for wechat-token to talk to.",
    )
    parser.add_argument(
        "--demo", action="store_true", help="run wechat-token against it, show what it does, stop"
    )
    parser.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--behaviour",
        action="append",
        type=_behaviour,
        metavar="B",
        help="an errcode such as 40164 or -1, or one of: "
        + ", ".join(BEHAVIOURS)
        + "; give it again for the next requests (the last one repeats)",
    )
    args = parser.parse_args(argv)
    if args.demo and args.behaviour:
        parser.error(
            "argument --behaviour: not allowed with --demo, which sets the fake's behaviour"
            " for each step itself"
        )
    # Closing the terminal (SIGHUP) or `kill` (SIGTERM) stops it as Ctrl-C does, even when
    # started in the background (SIGINT ignored). Set before the folder exists; put back after.
    previous = {
        signum: signal.signal(signum, signal.default_int_handler) for signum in STOP_SIGNALS
    }
    try:
        with _Playground(args.port) as playground:
            if args.demo:
                return demo(playground)
            return serve(playground, args.behaviour or ["ok"])
    except KeyboardInterrupt:
        print(_say("interrupted"), file=sys.stderr)
        return 130
    except OSError as error:  # the port is taken, the temp folder cannot be written...
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 for any free one."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def _behaviour(text: str) -> Behaviour:
    """An argparse type: an errcode, or one of BEHAVIOURS."""
    if text in BEHAVIOURS:  # first: "502" is an HTTP status here, not an errcode
        return text
    if text.lstrip("-").isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither an errcode nor a behaviour listed in --help"
    )


class _Playground:
    """The fake, a throwaway CA, and a folder with its CA and a config.ini for its account.

    The tool finds all it needs in that config.ini, so the commands shown to the
    user are the ones a real account uses, plus `--config`. The folder goes on exit.
    """

    def __init__(self, port: int = 0, command: Sequence[str] = COMMAND) -> None:
        self._command = list(command)
        self.ca = trustme.CA()
        self._folder = tempfile.TemporaryDirectory(prefix="wechat_token-fake-")
        self.folder = self._folder.name
        self.ca_file = os.path.join(self.folder, "fake-ca.pem")
        self.config = os.path.join(self.folder, "config.ini")
        try:
            self.fake = FakeWeChat(self.ca.issue_cert("127.0.0.1", "localhost"), port)
        except OSError as error:
            self._folder.cleanup()
            raise OSError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None

    def __enter__(self) -> _Playground:
        try:
            self.ca.cert_pem.write_to_path(self.ca_file)
            settings = (
                f"[wechat]\nappid = {APPID}\nappsecret = {SECRET}\n"
                f"api_base = {self.fake.base_url}\n"
                "ca_bundle = fake-ca.pem\ncache_file = token-cache.json\n"
            )
            # 0600 from the start, as the README asks of a real config.ini: it holds the secret.
            fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "w", encoding="utf-8") as file:
                file.write(settings)
            self.fake.start()
        except BaseException:  # Ctrl-C too: `with` calls __exit__ only once __enter__ is done
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.fake.stop()
        self._folder.cleanup()

    def command(self, *args: str) -> list[str]:
        """The command that runs the tool against this fake."""
        program, *rest = self._command
        return [_short(program), *rest, "--config", self.config, *args]


def _short(path: str) -> str:
    """The path relative to the current folder if it is inside it, so it reads as typed."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def clean_environ() -> dict[str, str]:
    """This environment without an account or a proxy: only the fake's account may be used."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WECHAT_") and not name.lower().endswith("_proxy")
    }


def serve(playground: _Playground, behaviours: list[Behaviour]) -> int:
    """Serve until Ctrl-C (KeyboardInterrupt), printing how to use the fake and each request."""
    fake = playground.fake
    fake.behaviour = list(behaviours)  # one per request, the last one repeated
    fake.log = lambda asked, answer: print(
        _say("serve.got", asked=asked, answer=answer), flush=True
    )
    try:  # from the first line printed, Ctrl-C says "stopped", on a line of its own
        sys.stdout.write(  # one write: print() would write the last newline separately
            _say(
                "serve.serving",
                url=fake.base_url,
                ca=playground.ca_file,
                config=playground.config,
                behaviour=_say("serve.then").join(map(str, behaviours)),
                command=shlex.join(playground.command("-v")),
            )
        )
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(_say("serve.stopped"), flush=True)
    return 0


class _Step(NamedTuple):
    title: str
    args: tuple[str, ...]
    exit_code: int  # what the command should exit with
    behaviour: Behaviour = "ok"  # the fake's, for this step
    untouched: FakeWeChat | None = None  # a server that must get no request in this step


def demo(playground: _Playground) -> int:
    """Run wechat-token against the fake, showing each command and what it printed."""
    fake = playground.fake
    # The same fake, but with a certificate from a CA that the config's ca_bundle lacks.
    with FakeWeChat(trustme.CA().issue_cert("127.0.0.1", "localhost")) as impostor:
        steps = [
            _Step(_say("step.token"), ("-v",), 0),
            _Step(_say("step.cached"), ("-v",), 0, "ok", fake),
            _Step(_say("step.json"), ("--json",), 0),
            _Step(_say("step.refused"), ("--no-cache",), 1, 40164),
            _Step(
                _say("step.impostor"),
                ("--no-cache", "--api-base", impostor.base_url),
                3,
                untouched=impostor,
            ),
        ]
        print(
            _say("demo.intro", url=fake.base_url, config=playground.config, serve=_serve_command())
        )
        failed = [
            str(number)
            for number, step in enumerate(steps, 1)
            if not _run_step(number, step, playground)
        ]
    if failed:
        print(_say("demo.failed", steps=_say("demo.and").join(failed)))
        return 1
    next_steps = [
        (_serve_command(), _say("next.serve")),
        (f"{_short(sys.executable)} -m pytest", _say("next.tests")),
        _readme(os.environ),
    ]
    width = max(len(command) for command, _ in next_steps)
    print(_say("demo.done"))
    for command, what in next_steps:
        print(f"  {command:{width}}   {what}")
    return 0


def _readme(environ: Mapping[str, str]) -> tuple[str, str]:
    """The README in the reader's language, and what it is for."""
    if _chinese(environ):
        return ("README.zh-CN.md", NARRATION_ZH["next.readme"])
    return ("README.md", NARRATION_EN["next.readme"])


def _serve_command() -> str:
    """The command that serves a fake until Ctrl-C, as the user would type it here."""
    return shlex.join([_short(sys.executable), _short(os.path.abspath(__file__))])


def _run_step(number: int, step: _Step, playground: _Playground) -> bool:
    """Run one step and print it; True if it went as expected."""
    playground.fake.behaviour = step.behaviour
    watched = step.untouched
    seen = len(watched.requests) if watched else 0
    command = playground.command(*step.args)
    print(f"\n{number}. {step.title}\n$ {shlex.join(command)}", flush=True)
    # A stop signal while the child is being started would leave it running, orphaned:
    # held back until the child is ours to kill, then let in where its handler kills the
    # child first (let in any earlier, it could land before that handler: CI saw the
    # orphan's cache lock make the deleted folder again). The child inherits the mask:
    # the demo stops it.
    mask = getattr(signal, "pthread_sigmask", None)
    held = mask(signal.SIG_BLOCK, STOP_SIGNALS) if mask else None

    def let_signals_in() -> None:
        if mask and held is not None:
            mask(signal.SIG_SETMASK, held)

    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=clean_environ(),
        )
    except BaseException:
        let_signals_in()
        raise
    with child:
        try:
            let_signals_in()  # a stop signal held back lands here, in this try
            output, _ = child.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            print(_say("note.still_running", seconds=CHILD_TIMEOUT))
            return False
        except BaseException:  # Ctrl-C, or a stop signal: the child goes first, then the folder
            child.kill()
            child.wait()
            raise
    done = subprocess.CompletedProcess(command, child.returncode, output)
    print(done.stdout, end="")
    notes = [_say("note.exit", code=done.returncode)]
    ok = done.returncode == step.exit_code
    if not ok:
        notes.append(_say("note.expected", code=step.exit_code))
    if watched:
        got = len(watched.requests) - seen
        name = _say("note.the_fake" if watched is playground.fake else "note.that_server")
        key = "note.got_none" if got == 0 else "note.got_one" if got == 1 else "note.got_many"
        notes.append(_say(key, name=name, count=got))
        ok = ok and got == 0
    print(_say("note.notes", notes=_say("note.and").join(notes)))
    return ok


if __name__ == "__main__":
    raise SystemExit(main())

"""The command line, `wechat-token`: arguments in, the token or one error out.

This is the one place that prints, and the one place that decides how the command
exits: the library raises, and EXIT_CODES maps each error class to its exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence

from wechat_token import __version__
from wechat_token.cache import cached_access_token
from wechat_token.config import PLACEHOLDERS, load_settings
from wechat_token.config_file import DEFAULT_CONFIG
from wechat_token.endpoints import API_BASES, TICKETS, USABLE
from wechat_token.errors import ConfigError, WeChatAPIError, WeChatTokenError
from wechat_token.jssdk import check_page, url_warnings, wx_config_fields
from wechat_token.output import PROG, STDOUT_CLOSED, BrokenPipe, Output, OutputError
from wechat_token.retry import DEFAULT_RETRIES, MAX_RETRIES, time_bound
from wechat_token.ticket import cached_ticket

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from typing import NoReturn

    from wechat_token.config import Settings


class InternalError(WeChatTokenError):
    hint_key = "hint.internal"


# The first class an error is an instance of decides. sysexits.h: 70 EX_SOFTWARE (a bug),
# 74 EX_IOERR; 141 = 128 + SIGPIPE, what a shell shows for `... | head -c0`.
EXIT_CODES: tuple[tuple[type[WeChatTokenError], int], ...] = (
    (WeChatAPIError, 1),  # WeChat answered with an errcode
    (ConfigError, 2),  # usage or configuration
    (BrokenPipe, 141),
    (OutputError, 74),
    (InternalError, 70),
    (WeChatTokenError, 3),  # network, TLS, HTTP or a response that is not a token
)


def exit_code(error: WeChatTokenError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Run the command line; return the exit code. The run's time bound is kept on
    `clock`, and every wait (for the cache's lock, before a retry) is `sleep`."""
    started = clock()  # the run's time bound counts from here
    argv = sys.argv[1:] if argv is None else list(argv)
    # --json is looked for before parsing, so that a usage error is JSON too; abbreviations
    # are refused, so this agrees with what the parser decides.
    secret = os.environ.get("WECHAT_APPSECRET", "")
    out = Output("--json" in argv, "" if secret in PLACEHOLDERS else secret)
    changed = _ended_by_sigint()
    try:
        return _run(argv, out, started, clock, sleep)
    except _HelpAsked as asked:  # --help or --version, whatever else is given
        try:
            return out.help(str(asked))
        except WeChatTokenError as error:
            return exit_code(out.failure(error))
    except WeChatTokenError as error:
        return exit_code(out.failure(error))
    except Exception as error:  # a bug in this package: still one line, never a traceback
        return exit_code(
            out.failure(InternalError(f"internal error: {type(error).__name__}: {error}"))
        )
    finally:
        if changed:  # as it was, for a program that calls main()
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _run(
    argv: list[str],
    out: Output,
    started: float,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> int:
    if sys.stdout is None:  # started with stdout closed: no request for a token to be lost
        raise OutputError(STDOUT_CLOSED)
    args = _parse_args(argv)
    out.json_mode, out.verbose = args.json, args.verbose
    what = _command(args)
    settings = load_settings(args, os.environ)
    out.secret = settings.secret
    for warning in settings.warnings:
        out.warn(warning)
    bound = time_bound(settings.retries, settings.timeout)
    if args.replace == "-":  # out of sight of `ps`
        args.replace = _stdin_line(bound, started + bound, clock)
    if args.replace is not None and not USABLE.fullmatch(args.replace):
        raise ConfigError(
            "--replace: that is not an access_token (printable ASCII, no spaces)",
            hint="give the token that the API call refused, or - to read it from stdin",
        )
    if what == ("token",):
        token, cached = cached_access_token(
            settings, out.note, out.warn, started, args.replace, clock=clock, sleep=sleep
        )
        return out.success(*token, cached)
    if what[0] == "ticket":
        ticket, cached = cached_ticket(
            settings, TICKETS[what[1]], out.note, out.warn, started, clock=clock, sleep=sleep
        )
        return out.success(*ticket, cached, field="ticket")
    return _sign(args, what[1], settings, out, started, clock, sleep)


def _command(args: argparse.Namespace) -> tuple[str, ...]:
    """What to print: ("token",), ("ticket", TYPE) or ("sign", URL); checked before any
    setting is read. Options that belong to one command are refused with the others."""
    words = tuple(args.command)
    if not words:
        what: tuple[str, ...] = ("token",)
    elif len(words) == 2 and (words[0] == "sign" or (words[0] == "ticket" and words[1] in TICKETS)):
        what = words
    elif words[0] in ("ticket", "sign"):  # its argument is named, not shown
        usage = {"ticket": "ticket jsapi, or ticket wx_card", "sign": "sign URL"}[words[0]]
        raise ConfigError(f"usage: {PROG} {usage}", hint="see --help")
    else:  # a value typed by mistake may be the secret: not echoed
        raise ConfigError("unrecognized arguments: (values)", hint="see --help")
    signing = [
        name for name in ("ticket", "noncestr", "timestamp") if getattr(args, name) is not None
    ]
    if signing and what[0] != "sign":
        raise ConfigError(f"--{signing[0]} is for the sign command", hint="see --help")
    if args.replace is not None and what[0] != "token":
        raise ConfigError("--replace is for the token", hint="see --help")
    return what


def _sign(
    args: argparse.Namespace,
    url: str,
    settings: Settings,
    out: Output,
    started: float,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> int:
    """The wx.config fields for `url`: signed with --ticket (no request), or with the
    cached jsapi_ticket."""
    check_page(args.noncestr, args.timestamp, url)  # before the ticket: it costs a request
    for warning in url_warnings(url):
        (out.note if warning.startswith("the #fragment") else out.warn)(f"sign: {warning}")
    ticket = args.ticket
    if ticket is None:
        got, _ = cached_ticket(
            settings, TICKETS["jsapi"], out.note, out.warn, started, clock=clock, sleep=sleep
        )
        ticket = got.access_token
    fields = wx_config_fields(
        settings.appid,
        ticket,
        url,
        noncestr=args.noncestr,
        timestamp=args.timestamp,
        secret=settings.secret,
    )
    return out.fields(fields)


_FROM_STDIN = (
    'pipe in the token that the API call refused: echo "$TOKEN" | wechat-token --replace -'
)


def _stdin_line(bound: float, deadline: float, clock: Callable[[], float]) -> str:
    """The first line on stdin by `deadline`, the end of the run's `bound` (on `clock`),
    read from its descriptor: a text stream's readline cannot be bounded in time."""
    stream = sys.stdin
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # closed (None), or not a file
        fd = -1
    try:
        if fd >= 0:
            line = _read_line(fd, deadline, clock).decode("utf-8")
        else:  # a program's own stdin object, which never waits
            line = stream.readline(8 * 1024) if stream is not None else ""
    except UnicodeDecodeError:
        raise ConfigError("--replace -: stdin is not UTF-8 text", hint=_FROM_STDIN) from None
    except TimeoutError:
        raise ConfigError(
            f"--replace -: no token arrived on stdin within the run's time bound ({bound:g} s)",
            hint=_FROM_STDIN,
        ) from None
    if not line.strip():
        raise ConfigError("--replace -: stdin is empty", hint=_FROM_STDIN)
    return line.strip()


def _read_line(fd: int, deadline: float, clock: Callable[[], float]) -> bytes:
    """Bytes from `fd` to a newline, end of file or 8 KiB, by `deadline`, else TimeoutError."""
    import select

    data = b""
    while b"\n" not in data and len(data) < 8 * 1024:
        left = deadline - clock()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 8 * 1024 - len(data))
        if not chunk:  # end of file
            break
        data += chunk
    return data.partition(b"\n")[0]


def _ended_by_sigint() -> bool:
    """Let Ctrl-C end the command at once, at any moment, as it ends `cat` or `curl`;
    True if SIGINT's handler was changed (main() puts Python's back when it returns).

    Python turns SIGINT into KeyboardInterrupt, which runs only between Python steps: not
    while libcurl connects or shakes hands, and a tool that catches it and exits 130 does
    not stop the shell loop that runs it. The default action ends the process on the spot,
    and the shell sees "killed by SIGINT". The kernel releases the cache lock, and the cache
    file is replaced in one step, so nothing is left half done. SIGTERM and SIGHUP already
    have that default. An ignored SIGINT (a background job) stays ignored. Before main()
    runs, while Python starts and imports this package, Python handles Ctrl-C itself.
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False  # ignored (a background job), or a program's own handler: kept
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except ValueError:  # not the main thread: signals are not ours to set
        return False
    return True


# --- Arguments ----------------------------------------------------------------------


class _HelpAsked(Exception):
    """--help or --version: the text is printed like any result (see main)."""


class _ArgumentParser(argparse.ArgumentParser):
    def _print_message(self, message: str, file: object = None) -> NoReturn:
        raise _HelpAsked(message)  # --help and --version: printed like any result

    def error(self, message: str) -> NoReturn:
        # exit 2, printed like every error; a value typed after an option is not repeated:
        # it may be the AppSecret (from config.ini, which is read only after this)
        message = re.sub(r"ignored explicit argument .*", "it takes no value", message)
        raise ConfigError(message, hint="see --help")


_HELP_EPILOG = f"""\
output:
  stdout carries the token alone, or with --json one JSON object, so that
  TOKEN=$({PROG}) works; messages go to stderr.

configuration:
  WECHAT_APPID and WECHAT_APPSECRET, else {DEFAULT_CONFIG} in the current folder
  (or --config PATH); config.ini.example shows every key. A proxy: --proxy, or
  proxy in the config; else https_proxy and no_proxy, as curl reads them.

exit codes:
  0 token printed, 1 WeChat answered an errcode, 2 usage or configuration,
  3 network, TLS, HTTP or response failure, 74 stdout cannot take the token,
  141 stdout closed early, 70 a bug in this tool. Ctrl-C: killed by SIGINT.
"""


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog=PROG,
        allow_abbrev=False,  # what is parsed is what was typed: --js is not --json
        description="Fetch a WeChat Official Account access_token over verified TLS.\n"
        "The AppSecret comes from WECHAT_APPSECRET or the config file, never from a\n"
        "flag: every user of the machine can read command lines.",
        epilog=_HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's lines as written
    )
    parser.add_argument(
        "command",
        nargs="*",
        metavar="COMMAND",
        help="ticket jsapi | ticket wx_card: print that ticket; sign URL: the wx.config "
        "fields for the page at URL (default: print the access_token)",
    )
    parser.add_argument("--config", metavar="PATH", help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--appid", help="the AppID (default: WECHAT_APPID, then config)")
    parser.add_argument(
        "--api-base",
        metavar="URL",
        action="append",
        help=f"API base URL; give it again for a backup (default {' then '.join(API_BASES)})",
    )
    parser.add_argument("--cacert", metavar="PATH", help="CA bundle (default: certifi's)")
    parser.add_argument("--timeout", metavar="SECONDS", help="bound for each attempt (10)")
    parser.add_argument(
        "--retries",
        metavar="N",
        help=f"extra attempts after errcode -1, HTTP 5xx or a network failure "
        f"(default {DEFAULT_RETRIES}, at most {MAX_RETRIES})",
    )
    parser.add_argument(
        "--stable",
        action=argparse.BooleanOptionalAction,
        help="use POST /cgi-bin/stable_token: one token shared by every caller",
    )
    parser.add_argument(
        "--valid-for",
        metavar="SECONDS",
        help="print a token that stays valid at least this long (fetched anew if the cached "
        "one would not); e.g. 3900 for an hourly cron job",
    )
    parser.add_argument(
        "--force-refresh",
        action="store_true",
        help="fetch a new token even if the cached one is good (it invalidates the old one)",
    )
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-file",
        metavar="PATH",
        help="where to keep the token (default: a file per AppID in ~/.cache/wechat_token)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write a cache")
    parser.add_argument(
        "--replace",
        metavar="TOKEN",
        help="TOKEN was refused by an API call (40001, 42001, 40014): fetch a new one, unless "
        "another process already has; - reads TOKEN from stdin",
    )
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help="send the request through this proxy, e.g. http://host:3128 (default: "
        "https_proxy in the environment)",
    )
    proxy.add_argument("--no-proxy", action="store_true", help="use no proxy, whatever is set")
    sign = parser.add_argument_group("sign URL: reproduce a signature offline")
    sign.add_argument("--ticket", metavar="TICKET", help="sign with this jsapi_ticket: no request")
    sign.add_argument("--noncestr", metavar="N", help="this nonceStr (default: a random one)")
    sign.add_argument("--timestamp", metavar="T", help="this timestamp (default: now)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what happens")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the options only: a mistaken `--appsecret VALUE` must not be echoed.
        names = sorted({arg.split("=")[0] for arg in unknown if arg.startswith("-")})
        # An option's name is shown only if it reads like one: a secret typed after -- is not
        names = [
            name if re.fullmatch(r"--?[a-z-]{1,24}", name) else "(an option)" for name in names
        ]
        if any("secret" in name for name in names):
            raise ConfigError(
                "the AppSecret has no option",
                hint="set WECHAT_APPSECRET, or appsecret in config.ini: every user of this "
                "machine can read command lines",
            )
        raise ConfigError(
            f"unrecognized arguments: {' '.join(names) or '(values)'}", hint="see --help"
        )
    return args

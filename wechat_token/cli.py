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

from wechat_token import __version__, messages
from wechat_token.cache import cached_access_token
from wechat_token.config import PLACEHOLDERS, load_settings
from wechat_token.config_file import DEFAULT_CONFIG
from wechat_token.endpoints import API_BASE, BACKUP_API_BASE, TICKETS, USABLE
from wechat_token.errors import ConfigError, WeChatAPIError, WeChatTokenError
from wechat_token.jssdk import check_page, url_warnings, wx_config_fields
from wechat_token.messages import msg
from wechat_token.output import PROG, BrokenPipe, Output, OutputError, encodable
from wechat_token.retry import DEFAULT_RETRIES, MAX_RETRIES, time_bound
from wechat_token.ticket import cached_ticket

TYPE_CHECKING = False  # typing.TYPE_CHECKING, which mypy reads as True: typing costs 9 ms a run

if TYPE_CHECKING:
    from typing import Any, NoReturn

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
    chosen = messages.chosen()  # put back on return: a program may call main() again
    try:
        _choose_language(argv)
        return _run(argv, out, started, clock, sleep)
    except _HelpAsked as asked:  # --help or --version, whatever else is given
        try:
            return out.help(str(asked))
        except WeChatTokenError as error:
            return exit_code(out.failure(error))
    except WeChatTokenError as error:
        return exit_code(out.failure(error))
    except Exception as error:  # a bug in this package: still one line, never a traceback
        internal = msg("cli.internal", kind=type(error).__name__, error=error)
        return exit_code(out.failure(InternalError(internal)))
    finally:
        messages.use(chosen)
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
        raise OutputError(msg("output.stdout_closed"))
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
        raise ConfigError(msg("cli.not_a_token"), hint=msg("cli.not_a_token_hint"))
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
        usage = msg("cli.usage_ticket" if words[0] == "ticket" else "cli.usage_sign", prog=PROG)
        raise ConfigError(usage, hint=msg("cli.see_help"))
    else:  # a value typed by mistake may be the secret: not echoed
        raise ConfigError(msg("cli.unrecognized_values"), hint=msg("cli.see_help"))
    signing = [
        name for name in ("ticket", "noncestr", "timestamp") if getattr(args, name) is not None
    ]
    if signing and what[0] != "sign":
        raise ConfigError(msg("cli.sign_only", option=f"--{signing[0]}"), hint=msg("cli.see_help"))
    if args.replace is not None and what[0] != "token":
        raise ConfigError(msg("cli.token_only"), hint=msg("cli.see_help"))
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
    for serious, warning in url_warnings(url):
        (out.warn if serious else out.note)(f"sign: {warning}")
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
    except (UnicodeDecodeError, TimeoutError) as error:
        key = "cli.stdin_timeout" if isinstance(error, TimeoutError) else "cli.stdin_not_utf8"
        raise ConfigError(msg(key, bound=bound), hint=msg("cli.stdin_hint")) from None
    if not line.strip():
        raise ConfigError(msg("cli.stdin_empty"), hint=msg("cli.stdin_hint"))
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


def _choose_language(argv: list[str]) -> None:
    """--lang, looked for before parsing, so that all the run says is in its language,
    --help and argparse's errors too. The last one counts, as for argparse; none counts
    after --, and a word that reads like an option is not its value (argparse says so)."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    given = []
    for word, after in zip(words, [*words[1:], "--"], strict=False):
        if word.startswith("--lang="):
            given.append(word.partition("=")[2])
        elif word == "--lang" and (after == "-" or not after.startswith("-")):
            given.append(after)
    for value in given:
        if value not in messages.LANGUAGES:  # shown if too short to hold a run of the secret
            shown = re.fullmatch(r"[A-Za-z][A-Za-z_-]{0,6}", value)
            problem = msg("cli.lang", value=repr(value)) if shown else msg("cli.lang_unshown")
            raise ConfigError(problem, hint=msg("cli.lang_hint"))
    if given:
        messages.use(given[-1])
    elif messages.language() == "zh" and not encodable("微信", sys.stderr):
        messages.use("en")  # a console that cannot show Chinese would show \u escapes


class _ArgumentParser(argparse.ArgumentParser):
    def _print_message(self, message: str, file: object = None) -> NoReturn:
        raise _HelpAsked(message)  # --help and --version: printed like any result

    def error(self, message: str) -> NoReturn:
        # exit 2, printed like every error, in the run's language; a value typed after an
        # option is not repeated: it may be the AppSecret (from config.ini, read after this)
        named = re.fullmatch(r"argument (\S+): (.*)", message, re.S)
        problem = named[2] if named else message
        for pattern, key in _ARGPARSE_ERRORS:
            if found := re.fullmatch(pattern, problem, re.S):
                problem = msg(key, **found.groupdict())
                break
        if named:
            problem = msg("cli.argument", name=named[1], problem=problem)
        raise ConfigError(problem, hint=msg("cli.see_help"))


# argparse's errors, as its English words them (Python 3.10 to 3.13), and the message that
# says each here, without the value argparse would quote. Some this parser cannot make yet.
_ARGPARSE_ERRORS = (
    ("expected one argument", "cli.expected_one"),
    ("expected at most one argument", "cli.expected_at_most_one"),
    ("expected at least one argument", "cli.expected_at_least_one"),
    (r"not allowed with argument (?P<other>\S+)", "cli.not_allowed_with"),
    ("ignored explicit argument .*", "cli.takes_no_value"),
    (r"invalid choice: .* \(choose from (?P<choices>.*)\)", "cli.invalid_choice"),
    (r"invalid (?P<type>\S+) value: .*", "cli.invalid_value"),
    ("the following arguments are required: (?P<names>.*)", "cli.required"),
    ("one of the arguments (?P<names>.*) is required", "cli.one_required"),
    ("unrecognized arguments: .*", "cli.unrecognized_values"),
)
_WIDE = "\u3000-\u9fff\uff00-\uffef"  # CJK characters and punctuation: two columns each


def _columns(text: str) -> int:
    return len(text) + len(re.findall(f"[{_WIDE}]", text))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, in the run's language ("usage: " is a message), with the description's
    and epilog's lines as written. argparse counts characters: a text holding Chinese is
    wrapped here by its width on screen instead, where a CJK character takes two columns."""

    def __init__(self, prog: str) -> None:
        # the usage's later lines are moved right by what its prefix's CJK characters add
        # (argparse aligns them by its length): every line is kept that much shorter
        import shutil  # here, as argparse imports it: its own imports cost a run 3.5 ms

        self.shift = _columns(msg("help.usage")) - len(msg("help.usage"))
        super().__init__(prog, width=shutil.get_terminal_size().columns - 2 - self.shift)

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, prefix or msg("help.usage"))

    def format_help(self) -> str:
        # the usage's later lines under its first; a heading in Chinese ends with a full-width
        # colon, not argparse's
        usage, gap, rest = super().format_help().partition("\n\n")
        if usage.startswith(msg("help.usage")):  # not --version's text
            usage = usage.replace("\n", "\n" + " " * self.shift)
        return usage + gap + re.sub(f"^(\\S.*[{_WIDE}]):$", "\\1：", rest, flags=re.M)

    def _split_lines(self, text: str, width: int) -> list[str]:
        if not re.search(f"[{_WIDE}]", text):
            return super()._split_lines(text, width)
        # broken at a space or beside a CJK character, not in a word, after an opening
        # bracket or before a closing mark; argparse left single spaces
        lines = [""]
        for token in re.findall(f"[（「]*(?:[{_WIDE}]|[^ {_WIDE}]+)[，。；：）、」]*| ", text):
            if lines[-1].strip() and _columns(lines[-1] + token) > width:
                lines.append(token.lstrip())
            else:
                lines[-1] += token
        return [line.rstrip() for line in lines]


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog=PROG,
        allow_abbrev=False,  # what is parsed is what was typed: --js is not --json
        description=msg("help.description"),
        epilog=msg("help.epilog", prog=PROG, config=DEFAULT_CONFIG),
        formatter_class=_HelpFormatter,
        add_help=False,  # -h is below: its help, as each group's title, is a message
    )
    parser.add_argument_group(msg("help.positionals")).add_argument(
        "command", nargs="*", metavar="COMMAND", help=msg("help.command")
    )
    options = parser.add_argument_group(msg("help.options"))
    options.add_argument("-h", "--help", action="help", help=msg("help.help"))
    options.add_argument("--config", metavar="PATH", help=msg("help.config", config=DEFAULT_CONFIG))
    options.add_argument("--appid", help=msg("help.appid"))
    bases = msg("help.api_base", main=API_BASE, backup=BACKUP_API_BASE)
    options.add_argument("--api-base", metavar="URL", action="append", help=bases)
    options.add_argument("--cacert", metavar="PATH", help=msg("help.cacert"))
    options.add_argument("--timeout", metavar="SECONDS", help=msg("help.timeout"))
    retries = msg("help.retries", default=DEFAULT_RETRIES, most=MAX_RETRIES)
    options.add_argument("--retries", metavar="N", help=retries)
    options.add_argument("--stable", action=argparse.BooleanOptionalAction, help=msg("help.stable"))
    options.add_argument("--valid-for", metavar="SECONDS", help=msg("help.valid_for"))
    options.add_argument("--force-refresh", action="store_true", help=msg("help.force_refresh"))
    cache = options.add_mutually_exclusive_group()
    cache.add_argument("--cache-file", metavar="PATH", help=msg("help.cache_file"))
    cache.add_argument("--no-cache", action="store_true", help=msg("help.no_cache"))
    options.add_argument("--replace", metavar="TOKEN", help=msg("help.replace"))
    proxy = options.add_mutually_exclusive_group()
    proxy.add_argument("--proxy", metavar="URL", help=msg("help.proxy"))
    proxy.add_argument("--no-proxy", action="store_true", help=msg("help.no_proxy"))
    sign = parser.add_argument_group(msg("help.sign"))
    sign.add_argument("--ticket", metavar="TICKET", help=msg("help.ticket"))
    sign.add_argument("--noncestr", metavar="N", help=msg("help.noncestr"))
    sign.add_argument("--timestamp", metavar="T", help=msg("help.timestamp"))
    options.add_argument("--json", action="store_true", help=msg("help.json"))
    options.add_argument("-v", "--verbose", action="store_true", help=msg("help.verbose"))
    options.add_argument("--lang", choices=tuple(messages.LANGUAGES), help=msg("help.lang"))
    version = f"%(prog)s {__version__}"
    options.add_argument("--version", action="version", version=version, help=msg("help.version"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the options only: a mistaken `--appsecret VALUE` must not be echoed.
        names = sorted({arg.split("=")[0] for arg in unknown if arg.startswith("-")})
        # An option's name is shown only if it reads like one: a secret typed after -- is not
        names = [
            name if re.fullmatch(r"--?[a-z-]{1,24}", name) else msg("cli.an_option")
            for name in names
        ]
        if any("secret" in name for name in names):
            raise ConfigError(msg("cli.no_secret_option"), hint=msg("cli.no_secret_option_hint"))
        problem = msg("cli.unrecognized", names=" ".join(names)) if names else None
        raise ConfigError(problem or msg("cli.unrecognized_values"), hint=msg("cli.see_help"))
    return args

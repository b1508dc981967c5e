"""What the command prints: the result on stdout (the token alone, or one JSON object),
messages on stderr, every one of them cleaned (no run of the AppSecret, nothing that can
act on a terminal). The errors of output itself are here too."""

from __future__ import annotations

import json
import os
import sys
import time

from wechat_token import __version__
from wechat_token.errors import WeChatAPIError, WeChatTokenError
from wechat_token.messages import msg
from wechat_token.redact import clean, redact

PROG = "wechat-token"


class OutputError(WeChatTokenError):
    """stdout cannot take the result: closed, full, or broken."""

    hint_key = "hint.output"


class BrokenPipe(OutputError):
    hint_key = "hint.broken_pipe"


class Output:
    """The one place that prints: the result on stdout, messages on stderr, all cleaned."""

    def __init__(self, json_mode: bool, secret: str) -> None:
        self.json_mode = json_mode
        self.verbose = False
        self.secret = secret

    def _message(self, prefix: str, text: str) -> None:
        """One line on stderr. If stderr is closed or broken, the line is lost: it never
        goes to stdout, which carries the token alone."""
        stream = sys.stderr
        if stream is None:  # started with stderr closed
            return
        line = prefix + clean(text, self.secret) + "\n"
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:  # a console that cannot show 中文 or → gets \u escapes, not a traceback
            stream.write(line.encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except (OSError, ValueError):
            _discard(stream)

    def note(self, text: str) -> None:
        if self.verbose:
            self._message("* ", text)

    def warn(self, text: str) -> None:
        self._message("warning: ", text)

    def _result(self, fields: dict[str, str | int | bool] | str) -> None:
        """The token, or one JSON object: its text as itself where stdout can encode it
        (白名单 reads as 白名单), else in ASCII with \\u escapes; valid JSON either way."""
        stream = sys.stdout
        if isinstance(fields, dict):
            shown = {k: self._shown(v) for k, v in fields.items()}
            line = json.dumps(shown, ensure_ascii=False)
            if not encodable(line, stream):
                line = json.dumps(shown)
        else:
            line = fields  # a token (printable ASCII, never a piece of the secret), or --help
        try:
            if stream is None:
                raise OutputError(msg("output.stdout_closed"))
            stream.write(line + "\n")
            stream.flush()  # a closed pipe shows up here, inside main(), not at exit
        except BrokenPipeError:  # the reader went away (`| head -c0`)
            _discard(stream)
            raise BrokenPipe(msg("output.broken_pipe")) from None
        except (OSError, ValueError) as error:  # a full disk, an I/O error, a closed file
            _discard(stream)
            reason = getattr(error, "strerror", None) or str(error)
            raise OutputError(msg("output.cannot_write", reason=reason)) from None

    def _shown(self, value: str | int | bool) -> str | int | bool:
        """A field as --json shows it: cleaned; and *** if its JSON form (where \u00e9 is
        written for é, and a number is digits) would hold a run of the AppSecret. Runs
        cannot cross fields: the JSON between them holds no character a secret can."""
        value = clean(value, self.secret) if isinstance(value, str) else value
        as_json = json.dumps(value)
        return "***" if redact(as_json, self.secret) != as_json else value

    def help(self, text: str) -> int:
        """--help as text; --version as text, or with --json as {"version": ...}."""
        text = text.rstrip("\n")
        is_version = text == f"{PROG} {__version__}"
        self._result({"version": __version__} if self.json_mode and is_version else text)
        return 0

    def success(
        self, value: str, expires_in: int, cached: bool, field: str = "access_token"
    ) -> int:
        """The credential alone, or with --json as {field, expires_in, expires_at, cached}."""
        if self.json_mode:
            expires_at = int(time.time()) + expires_in
            self._result(
                {field: value, "expires_in": expires_in, "expires_at": expires_at, "cached": cached}
            )
        else:
            self._result(value)
        return 0

    def fields(self, fields: dict[str, str | int]) -> int:
        """One JSON object, --json or not: what `sign` prints for wx.config."""
        self._result(dict(fields))
        return 0

    def failure(self, error: WeChatTokenError) -> WeChatTokenError:
        """Print the error and its hint; return the error the run ends with: this one, or
        the OutputError that kept it from being printed (the command maps it to a code)."""
        self._message("error: ", str(error))
        self._message("hint: ", error.hint)
        if self.json_mode and not isinstance(error, OutputError):
            fields: dict[str, str | int | bool] = {"error": str(error), "hint": error.hint}
            if isinstance(error, WeChatAPIError):
                fields = {"errcode": error.errcode, "errmsg": error.errmsg, "hint": error.hint}
            if error.kind:  # for a monitor: refused, busy, quota, config, network, tls, ...
                fields["kind"] = error.kind
            try:
                self._result(fields)
            except OutputError as output_error:
                return self.failure(output_error)
        return error


def encodable(text: str, stream: object) -> bool:
    """Whether `stream` can take `text` as it is, in its encoding."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _discard(stream: object) -> None:
    """After a failed write, point the stream at the null device, so that Python's own
    flush at exit cannot fail again and print a traceback of its own."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())  # type: ignore[attr-defined]
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass  # not a file, or already closed: nothing left to fail at exit

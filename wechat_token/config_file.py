"""config.ini: its [wechat] section read safely, without echoing what it holds."""

from __future__ import annotations

import configparser
import os
import re

from wechat_token.errors import ConfigError
from wechat_token.files import read_small_file
from wechat_token.messages import msg

DEFAULT_CONFIG = "config.ini"
CONFIG_SECTION = "wechat"
CONFIG_KEYS = (
    "appid",
    "appsecret",
    "api_base",
    "ca_bundle",
    "timeout",
    "retries",
    "stable",
    "cache_file",
    "proxy",
    "valid_for",
)


def read_config(path: str, must_exist: bool) -> tuple[dict[str, str], list[str]]:
    """The [wechat] section of the config file, and warnings about the file."""
    parser = configparser.ConfigParser(interpolation=None)  # a '%' in a secret is literal
    try:
        data, mode = read_small_file(path, msg("config_file.the_file"))
        parser.read_string(data.decode("utf-8-sig"))  # -sig: Notepad's BOM is fine
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                msg("config_file.missing", path=path), hint=msg("config_file.missing.hint")
            ) from None
        return {}, []
    except UnicodeDecodeError:
        raise ConfigError(
            msg("config_file.not_utf8", path=path), hint=msg("config_file.not_utf8.hint")
        ) from None
    except OSError as error:
        raise ConfigError(
            msg("config_file.unreadable", path=path, reason=error.strerror),
            hint=msg("config_file.unreadable.hint"),
        ) from None
    except configparser.Error as error:
        raise ConfigError(_config_syntax(error, path), hint=msg("config_file.layout")) from None
    if not parser.has_section(CONFIG_SECTION):
        raise ConfigError(
            msg("config_file.no_section", path=path, section=CONFIG_SECTION),
            hint=msg("config_file.layout"),
        )
    section = dict(parser.items(CONFIG_SECTION))
    for key, value in section.items():  # configparser keeps `value ; note` whole
        if re.search(r"\s[;#]", value):
            raise ConfigError(
                msg("config_file.comment", path=path, key=key),
                hint=msg("config_file.comment.hint"),
            )
    known = msg("list").join(CONFIG_KEYS)
    warnings = [
        msg("config_file.unknown_key", path=path, key=key, section=CONFIG_SECTION, known=known)
        for key in section
        if key not in CONFIG_KEYS
    ]
    if "appsecret" in section and os.name == "posix" and mode & 0o044:  # group or others
        warnings.append(msg("config_file.readable", path=path))
    return section, warnings


def _config_syntax(error: configparser.Error, path: str) -> str:
    """configparser's complaint, without echoing the line (it may hold the secret)."""
    if isinstance(error, configparser.MissingSectionHeaderError):  # a ParsingError too
        return msg("config_file.header_first", path=path, line=error.lineno, section=CONFIG_SECTION)
    if isinstance(error, configparser.ParsingError):
        return msg("config_file.not_key_value", path=path, line=error.errors[0][0])
    if isinstance(error, configparser.DuplicateOptionError):  # not named: it may be the secret
        return msg("config_file.key_twice", path=path, line=error.lineno)
    if isinstance(error, configparser.DuplicateSectionError):
        return msg("config_file.section_twice", path=path, line=error.lineno)
    return msg("config_file.invalid", path=path)

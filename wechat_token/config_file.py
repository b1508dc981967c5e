"""config.ini: its [wechat] section read safely, without echoing what it holds."""

from __future__ import annotations

import configparser
import os
import re

from wechat_token.errors import ConfigError
from wechat_token.files import read_small_file

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
        data, mode = read_small_file(path, "the config file")
        parser.read_string(data.decode("utf-8-sig"))  # -sig: Notepad's BOM is fine
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"{path}: no such file", hint="check the path given with --config"
            ) from None
        return {}, []
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read: {error.strerror}", hint="check the file's permissions"
        ) from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {_config_syntax(error)}", hint=_SEE_EXAMPLE) from None
    if not parser.has_section(CONFIG_SECTION):
        raise ConfigError(f"{path}: no [{CONFIG_SECTION}] section", hint=_SEE_EXAMPLE)
    section = dict(parser.items(CONFIG_SECTION))
    for key, value in section.items():  # configparser keeps `value ; note` whole
        if re.search(r"\s[;#]", value):
            raise ConfigError(
                f"{path}: {key}: a comment after the value",
                hint="config.ini takes comments on lines of their own, starting with ; or #",
            )
    warnings = [
        f"{path}: unknown key '{key}' in [{CONFIG_SECTION}] ignored; "
        f"known keys: {', '.join(CONFIG_KEYS)}"
        for key in section
        if key not in CONFIG_KEYS
    ]
    if "appsecret" in section and os.name == "posix" and mode & 0o044:  # group or others
        warnings.append(f"{path} holds the AppSecret and other users can read it: chmod 600 {path}")
    return section, warnings


_SEE_EXAMPLE = "config.ini.example shows the layout: a [wechat] header, then key = value lines"


def _config_syntax(error: configparser.Error) -> str:
    """configparser's complaint, without echoing the line (it may hold the secret)."""
    if isinstance(error, configparser.MissingSectionHeaderError):  # a ParsingError too
        return f"line {error.lineno}: a [{CONFIG_SECTION}] header must come first"
    if isinstance(error, configparser.ParsingError):
        return f"line {error.errors[0][0]} is not 'key = value'"
    if isinstance(error, configparser.DuplicateOptionError):  # not named: it may be the secret
        return f"line {error.lineno}: a key is given twice"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: a section is given twice"
    return "not a valid config file"

"""WeChat access_token, fetched over verified TLS with pycurl, cached and shared.

    from wechat_token import TokenCache
    tokens = TokenCache(appid, secret)
    token = tokens.get()          # AccessToken(access_token, expires_in)

The command line is `wechat-token` (or `python -m wechat_token`). The modules, from
the top down (each imports only those below it):

    cli          the command: arguments, exit codes; output: what it prints
    api          TokenCache and get_access_token, for Python programs
    config       flags, environment and config.ini into one checked Settings record;
                 config_file: the [wechat] section of config.ini, read safely
    ticket       tickets (jsapi, wx_card): cached like the token, got with it
    cache        the file cache shared by threads and processes; entry: what it
                 holds, and when that can be used; lock: its lock
    retry        bounded retries and failover within one deadline
    fetch        one request, its settings already checked
    http         pycurl, TLS, proxies; endpoints: what is asked for, as data
    files        small files read safely and replaced atomically
    errors       the error classes and their hints; redact: masking the AppSecret;
                 jssdk: the JS-SDK signature, a pure function; messages: what
                 the tool says, one table per language
"""

from __future__ import annotations

__version__ = "2.0.0"

from wechat_token.api import TokenCache, get_access_token
from wechat_token.endpoints import API_BASE, API_BASES, BACKUP_API_BASE, AccessToken, Ticket
from wechat_token.errors import (
    ConfigError,
    ProxyError,
    ResponseError,
    TLSError,
    TransportError,
    WeChatAPIError,
    WeChatTokenError,
)
from wechat_token.jssdk import jsapi_signature

__all__ = [
    "API_BASE",
    "API_BASES",
    "BACKUP_API_BASE",
    "AccessToken",
    "ConfigError",
    "ProxyError",
    "ResponseError",
    "TLSError",
    "Ticket",
    "TokenCache",
    "TransportError",
    "WeChatAPIError",
    "WeChatTokenError",
    "__version__",
    "get_access_token",
    "jsapi_signature",
]

"""The messages in English. Keys are grouped by the module that says them; every key is
also in zh.py, with the same {placeholders} (tests/test_messages.py)."""

MESSAGES: dict[str, str] = {
    # --- errors.py: each error class's hint, and each errcode's ------------------------
    "hint.default": "check this machine's network, then try again",
    "hint.config": "see --help, and config.ini.example for the settings and their values",
    "hint.network": (
        "check that this machine reaches WeChat (DNS, firewall, proxy); "
        "if it usually does, try again in a minute"
    ),
    "hint.tls": (
        "if a corporate proxy re-signs TLS, give its CA with --cacert; otherwise something "
        "is posing as WeChat: verification stays on, on purpose"
    ),
    "hint.response": (
        "this is not WeChat's API answering: check --api-base, and whether a proxy or a "
        "Wi-Fi login page is in the way"
    ),
    # A web page where WeChat's JSON should be: a hotel's or office's login page, or a proxy's.
    "hint.portal": (
        "a Wi-Fi or office login page (captive portal) or a proxy answered instead of WeChat: "
        "log in with a browser on this machine, or set the proxy this network needs "
        "(https_proxy, or proxy in config.ini)"
    ),
    # An HTTP 5xx, after the retries: WeChat's servers have bad minutes too, and so do proxies.
    "hint.server_trouble": (
        "the server had trouble (WeChat's, or a proxy's on the way): try again in a minute; "
        "-v shows each attempt"
    ),
    "excerpt.empty": "(empty body)",
    "errcode": "errcode {errcode}",
    "errcode.said": "errcode {errcode}: {errmsg}",
    "errcode.other": "see WeChat's global return codes (全局返回码说明)",
    "errcode.this_ip": "this machine's public IP",
    "errcode.-1": "WeChat is busy: wait a few seconds and try again",
    "errcode.40001": (
        "the AppSecret is wrong, or another program fetched a newer token for this account: "
        "check the AppSecret at {keys}, and let one program fetch tokens for everyone"
    ),
    "errcode.40002": "grant_type must be client_credential (a bug in the caller)",
    "errcode.40013": (
        "check the AppID at {console} (a Mini Program's: 微信公众平台 → 管理 → 开发管理 → 开发设置)"
    ),
    "errcode.40125": (
        "check or reset the AppSecret at {keys} "
        "(a Mini Program's: 微信公众平台 → 管理 → 开发管理 → 开发设置)"
    ),
    "errcode.40164": (
        "add {ip} to the IP whitelist (API IP 白名单) at {keys} (the same pages for a 服务号); "
        "it must be this machine's public egress IP, not its local address; a range in CIDR "
        "form (203.0.113.0/24) covers egress addresses that change; it applies in minutes"
    ),
    "errcode.40243": "the AppSecret is frozen: unfreeze it at {keys} (takes about 10 minutes)",
    "errcode.41002": "the AppID is missing from the request: set appid in the configuration",
    "errcode.41004": (
        "the AppSecret is missing from the request: set appsecret in the configuration"
    ),
    "errcode.43002": "this endpoint needs POST (a bug in the caller)",
    "errcode.45009": (
        "the daily quota of token requests is used up: reuse a token for its whole "
        "lifetime instead of fetching each time; the quota resets daily, or use clear_quota"
    ),
    "errcode.45011": "too many requests this minute: try again in the next minute",
    "errcode.47001": "the request body is not valid JSON (a bug in the caller)",
    "errcode.89501": "this IP awaits the account administrator's confirmation in WeChat",
    "errcode.89506": (
        "the administrator refused this IP: blocked for 24 hours; ask the administrator"
    ),
    "errcode.89507": "the administrator refused this IP: blocked for 1 hour; ask the administrator",
    # --- output.py, cli.py: the classes' hints ------------------------------------------
    "hint.output": "give the command a stdout that can be written, e.g. TOKEN=$(wechat-token)",
    "hint.broken_pipe": (
        "the program reading this command's output stopped before the token arrived"
    ),
    "hint.internal": "this is a bug in wechat-token: please report it, with the command you ran",
}

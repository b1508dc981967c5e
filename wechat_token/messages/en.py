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
    "quoted": "{message}: {excerpt}",  # a message, then what the server said
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
    # --- http.py, fetch.py, retry.py, files.py, lock.py: the request, the files, the lock ---
    # --- http.py: the request, and libcurl's failures --------------------------------------
    "http.missing": "{package} cannot be imported ({error}); install it: {command}",
    "http.missing_hint": (
        "a fetch needs pycurl and certifi (pip install -r requirements.txt); "
        "a cached token needs neither"
    ),
    "http.timings": (
        "DNS {dns:.1f} ms, connect {connect:.1f} ms, TLS handshake {tls:.1f} ms, "
        "first byte {first_byte:.1f} ms, total {total:.1f} ms"
    ),
    "http.too_large": "response larger than {kib} KiB from {host}: refused",
    "http.tls_expired": "TLS: the certificate of {host} has expired; nothing was sent",
    "http.tls_not_yet_valid": "TLS: the certificate of {host} is not valid yet; nothing was sent",
    "http.clock_hint": (
        "check this machine's clock and time zone (date -u); if it is right, try later"
    ),
    "http.tls_untrusted": (
        "TLS: the certificate of {host} is not from a CA in {cacert} (untrusted CA); "
        "nothing was sent"
    ),
    "http.tls_untrusted_hint": (
        "behind a corporate proxy that re-signs TLS, give its CA with --cacert; "
        "elsewhere, something is posing as WeChat: do not turn verification off"
    ),
    "http.tls_wrong_host": (
        "TLS: the certificate is not for {host} (wrong hostname); nothing was sent"
    ),
    "http.tls_wrong_host_hint": "check --api-base: it must name the host the certificate is for",
    "http.tls_failed": (
        "TLS: the certificate of {host} failed verification: {message}; nothing was sent"
    ),
    "http.plain_http": "{host} answered without TLS (plain http?): {message}",
    "http.plain_http_hint": ("check the port in the API base: it must be the server's https port"),
    "http.handshake": "TLS handshake with {host} failed: {message}",
    "http.bad_url": "libcurl cannot use the URL {url}: {message}",
    "http.bad_url_hint": "write the API base like https://api.weixin.qq.com",
    "http.bad_cacert": "cannot use CA bundle {cacert}: {message}",
    "http.bad_cacert_hint": (
        "give a PEM file of CA certificates, or leave --cacert out to use certifi's"
    ),
    "http.no_connection": "no connection to {host} within {seconds:g} s: {message}",
    "http.cut_off": "the answer from {host} was cut off: {message}",
    "http.no_answer": "no answer from {host} within {seconds:g} s: {message}",
    "http.failed": "request to {host} failed: {message} (curl error {code})",
    "http.check_dns": (
        "check this machine's DNS (getent hosts {host}); where the web is reached only "
        "through a proxy, set https_proxy, or proxy in config.ini"
    ),
    "http.check_route": (
        "check the route and firewall from this machine to {host}; where the web is reached "
        "only through a proxy, set https_proxy, or proxy in config.ini"
    ),
    # the proxy: {proxy} as proxy_shown() shows it; {where}: host:port, as the proxy was asked
    "http.proxy_407": "the proxy {proxy} wants a user and password (HTTP 407) to reach {where}",
    "http.proxy_407_hint": (
        "write them in the proxy's URL, http://user:password@host:port; "
        "if they are there, they are not the right ones"
    ),
    "http.proxy_redirect": (
        "the proxy {proxy} answered HTTP {answer} instead of opening a tunnel to {where}"
    ),
    "http.proxy_refused": "the proxy {proxy} refused the tunnel to {where}: HTTP {answer}",
    "http.proxy_refused_hint": (
        "ask the proxy's administrator to allow {where}, or use another proxy (--no-proxy for none)"
    ),
    "http.proxy_timeout": "no answer from the proxy {proxy} within {seconds:g} s: {message}",
    "http.proxy_timeout_hint": (
        "check the proxy's address and port, and that it speaks HTTP (or the scheme in its "
        "URL); --no-proxy ignores https_proxy"
    ),
    "http.proxy_unreachable": "cannot connect to the proxy {proxy}: {message}",
    "http.proxy_down_hint": (
        "check the proxy's address and that it runs; --no-proxy ignores https_proxy"
    ),
    "http.not_proxy": "{origin}: not a proxy URL; refusing",
    "http.not_proxy_hint": (
        "write it like http://proxy.example.com:3128 or http://user:password@host:port; "
        "%-encode any '@', '/' or ':' in the password, and letters beyond ASCII"
    ),
    "http.not_proxy_shown": "(a value that is not a proxy URL)",
    # where the proxy in use was set, after its URL in -v's "proxy: ..." line
    "http.proxy_env": " ({name} in the environment)",
    "http.proxy_env_exempt": " ({name} in the environment; not for the hosts in no_proxy)",
    # --- fetch.py: -v's lines about the request ---------------------------------------------
    "fetch.request": "{method} {url}",
    "fetch.cacert": "CA bundle: {cacert}",
    "fetch.proxy": "proxy: {proxy}{origin}",
    "fetch.status": "HTTP {status} from {address}",
    "fetch.timings": "time since start: {timings}",
    "fetch.holds_secret": "the {field} in the answer holds the AppSecret: refused",
    "fetch.holds_secret_or_token": (
        "the {field} in the answer holds the AppSecret or the access_token: refused"
    ),
    # --- retry.py ---------------------------------------------------------------------------
    "retry.failed": "attempt {number} of {attempts} failed: {error}",
    "retry.next": "next attempt in {seconds:g} s, via {api_base}",
    "retry.tried": "tried {api_bases}: {hint}",
    "and": " and ",  # between the API bases tried
    "list": ", ",  # between the items of a list
    # --- files.py: {what} is the file's role, e.g. lock.cache_file --------------------------
    "files.folder": "{what} {path} is a folder",
    "files.not_regular": "{what} {path} is not a regular file",
    "files.regular_hint": "point it at a regular file",
    "files.too_large": "{what} {path} is larger than {kib} KiB: not ours",
    "files.right_file_hint": "point it at the right file",
    # --- lock.py: the cache's lock ----------------------------------------------------------
    "cache_file": "the cache file",
    "lock.lock_file": "the cache's lock file",
    "lock.ways_out": "choose another with --cache-file, or run with --no-cache",
    "lock.no_fcntl": "cache: no file locking on this system (no fcntl): using the cache unlocked",
    "lock.cannot_use": "cannot use the cache {path}: {file}: {reason}",
    "lock.waiting": "cache: another caller holds {path}.lock: waiting for its answer",
    "lock.held": "another caller has held {path}.lock for {seconds:.1f} s",
    "lock.no_lock": "cache: cannot lock {path}.lock ({reason}): using the cache unlocked",
    # --- config.py, config_file.py: the settings, checked once ----------------------------
    # --- config.py ------------------------------------------------------------------------
    "config.in_file": "{path}: {key}",  # where a value came from: the config file's key
    "config.defaults": "leave it out for the default; see docs/python.md for each argument",
    "config.unlike_appid": "{origin}: '{appid}' does not look like an AppID (wx + 16 hex)",
    "config.no_api_bases": "api_bases must be a list of https:// URLs, not empty",
    "config.no_home": "no home folder to keep the cache in (HOME is not set)",
    "config.no_home.hint": (
        "set XDG_CACHE_HOME to a folder, or give --cache-file PATH, or run with --no-cache"
    ),
    "config.not_https": "{origin}: '{value}' is not an https:// URL; refusing",
    "config.not_https.hint": "write it like https://api.weixin.qq.com, without a path",
    "config.missing": "no {key}: set {env}, or {key} in [{section}] of {where}",
    "config.missing.no_file": (
        "no {key}: set {env}, or {key} in [{section}] of {where} "
        "(no such file; --config names another)"
    ),
    "config.missing.hint": (
        "copy config.ini.example to {where} and fill in the AppID and AppSecret"
    ),
    "config.empty": "{origin}: empty value",
    "config.empty.hint": "give it a value, or leave it out",
    "config.placeholder": "{origin}: still the example's placeholder, not your {key}",
    "config.not_secret": "{origin}: not an AppSecret: {problem}",
    "config.not_secret.hint": (
        "copy the AppSecret again from {keys}: it is 16 to 64 letters, digits, - or _ "
        "(WeChat's are 32 hex characters, WeCom's 43); a stray quote, space or line "
        "break from a paste is the usual cause"
    ),
    # {problem} of config.not_secret: its length, or what it holds ({kinds}, joined)
    "config.secret.one_character": "it has 1 character",
    "config.secret.characters": "it has {count} characters",
    "config.secret.holds": "it holds {kinds}",
    "config.secret.line_break": "a line break",
    "config.secret.quote": "a quote",
    "config.secret.space": "a space",
    "config.secret.other": "another character",
    "config.too_long": "{origin}: {length} characters long; an AppID has 18",
    "config.not_one_word": "{origin}: contains whitespace or a non-printable character",
    # The hints that say where WeChat's console shows the AppID, or the AppSecret
    "config.appid.give": "give the appid shown at {console}",
    "config.appsecret.give": "give the appsecret shown at {keys}",
    "config.appid.replace": "replace it with the appid shown at {console}",
    "config.appsecret.replace": "replace it with the appsecret shown at {keys}",
    "config.appid.again": "copy the appid again from {console}",
    "config.appsecret.again": "copy the appsecret again from {keys}",
    "config.appid.one_word": (
        "copy the appid again from {console}: it is one word of letters and digits"
    ),
    "config.appsecret.one_word": (
        "copy the appsecret again from {keys}: it is one word of letters and digits"
    ),
    "config.swapped": "{origin}: that is not an AppID: it looks like an AppSecret",
    "config.swapped.hint": (
        "an AppID is wx and 16 hex characters; the AppSecret goes in "
        "WECHAT_APPSECRET or appsecret (are the two swapped?)"
    ),
    "config.quoted": "{origin}: remove the quotes around the value",
    "config.quoted.hint": "config.ini takes values as written: appid = wx0123456789abcdef",
    "config.nul": "{origin}: contains a NUL character",
    "config.nul.hint": "retype the value",
    "config.ca_missing": "{origin}: CA bundle '{path}' not found, or not a file",
    "config.ca_large": "{origin}: CA bundle '{path}' is larger than {mib} MiB",
    "config.ca.hint": "give the path of a PEM file with the CA certificates to trust",
    "config.valid_for": ("{origin}: '{value}' must be a whole number of seconds from 0 to {most}"),
    "config.valid_for.hint": (
        "WeChat's tokens live 7200 s: ask for no more than the job needs, e.g. 3900 "
        "for an hourly job"
    ),
    "config.retries": "{origin}: '{value}' must be a whole number from 0 to {most}",
    "config.retries.hint": "the default is {retries}",
    "config.yes_no": "{origin}: '{value}' must be yes or no",
    "config.yes_no.hint": "the default is no",
    "config.timeout": "{origin}: '{value}' is not a number of seconds",
    "config.timeout.range": "{origin}: '{value}' must be more than 0 and at most {most}",
    "config.timeout.hint": "the default is {seconds:g}",
    # --- config_file.py -------------------------------------------------------------------
    "config_file.the_file": "the config file",  # files.py's {what}: "{what} {path} is ..."
    "config_file.missing": "{path}: no such file",
    "config_file.missing.hint": "check the path given with --config",
    "config_file.not_utf8": "{path}: not UTF-8 text",
    "config_file.not_utf8.hint": "save it as UTF-8",
    "config_file.unreadable": "{path}: cannot read: {reason}",  # {reason}: the system's
    "config_file.unreadable.hint": "check the file's permissions",
    "config_file.header_first": "{path}: line {line}: a [{section}] header must come first",
    "config_file.not_key_value": "{path}: line {line} is not 'key = value'",
    "config_file.key_twice": "{path}: line {line}: a key is given twice",
    "config_file.section_twice": "{path}: line {line}: a section is given twice",
    "config_file.invalid": "{path}: not a valid config file",
    "config_file.no_section": "{path}: no [{section}] section",
    "config_file.layout": (
        "config.ini.example shows the layout: a [wechat] header, then key = value lines"
    ),
    "config_file.comment": "{path}: {key}: a comment after the value",
    "config_file.comment.hint": (
        "config.ini takes comments on lines of their own, starting with ; or #"
    ),
    "config_file.unknown_key": (
        "{path}: unknown key '{key}' in [{section}] ignored; known keys: {known}"
    ),
    "config_file.readable": (
        "{path} holds the AppSecret and other users can read it: chmod 600 {path}"
    ),
    # --- cache.py, entry.py, api.py, ticket.py, jssdk.py, endpoints.py --------------------
    # --- cache.py: -v lines, warnings and errors of the shared cache --------------------
    "cache.token_hit": "cache: token from {path}, valid for {left} s more",
    "cache.ticket_hit": "cache: ticket from {path}, valid for {left} s more",
    "cache.token_not_used": "cache: not using the token in {path}: {why}",
    "cache.ticket_not_used": "cache: not using the ticket in {path}: {why}",
    "cache.holds_secret": "its token holds a piece of the AppSecret",
    "cache.was_refused": "it is the token that was refused",
    "cache.going_alone": (
        "cache: {held}, and may hold it past this run's end: trying this run's own way"
    ),
    "cache.force_refresh": "cache: --force-refresh, not reading {path}",
    "cache.held_too_late": "another caller held {path}.lock until too late",
    "cache.gave_up": "gave up at the time bound of this run: {why}",
    "cache.gave_up.hint": (
        "it stops by itself within its own time bound: run this again then, or give "
        "this run its own --cache-file"
    ),
    "cache.shared_refusal": (
        "{error} (WeChat's answer to another caller {age:.1f} s ago; it is asked "
        "again {kept} s after)"
    ),
    "cache.refusal_saved": "cache: refusal saved in {path}",
    "cache.token_saved": "cache: token saved in {path}",
    "cache.ticket_saved": "cache: ticket saved in {path}",
    "cache.refusal_not_saved": "cache: could not save the refusal in {path}: {why}",
    "cache.would_hold_secret": "it would hold a piece of the AppSecret",
    "cache.os_error": "error",
    "cache.token_unsaved": (
        "could not save the token in {path}: {why}; the old entry is removed, so the next "
        "run fetches a new token"
    ),
    "cache.ticket_unsaved": (
        "could not save the ticket in {path}: {why}; the old entry is removed, so the next "
        "run fetches a new ticket"
    ),
    "cache.token_unsaved_stays": (
        "could not save the token in {path}: {why}; nor remove the old entry ({error}): the "
        "next run may print the token this run replaced, which WeChat no longer accepts"
    ),
    "cache.ticket_unsaved_stays": (
        "could not save the ticket in {path}: {why}; nor remove the old entry ({error}): the "
        "next run may print the ticket this run replaced, which WeChat no longer accepts"
    ),
    "cache.same_token_back": (
        "WeChat handed back the very token that was refused; not forcing a refresh on "
        "its own: if that token leaked, run with --force-refresh"
    ),
    "cache.stable_too_short": (
        "the stable token has {left} s left, less than --valid-for {valid_for}: "
        "WeChat hands out the same one until its last minutes"
    ),
    "cache.stable_too_short.hint": (
        "run again once it has been replaced, ask for less, or add --force-refresh "
        "(at most 20 a day; every caller's stable token changes)"
    ),
    "cache.too_short": "WeChat's new token lives {left} s, less than --valid-for {valid_for}",
    "cache.too_short.hint": "ask for less: WeChat's tokens live 7200 s",
    # --- entry.py: the cache file's entry, and why a cached one is not reused ------------
    "entry.not_a_cache_file": "{path} is not a cache file: refusing to replace what it holds",
    "entry.not_a_cache_file.hint": (
        "name another file with --cache-file (is it --config that was meant?)"
    ),
    "entry.unreadable": "cannot read the cache {path}: {error}",
    "entry.nothing_yet": "cache: nothing in {path} yet",
    "entry.damaged": "cache: {path} is a damaged entry; it will be replaced",
    "entry.other_account": "it is for another AppID or endpoint",
    "entry.other_realm": "it is for {realm}",
    "entry.other_secret": "it was fetched with another AppSecret",
    "entry.within_margin": "it has {left:.0f} s left, and {kept:.0f} s is the margin",
    "entry.short_of_valid_for": (
        "it has {left:.0f} s left, and --valid-for asks for {valid_for:.0f} s"
    ),
    # --- ticket.py: getticket's own hints, and its -v line ------------------------------
    "ticket.hint.45009": (
        "getticket's daily quota is spent (it is small: about 10,000 a day): keep the "
        "ticket cached and shared, as this tool does, and see where else it is fetched; the "
        "quota is reset at midnight, Beijing time"
    ),
    "ticket.hint.40097": "getticket refused its arguments: type must be jsapi or wx_card",
    "ticket.refused_again": (
        "getticket refused a token fetched just now: check that the AppID and AppSecret are "
        "of the account whose JS-SDK this is, and that nothing else replaces its token all "
        "the time"
    ),
    "ticket.replacing": (
        "getticket: errcode {errcode}: the access_token it was given is no longer good; "
        "replacing it, once (a new token from /cgi-bin/token invalidates the one other "
        "programs hold, within 5 minutes; --stable does not)"
    ),
    "ticket.replacing_stable": (
        "getticket: errcode {errcode}: the access_token it was given is no longer good; "
        "replacing it, once"
    ),
    # --- jssdk.py: what cannot be signed, and what in a URL makes a bad signature -------
    "jssdk.hint": "see docs/jssdk.md for what wx.config signs",
    "jssdk.bad_ticket": "ticket must be printable ASCII with no spaces",
    "jssdk.bad_noncestr": "noncestr must be printable ASCII with no spaces",
    "jssdk.bad_timestamp": "timestamp must be a whole number of seconds",
    "jssdk.bad_url": "url must be the page's URL, printable, before any #",
    "jssdk.fragment": "the #fragment is not signed: signing the URL without it",
    "jssdk.percent_encoded": (
        "the URL looks percent-encoded as a whole (https%3A%2F%2F...): sign it as the "
        "page's address bar shows it, decoded"
    ),
    "jssdk.no_scheme": "the URL has no http:// or https://: sign the page's full URL",
    # --- api.py: the Python API's arguments ----------------------------------------------
    "api.bad_kind": "kind must be 'jsapi' or 'wx_card'",
    "api.bad_kind.hint": "jsapi: the JS-SDK's jsapi_ticket; wx_card: the card API's api_ticket",
    "api.not_str": "{name} must be a str, not {kind}",
    "api.not_bool": "{name} must be True or False, not {kind}",
    "api.not_seconds": "{name} must be a number of seconds, not {kind}",
    "api.not_int": "{name} must be an int, not {kind}",
    "api.not_str_or_none": "{name} must be a str or None, not {kind}",
    "api.not_path": "{name} must be a str, a path or None, not {kind}",
    "api.bad_log": "log must be a function of one str, or None, not {kind}",
    "api.bases_not_list": "api_bases must be a list of https:// URLs, not {kind}",
    "api.bases_not_str": "api_bases must be a list of https:// URLs, not a list with {kind}",
    "api.huge": "a huge number",
    # --- endpoints.py: an answer that is not WeChat's token ------------------------------
    "endpoints.web_page": "HTTP {status}: a web page, not WeChat's answer ({page})",
    "endpoints.page": "{kind}, {size} bytes",
    "endpoints.titled_page": "{kind}, {size} bytes, titled {title}",
    "endpoints.no_content_type": "no Content-Type",
    "endpoints.not_200": "HTTP {status} instead of 200",
    "endpoints.empty": "empty response (HTTP 200 with no body)",
    "endpoints.not_json": "response is not JSON",
    "endpoints.not_object": "response is not a JSON object",
    "endpoints.malformed_error": "malformed error answer",
    "endpoints.no_field": "no usable {field} in the response",
    # --- cli.py, output.py: the command, its --help, and what it prints -------------------
    # --- cli.py: the command line ---------------------------------------------------------
    "cli.see_help": "see --help",
    "cli.internal": "internal error: {kind}: {error}",
    "cli.usage_ticket": "usage: {prog} ticket jsapi, or ticket wx_card",
    "cli.usage_sign": "usage: {prog} sign URL",
    "cli.unrecognized": "unrecognized arguments: {names}",
    "cli.unrecognized_values": "unrecognized arguments: (values)",
    "cli.an_option": "(an option)",
    "cli.sign_only": "{option} is for the sign command",
    "cli.token_only": "--replace is for the token",
    "cli.no_secret_option": "the AppSecret has no option",
    "cli.no_secret_option_hint": (
        "set WECHAT_APPSECRET, or appsecret in config.ini: every user of this machine can "
        "read command lines"
    ),
    "cli.not_a_token": "--replace: that is not an access_token (printable ASCII, no spaces)",
    "cli.not_a_token_hint": "give the token that the API call refused, or - to read it from stdin",
    "cli.stdin_not_utf8": "--replace -: stdin is not UTF-8 text",
    "cli.stdin_timeout": (
        "--replace -: no token arrived on stdin within the run's time bound ({bound:g} s)"
    ),
    "cli.stdin_empty": "--replace -: stdin is empty",
    "cli.stdin_hint": (
        'pipe in the token that the API call refused: echo "$TOKEN" | wechat-token --replace -'
    ),
    "cli.lang": "--lang: {value} must be en or zh",
    "cli.lang_unshown": "--lang: the value given must be en or zh",
    "cli.lang_hint": (
        "en: English, zh: 简体中文; without --lang, the locale decides (LC_ALL, LC_MESSAGES, LANG)"
    ),
    # argparse's own errors, in our words; a value it would quote is left out
    "cli.argument": "argument {name}: {problem}",
    "cli.expected_one": "expected one argument",
    "cli.expected_at_most_one": "expected at most one argument",
    "cli.expected_at_least_one": "expected at least one argument",
    "cli.not_allowed_with": "not allowed with argument {other}",
    "cli.takes_no_value": "it takes no value",
    "cli.invalid_choice": "invalid choice (choose from {choices})",
    "cli.invalid_value": "invalid {type} value",
    "cli.required": "the following arguments are required: {names}",
    "cli.one_required": "one of the arguments {names} is required",
    # --- output.py --------------------------------------------------------------------------
    "output.stdout_closed": "stdout is closed: there is nowhere to print the token",
    "output.broken_pipe": "stdout was closed before the output was written",
    "output.cannot_write": "cannot write to stdout: {reason}",
    # --- --help (cli.py) ---------------------------------------------------------------------
    "help.usage": "usage: ",
    "help.positionals": "positional arguments",
    "help.options": "options",
    "help.description": (
        "Fetch a WeChat Official Account access_token over verified TLS.\n"
        "The AppSecret comes from WECHAT_APPSECRET or the config file, never from a\n"
        "flag: every user of the machine can read command lines."
    ),
    "help.epilog": (
        "output:\n"
        "  stdout carries the token alone, or with --json one JSON object, so that\n"
        "  TOKEN=$({prog}) works; messages go to stderr.\n"
        "\n"
        "configuration:\n"
        "  WECHAT_APPID and WECHAT_APPSECRET, else {config} in the current folder\n"
        "  (or --config PATH); config.ini.example shows every key. A proxy: --proxy, or\n"
        "  proxy in the config; else https_proxy and no_proxy, as curl reads them.\n"
        "\n"
        "exit codes:\n"
        "  0 token printed, 1 WeChat answered an errcode, 2 usage or configuration,\n"
        "  3 network, TLS, HTTP or response failure, 74 stdout cannot take the token,\n"
        "  141 stdout closed early, 70 a bug in this tool. Ctrl-C: killed by SIGINT.\n"
    ),
    "help.command": (
        "ticket jsapi | ticket wx_card: print that ticket; sign URL: the wx.config fields for "
        "the page at URL (default: print the access_token)"
    ),
    "help.help": "show this help message and exit",
    "help.config": "config file (default {config})",
    "help.appid": "the AppID (default: WECHAT_APPID, then config)",
    "help.api_base": "API base URL; give it again for a backup (default {main} then {backup})",
    "help.cacert": "CA bundle (default: certifi's)",
    "help.timeout": "bound for each attempt (10)",
    "help.retries": (
        "extra attempts after errcode -1, HTTP 5xx or a network failure "
        "(default {default}, at most {most})"
    ),
    "help.stable": "use POST /cgi-bin/stable_token: one token shared by every caller",
    "help.valid_for": (
        "print a token that stays valid at least this long (fetched anew if the cached one "
        "would not); e.g. 3900 for an hourly cron job"
    ),
    "help.force_refresh": (
        "fetch a new token even if the cached one is good (it invalidates the old one)"
    ),
    "help.cache_file": (
        "where to keep the token (default: a file per AppID in ~/.cache/wechat_token)"
    ),
    "help.no_cache": "neither read nor write a cache",
    "help.replace": (
        "TOKEN was refused by an API call (40001, 42001, 40014): fetch a new one, unless "
        "another process already has; - reads TOKEN from stdin"
    ),
    "help.proxy": (
        "send the request through this proxy, e.g. http://host:3128 (default: https_proxy in "
        "the environment)"
    ),
    "help.no_proxy": "use no proxy, whatever is set",
    "help.sign": "sign URL: reproduce a signature offline",
    "help.ticket": "sign with this jsapi_ticket: no request",
    "help.noncestr": "this nonceStr (default: a random one)",
    "help.timestamp": "this timestamp (default: now)",
    "help.json": "print one JSON object",
    "help.verbose": "show what happens",
    "help.lang": (
        "the language of messages and --help: en (English) or zh (Chinese); default: the locale's"
    ),
    "help.version": "show program's version number and exit",
}

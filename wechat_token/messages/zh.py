"""The messages in Chinese (简体中文), for a reader whose locale is zh_*: written for that
reader, with the names WeChat's own console uses (开发密钥, IP 白名单, 接口调用凭据).
Same keys and {placeholders} as en.py (tests/test_messages.py)."""

MESSAGES: dict[str, str] = {
    # --- errors.py -----------------------------------------------------------------------
    "hint.default": "请检查本机网络，然后重试",
    "hint.config": "请查看 --help，以及 config.ini.example 中的配置项和取值",
    "hint.network": (
        "请确认本机能访问微信接口（DNS、防火墙、代理）；如果平时能访问，请一分钟后重试"
    ),
    "hint.tls": (
        "如果公司代理会重新签发 TLS 证书，请用 --cacert 指定该代理的 CA 证书；"
        "否则说明有人在冒充微信：本工具有意始终开启证书校验"
    ),
    "hint.response": ("响应不是来自微信接口：请检查 --api-base，以及中间是否有代理或 Wi-Fi 登录页"),
    "hint.portal": (
        "返回响应的是 Wi-Fi 或公司网络的登录页（强制门户）或代理，而不是微信："
        "请在本机用浏览器登录，或设置这个网络需要的代理"
        "（环境变量 https_proxy，或 config.ini 中的 proxy）"
    ),
    "hint.server_trouble": (
        "服务器出错（微信的服务器，或途中的代理）：请一分钟后重试；加 -v 可以看到每次尝试的情况"
    ),
    "quoted": "{message}：{excerpt}",  # a message, then what the server said
    "excerpt.empty": "（响应体为空）",
    "errcode": "微信返回 errcode {errcode}",
    "errcode.said": "微信返回 errcode {errcode}：{errmsg}",
    "errcode.other": "请在微信文档的「全局返回码说明」中查这个 errcode",
    "errcode.this_ip": "本机的公网 IP",
    "errcode.-1": "微信系统繁忙：请稍等几秒再试",
    "errcode.40001": (
        "AppSecret 错误，或者另一个程序为这个账号获取了新的 access_token，把这个顶掉了："
        "请到 {keys} 核对 AppSecret，并只让一个程序统一获取 access_token，供其他程序共用"
    ),
    "errcode.40002": "grant_type 必须是 client_credential（调用方的 bug）",
    "errcode.40013": (
        "请到 {console} 核对 AppID（小程序的 AppID 在 微信公众平台 → 管理 → 开发管理 → 开发设置）"
    ),
    "errcode.40125": (
        "请到 {keys} 核对或重置 AppSecret"
        "（小程序的 AppSecret 在 微信公众平台 → 管理 → 开发管理 → 开发设置）"
    ),
    "errcode.40164": (
        "请把 {ip} 加入 {keys} 中的「API IP 白名单」（服务号则在 我的业务 → 服务号 下的同名页面）；"
        "要填本机的公网出口 IP，而不是内网地址；如果出口 IP 会变，可以填 CIDR 网段"
        "（如 203.0.113.0/24）；修改后几分钟内生效"
    ),
    "errcode.40243": "AppSecret 已被冻结：请到 {keys} 解冻（约 10 分钟后生效）",
    "errcode.41002": "请求中缺少 AppID：请设置环境变量 WECHAT_APPID 或配置项 appid",
    "errcode.41004": ("请求中缺少 AppSecret：请设置环境变量 WECHAT_APPSECRET 或配置项 appsecret"),
    "errcode.43002": "这个接口必须用 POST 方法调用（调用方的 bug）",
    "errcode.45009": (
        "今天获取 access_token 的次数已达上限：请在有效期内重复使用同一个 access_token，"
        "不要每次都重新获取；次数每天重置，也可以调用 clear_quota 接口清零"
    ),
    "errcode.45011": "请求过于频繁，已达本分钟的上限：请等到下一分钟再试",
    "errcode.47001": "请求体不是合法的 JSON（调用方的 bug）",
    "errcode.89501": "这个 IP 正在等待账号管理员在微信中确认",
    "errcode.89506": "管理员拒绝了这个 IP 的调用：24 小时内不能再从这个 IP 调用；请联系管理员",
    "errcode.89507": "管理员拒绝了这个 IP 的调用：1 小时内不能再从这个 IP 调用；请联系管理员",
    # --- output.py, cli.py --------------------------------------------------------------
    "hint.output": "请让这个命令的标准输出可以写入，例如 TOKEN=$(wechat-token)",
    "hint.broken_pipe": "读取本命令输出的程序在 access_token 输出之前就退出了",
    "hint.internal": "这是 wechat-token 的 bug：请报告给我们，并附上你运行的命令",
    # --- http.py, fetch.py, retry.py, files.py, lock.py: the request, the files, the lock ---
    # --- http.py ---------------------------------------------------------------------------
    "http.missing": "无法导入 {package}（{error!r}）；请安装：{command}",
    "http.missing_hint": (
        "从微信获取 access_token 需要 pycurl 和 certifi（pip install -r requirements.txt）；"
        "只用缓存中的 access_token 时两者都不需要"
    ),
    "http.timings": (
        "DNS 解析 {dns:.1f} ms，建立连接 {connect:.1f} ms，TLS 握手 {tls:.1f} ms，"
        "收到首字节 {first_byte:.1f} ms，总计 {total:.1f} ms"
    ),
    "http.too_large": "来自 {host} 的响应超过 {kib} KiB：已拒绝",
    "http.tls_expired": "TLS：{host} 的证书已过期；没有发送任何数据",
    "http.tls_not_yet_valid": "TLS：{host} 的证书尚未生效；没有发送任何数据",
    "http.clock_hint": "请检查本机的时钟和时区（date -u）；如果时间无误，请稍后再试",
    "http.tls_untrusted": (
        "TLS：{host} 的证书不是由 {cacert} 中的 CA 签发的（不受信任的 CA）；没有发送任何数据"
    ),
    "http.tls_untrusted_hint": (
        "如果本机位于会重新签发 TLS 证书的公司代理之后，请用 --cacert 指定该代理的 CA 证书；"
        "否则说明有人在冒充微信：不要关闭证书校验"
    ),
    "http.tls_wrong_host": "TLS：证书不是签发给 {host} 的（主机名不符）；没有发送任何数据",
    "http.tls_wrong_host_hint": "请检查 --api-base：其中的主机名必须与证书上的主机名一致",
    "http.tls_failed": "TLS：{host} 的证书未通过校验：{message!r}；没有发送任何数据",
    "http.plain_http": "{host} 的响应没有使用 TLS（这个端口提供的是普通 http？）：{message!r}",
    "http.plain_http_hint": "请检查 API 地址中的端口：必须是服务器的 https 端口",
    "http.handshake": "与 {host} 的 TLS 握手失败：{message!r}",
    "http.bad_url": "libcurl 无法使用 URL {url}：{message!r}",
    "http.bad_url_hint": "API 地址请写成 https://api.weixin.qq.com 这样的形式",
    "http.bad_cacert": "无法使用 CA 证书文件 {cacert}：{message!r}",
    "http.bad_cacert_hint": (
        "请指定一个 PEM 格式的 CA 证书文件，或者去掉 --cacert，改用 certifi 自带的 CA 证书"
    ),
    "http.no_connection": "{seconds:g} 秒内未能连接到 {host}：{message!r}",
    "http.cut_off": "{host} 的响应没有传完，连接就断开了：{message!r}",
    "http.no_answer": "{host} 在 {seconds:g} 秒内没有响应：{message!r}",
    "http.failed": "请求 {host} 失败：{message!r}（curl 错误码 {code}）",
    "http.check_dns": (
        "请检查本机的 DNS（getent hosts {host}）；如果这个网络只能通过代理访问外网，"
        "请设置环境变量 https_proxy，或 config.ini 中的 proxy"
    ),
    "http.check_route": (
        "请检查本机到 {host} 的路由和防火墙；如果这个网络只能通过代理访问外网，"
        "请设置环境变量 https_proxy，或 config.ini 中的 proxy"
    ),
    "http.proxy_407": "代理 {proxy} 要求提供用户名和密码（HTTP 407）才能访问 {where}",
    "http.proxy_407_hint": (
        "请把用户名和密码写在代理的 URL 中：http://user:password@host:port；"
        "如果已经写了，说明用户名或密码不对"
    ),
    "http.proxy_redirect": "代理 {proxy} 返回了 HTTP {answer}，而不是建立到 {where} 的隧道",
    "http.proxy_refused": "代理 {proxy} 拒绝建立到 {where} 的隧道：HTTP {answer}",
    "http.proxy_refused_hint": (
        "请让代理的管理员放行 {where}，或者换一个代理（--no-proxy 表示不使用代理）"
    ),
    "http.proxy_timeout": "代理 {proxy} 在 {seconds:g} 秒内没有响应：{message!r}",
    "http.proxy_timeout_hint": (
        "请检查代理的地址和端口，以及代理使用的是否是 HTTP 协议（或其 URL 中写明的协议）；"
        "加 --no-proxy 可以忽略环境变量 https_proxy"
    ),
    "http.proxy_unreachable": "无法连接到代理 {proxy}：{message!r}",
    "http.proxy_down_hint": (
        "请检查代理的地址，以及代理是否在运行；加 --no-proxy 可以忽略环境变量 https_proxy"
    ),
    "http.not_proxy": "{origin}：不是代理 URL，拒绝使用",
    "http.not_proxy_hint": (
        "请写成 http://proxy.example.com:3128 或 http://user:password@host:port 这样的形式；"
        "密码中的 '@'、'/'、':' 和非 ASCII 字符要写成百分号编码（如 '@' 写成 %40）"
    ),
    "http.not_proxy_shown": "（不是代理 URL 的值）",
    "http.proxy_env": "（环境变量 {name}）",
    "http.proxy_env_exempt": "（环境变量 {name}；no_proxy 中的主机不走代理）",
    # --- fetch.py --------------------------------------------------------------------------
    "fetch.request": "发送请求：{method} {url}",
    "fetch.cacert": "CA 证书文件：{cacert}",
    "fetch.proxy": "代理：{proxy}{origin}",
    "fetch.status": "HTTP {status}，来自 {address}",
    "fetch.timings": "各阶段耗时（从请求开始累计）：{timings}",
    "fetch.holds_secret": "响应中的 {field} 含有 AppSecret：已拒绝",
    "fetch.holds_secret_or_token": "响应中的 {field} 含有 AppSecret 或 access_token：已拒绝",
    # --- retry.py --------------------------------------------------------------------------
    "retry.failed": "第 {number} 次尝试（共 {attempts} 次）失败：{error}",
    "retry.next": "{seconds:g} 秒后通过 {api_base} 再次尝试",
    "retry.tried": "已尝试 {api_bases}：{hint}",
    "and": "、",
    "list": "、",
    # --- files.py --------------------------------------------------------------------------
    "files.folder": "{what} {path} 是目录，不是文件",
    "files.not_regular": "{what} {path} 不是普通文件",
    "files.regular_hint": "请指定一个普通文件",
    "files.too_large": "{what} {path} 超过 {kib} KiB：不像是本工具的文件",
    "files.right_file_hint": "请指定正确的文件",
    # --- lock.py ---------------------------------------------------------------------------
    "cache_file": "缓存文件",
    "lock.lock_file": "缓存的锁文件",
    "lock.ways_out": "请用 --cache-file 换一个缓存文件，或者加 --no-cache 运行",
    "lock.no_fcntl": "缓存：本系统不支持文件锁（没有 fcntl），将在不加锁的情况下使用缓存",
    "lock.cannot_use": "无法使用缓存 {path}：{file}：{reason!r}",
    "lock.waiting": "缓存：另一个调用方持有锁 {path}.lock，正在等待对方获取的结果",
    "lock.held": "另一个调用方持有锁 {path}.lock 已有 {seconds:.1f} 秒",
    "lock.no_lock": "缓存：无法锁定 {path}.lock（{reason!r}），将在不加锁的情况下使用缓存",
    # --- config.py, config_file.py: the settings, checked once ----------------------------
    # --- config.py ------------------------------------------------------------------------
    "config.in_file": "{path} 中的 {key}",
    "config.defaults": "不传这个参数即用默认值；各参数的说明见 docs/python.zh-CN.md",
    "config.unlike_appid": ("{origin}：'{appid}' 看起来不像 AppID（应为 wx 加 16 位十六进制字符）"),
    "config.no_api_bases": "api_bases 必须是由 https:// URL 组成的列表，不能为空",
    "config.no_home": "找不到存放缓存的主目录（未设置 HOME）",
    "config.no_home.hint": (
        "请把 XDG_CACHE_HOME 设为一个目录，或用 --cache-file PATH 指定缓存文件，"
        "或加 --no-cache 运行"
    ),
    "config.not_https": "{origin}：'{value}' 不是 https:// URL，拒绝使用",
    "config.not_https.hint": "请写成 https://api.weixin.qq.com 这样的形式，不带路径",
    "config.missing": (
        "缺少 {key}：请设置环境变量 {env}，或在 {where} 的 [{section}] 中设置 {key}"
    ),
    "config.missing.no_file": (
        "缺少 {key}：请设置环境变量 {env}，或在 {where} 的 [{section}] 中设置 {key}"
        "（这个文件不存在；可以用 --config 指定其他文件）"
    ),
    "config.missing.hint": "请把 config.ini.example 复制为 {where}，并填入 AppID 和 AppSecret",
    "config.empty": "{origin}：值为空",
    "config.empty.hint": "请填写一个值，或者去掉这项设置",
    "config.placeholder": "{origin}：仍是示例中的占位符，不是你的 {key}",
    "config.not_secret": "{origin}：不是有效的 AppSecret：{problem}",
    "config.not_secret.hint": (
        "请从 {keys} 重新复制 AppSecret：AppSecret 由 16 到 64 个字母、数字、- 或 _ 组成"
        "（微信的是 32 位十六进制字符，企业微信的是 43 位）；"
        "最常见的原因是粘贴时多带了引号、空格或换行"
    ),
    "config.secret.one_character": "只有 1 个字符",
    "config.secret.characters": "长度为 {count} 个字符",
    "config.secret.holds": "其中含有{kinds}",
    "config.secret.line_break": "换行符",
    "config.secret.quote": "引号",
    "config.secret.space": "空格",
    "config.secret.other": "不允许的字符",
    "config.too_long": "{origin}：长度为 {length} 个字符，而 AppID 只有 18 个字符",
    "config.not_one_word": "{origin}：含有空白或不可打印的字符",
    "config.appid.give": "请填写 {console} 中显示的 AppID",
    "config.appsecret.give": "请填写 {keys} 中显示的 AppSecret",
    "config.appid.replace": "请换成 {console} 中显示的 AppID",
    "config.appsecret.replace": "请换成 {keys} 中显示的 AppSecret",
    "config.appid.again": "请从 {console} 重新复制 AppID",
    "config.appsecret.again": "请从 {keys} 重新复制 AppSecret",
    "config.appid.one_word": (
        "请从 {console} 重新复制 AppID：AppID 是一串连续的字母和数字，中间没有空白"
    ),
    "config.appsecret.one_word": (
        "请从 {keys} 重新复制 AppSecret：AppSecret 是一串连续的字母和数字，中间没有空白"
    ),
    "config.swapped": "{origin}：这不是 AppID，看起来是 AppSecret",
    "config.swapped.hint": (
        "AppID 是 wx 加 16 位十六进制字符；AppSecret 应该填在环境变量 WECHAT_APPSECRET "
        "或配置项 appsecret 中（是不是把两者填反了？）"
    ),
    "config.quoted": "{origin}：请去掉值两边的引号",
    "config.quoted.hint": (
        "config.ini 中的值按原样读取，不要加引号，例如：appid = wx0123456789abcdef"
    ),
    "config.nul": "{origin}：含有 NUL 字符",
    "config.nul.hint": "请重新输入这个值",
    "config.ca_missing": "{origin}：找不到 CA 证书文件 '{path}'，或者该路径不是普通文件",
    "config.ca_large": "{origin}：CA 证书文件 '{path}' 超过了 {mib} MiB",
    "config.ca.hint": "请指定 PEM 格式的 CA 证书文件的路径，文件中是要信任的 CA 证书",
    "config.valid_for": "{origin}：'{value}' 必须是 0 到 {most} 之间的整数秒数",
    "config.valid_for.hint": (
        "微信的 access_token 有效期为 7200 秒：请按任务的实际需要设置，"
        "例如每小时运行一次的任务设为 3900"
    ),
    "config.retries": "{origin}：'{value}' 必须是 0 到 {most} 之间的整数",
    "config.retries.hint": "默认重试 {retries} 次",
    "config.yes_no": "{origin}：'{value}' 只能是 yes 或 no",
    "config.yes_no.hint": "默认为 no",
    "config.timeout": "{origin}：'{value}' 不是有效的秒数",
    "config.timeout.range": "{origin}：'{value}' 必须大于 0 秒，且不超过 {most} 秒",
    "config.timeout.hint": "默认为 {seconds:g} 秒",
    # --- config_file.py -------------------------------------------------------------------
    "config_file.the_file": "配置文件",
    "config_file.missing": "{path}：文件不存在",
    "config_file.missing.hint": "请检查 --config 指定的路径",
    "config_file.not_utf8": "{path}：不是 UTF-8 文本",
    "config_file.not_utf8.hint": "请以 UTF-8 编码保存这个文件",
    "config_file.unreadable": "{path}：无法读取：{reason}",
    "config_file.unreadable.hint": "请检查这个文件的权限",
    "config_file.header_first": "{path}：第 {line} 行：文件开头必须先有一行 [{section}]",
    "config_file.not_key_value": "{path}：第 {line} 行不是「键 = 值」的格式",
    "config_file.key_twice": "{path}：第 {line} 行：同一个配置项写了两次",
    "config_file.section_twice": "{path}：第 {line} 行：同一个节写了两次",
    "config_file.invalid": "{path}：不是有效的配置文件",
    "config_file.no_section": "{path}：没有 [{section}] 节",
    "config_file.layout": (
        "格式参见 config.ini.example：先写一行 [wechat]，下面每行写一项「键 = 值」"
    ),
    "config_file.comment": "{path} 中的 {key}：值的后面带有注释",
    "config_file.comment.hint": "config.ini 的注释必须单独占一行，以 ; 或 # 开头",
    "config_file.unknown_key": (
        "{path}：[{section}] 中的未知配置项 '{key}' 已忽略；可用的配置项：{known}"
    ),
    "config_file.readable": (
        "{path} 中有 AppSecret，而其他用户也能读取这个文件：请运行 chmod 600 {path}"
    ),
    # --- cache.py, entry.py, api.py, ticket.py, jssdk.py, endpoints.py --------------------
    # --- cache.py ------------------------------------------------------------------------
    "cache.token_hit": "缓存：从 {path} 读取 access_token，还有 {left} 秒有效",
    "cache.ticket_hit": "缓存：从 {path} 读取 ticket，还有 {left} 秒有效",
    "cache.token_not_used": "缓存：不使用 {path} 中的 access_token：{why}",
    "cache.ticket_not_used": "缓存：不使用 {path} 中的 ticket：{why}",
    "cache.holds_secret": "其中的凭据含有 AppSecret 的片段",
    "cache.was_refused": "这正是被拒绝的那个 access_token",
    "cache.going_alone": (
        "缓存：{held}，而且可能到本次运行的时限之后仍不释放：不再等待，本次运行自行获取"
    ),
    "cache.force_refresh": "缓存：指定了 --force-refresh，不读取 {path}",
    "cache.held_too_late": "另一个调用方持有锁 {path}.lock 太久，释放时已来不及再尝试",
    "cache.gave_up": "已到本次运行的时限，放弃：{why}",
    "cache.gave_up.hint": (
        "对方会在自身的时限内结束：请稍后再运行一次，"
        "或者用 --cache-file 为这次运行指定单独的缓存文件"
    ),
    "cache.shared_refusal": (
        "{error}（这是微信 {age:.1f} 秒前返回给另一个调用方的响应；满 {kept} 秒后才会再次请求微信）"
    ),
    "cache.refusal_saved": "缓存：微信的错误响应已保存到 {path}",
    "cache.token_saved": "缓存：access_token 已保存到 {path}",
    "cache.ticket_saved": "缓存：ticket 已保存到 {path}",
    "cache.refusal_not_saved": "缓存：无法把微信的错误响应保存到 {path}：{why}",
    "cache.would_hold_secret": "要保存的内容会含有 AppSecret 的片段",
    "cache.os_error": "未知错误",
    "cache.token_unsaved": (
        "无法把 access_token 保存到 {path}：{why}；旧的缓存条目已删除，下次运行会重新获取"
    ),
    "cache.ticket_unsaved": (
        "无法把 ticket 保存到 {path}：{why}；旧的缓存条目已删除，下次运行会重新获取"
    ),
    "cache.token_unsaved_stays": (
        "无法把 access_token 保存到 {path}：{why}；也无法删除旧的缓存条目（{error}）："
        "下次运行可能输出已被本次运行替换、微信不再接受的 access_token"
    ),
    "cache.ticket_unsaved_stays": (
        "无法把 ticket 保存到 {path}：{why}；也无法删除旧的缓存条目（{error}）："
        "下次运行可能输出已被本次运行替换、微信不再接受的 ticket"
    ),
    "cache.same_token_back": (
        "微信返回的正是被拒绝的那个 access_token；本工具不会自行强制刷新："
        "如果这个 access_token 已经泄露，请加 --force-refresh 运行"
    ),
    "cache.stable_too_short": (
        "稳定版 access_token 的有效期只剩 {left} 秒，少于 --valid-for {valid_for}："
        "在有效期只剩最后几分钟之前，微信会一直返回同一个 access_token"
    ),
    "cache.stable_too_short.hint": (
        "请等微信换发新的 access_token 后再运行，或者把 --valid-for 调小，或者加 --force-refresh"
        "（每天最多 20 次；所有调用方的稳定版 access_token 都会随之改变）"
    ),
    "cache.too_short": (
        "微信新发放的 access_token 有效期只有 {left} 秒，少于 --valid-for {valid_for}"
    ),
    "cache.too_short.hint": "请把 --valid-for 调小：微信的 access_token 有效期是 7200 秒",
    # --- entry.py ------------------------------------------------------------------------
    "entry.not_a_cache_file": "{path} 不是缓存文件：拒绝覆盖其中的内容",
    "entry.not_a_cache_file.hint": "请用 --cache-file 指定另一个文件（是不是想用 --config？）",
    "entry.unreadable": "无法读取缓存 {path}：{error}",
    "entry.nothing_yet": "缓存：{path} 中还没有内容",
    "entry.damaged": "缓存：{path} 中的条目已损坏，将用新的条目替换",
    "entry.other_account": "该条目属于另一个 AppID 或另一个接口",
    "entry.other_realm": "该条目是从 {realm} 获取的",
    "entry.other_secret": "该条目是用另一个 AppSecret 获取的",
    "entry.within_margin": "有效期还剩 {left:.0f} 秒，未超过预留的余量 {kept:.0f} 秒",
    "entry.short_of_valid_for": "有效期还剩 {left:.0f} 秒，而 --valid-for 要求 {valid_for:.0f} 秒",
    # --- ticket.py -----------------------------------------------------------------------
    "ticket.hint.45009": (
        "getticket 今天的调用次数已达上限（上限很低：每天约 1 万次）：请像本工具这样缓存并共享 "
        "ticket，并排查还有哪些地方在获取 ticket；次数在北京时间零点重置"
    ),
    "ticket.hint.40097": "getticket 的请求参数无效：type 必须是 jsapi 或 wx_card",
    "ticket.refused_again": (
        "getticket 拒绝了刚刚获取的 access_token：请确认 AppID 和 AppSecret 属于使用这个 "
        "JS-SDK 的账号，并确认没有其他程序在不断获取新的 access_token（会把这个顶掉）"
    ),
    "ticket.replacing": (
        "getticket 返回 errcode {errcode}：所用的 access_token 已失效；现在重新获取一次"
        "（从 /cgi-bin/token 获取新的 access_token，会使其他程序持有的旧 access_token "
        "在 5 分钟内失效；--stable 不会）"
    ),
    "ticket.replacing_stable": (
        "getticket 返回 errcode {errcode}：所用的 access_token 已失效；现在重新获取一次"
    ),
    # --- jssdk.py ------------------------------------------------------------------------
    "jssdk.hint": "签名包含哪些字段、怎样拼接，请看 docs/jssdk.zh-CN.md",
    "jssdk.bad_ticket": "ticket 必须是不含空格的可打印 ASCII 字符",
    "jssdk.bad_noncestr": "noncestr 必须是不含空格的可打印 ASCII 字符",
    "jssdk.bad_timestamp": "timestamp 必须是整数秒",
    "jssdk.bad_url": "url 必须是页面的 URL：可打印字符，且 # 之前的部分不能为空",
    "jssdk.fragment": "URL 中 # 及其后的部分不参与签名：签名时已去掉",
    "jssdk.percent_encoded": (
        "这个 URL 似乎整体做过百分号编码（https%3A%2F%2F...）："
        "请用页面地址栏中显示的（解码后的）URL 签名"
    ),
    "jssdk.no_scheme": "这个 URL 缺少 http:// 或 https://：请对页面的完整 URL 签名",
    # --- api.py --------------------------------------------------------------------------
    "api.bad_kind": "kind 必须是 'jsapi' 或 'wx_card'",
    "api.bad_kind.hint": "jsapi：JS-SDK 的 jsapi_ticket；wx_card：卡券的 api_ticket",
    "api.not_str": "{name} 必须是 str，不能是 {kind}",
    "api.not_bool": "{name} 必须是 True 或 False，不能是 {kind}",
    "api.not_seconds": "{name} 必须是秒数（int 或 float），不能是 {kind}",
    "api.not_int": "{name} 必须是 int，不能是 {kind}",
    "api.not_str_or_none": "{name} 必须是 str 或 None，不能是 {kind}",
    "api.not_path": "{name} 必须是 str、路径（os.PathLike）或 None，不能是 {kind}",
    "api.bad_log": "log 必须是接受一个 str 参数的函数，或者 None，不能是 {kind}",
    "api.bases_not_list": "api_bases 必须是由 https:// URL 组成的列表，不能是 {kind}",
    "api.bases_not_str": "api_bases 必须是由 https:// URL 组成的列表，其中不能有 {kind} 类型的元素",
    "api.huge": "一个极大的数",
    # --- endpoints.py --------------------------------------------------------------------
    "endpoints.web_page": "HTTP {status}：收到的是一个网页，不是微信接口的响应（{page}）",
    "endpoints.page": "{kind}，{size} 字节",
    "endpoints.titled_page": "{kind}，{size} 字节，标题为 {title}",
    "endpoints.no_content_type": "没有 Content-Type",
    "endpoints.not_200": "HTTP 状态码是 {status}，不是 200",
    "endpoints.empty": "响应为空（HTTP 200，没有响应体）",
    "endpoints.not_json": "响应不是 JSON",
    "endpoints.not_object": "响应不是 JSON 对象",
    "endpoints.malformed_error": "错误响应的格式不正确",
    "endpoints.no_field": "响应中没有可用的 {field}",
    # --- cli.py, output.py: the command, its --help, and what it prints -------------------
    # --- cli.py: the command line ---------------------------------------------------------
    "cli.see_help": "请查看 --help",
    "cli.internal": "内部错误：{kind}：{error}",
    "cli.usage_ticket": "{prog} ticket 后面要写 jsapi 或 wx_card",
    "cli.usage_sign": "{prog} sign 后面要写页面的 URL",
    "cli.unrecognized": "无法识别的参数：{names}",
    "cli.unrecognized_values": "无法识别的参数：（值不予显示）",
    "cli.an_option": "（选项名不予显示）",
    "cli.sign_only": "{option} 只用于 sign 命令",
    "cli.token_only": "--replace 只用于获取 access_token（即不带命令时）",
    "cli.no_secret_option": "AppSecret 没有对应的命令行选项",
    "cli.no_secret_option_hint": (
        "请设置环境变量 WECHAT_APPSECRET，或 config.ini 中的 appsecret："
        "本机的所有用户都能看到命令行参数"
    ),
    "cli.not_a_token": "--replace：这不是 access_token（应为可打印的 ASCII 字符，不含空格）",
    "cli.not_a_token_hint": "请给出被接口调用拒绝的那个 access_token，或者写 - 从标准输入读取",
    "cli.stdin_not_utf8": "--replace -：标准输入不是 UTF-8 文本",
    "cli.stdin_timeout": (
        "--replace -：在本次运行的时限（{bound:g} 秒）内，没有从标准输入读到 access_token"
    ),
    "cli.stdin_empty": "--replace -：标准输入是空的",
    "cli.stdin_hint": (
        '请用管道传入被接口调用拒绝的 access_token：echo "$TOKEN" | wechat-token --replace -'
    ),
    "cli.lang": "--lang：{value} 不是可选的语言，只能是 en 或 zh",
    "cli.lang_unshown": "--lang：给出的值不是可选的语言，只能是 en 或 zh",
    "cli.lang_hint": (
        "en 是英文，zh 是简体中文；不加 --lang 时按语言环境（LC_ALL、LC_MESSAGES、LANG）决定"
    ),
    # argparse's own errors, in our words; a value it would quote is left out
    "cli.argument": "选项 {name}：{problem}",
    "cli.expected_one": "后面需要一个值",
    "cli.expected_at_most_one": "后面最多只能有一个值",
    "cli.expected_at_least_one": "后面至少需要一个值",
    "cli.not_allowed_with": "不能与 {other} 同时使用",
    "cli.takes_no_value": "不接受值",
    "cli.invalid_choice": "取值无效（可选：{choices}）",
    "cli.invalid_value": "不是有效的 {type} 值",
    "cli.required": "缺少必需的参数：{names}",
    "cli.one_required": "必须给出 {names} 中的一个",
    # --- output.py --------------------------------------------------------------------------
    "output.stdout_closed": "标准输出已关闭：access_token 无处可输出",
    "output.broken_pipe": "还没写入输出，标准输出就已关闭",
    "output.cannot_write": "无法写入标准输出：{reason}",
    # --- --help (cli.py) ---------------------------------------------------------------------
    "help.usage": "用法：",
    "help.positionals": "位置参数",
    "help.options": "选项",
    "help.description": (
        "获取微信公众号的 access_token（接口调用凭据），全程使用经过证书校验的 TLS。\n"
        "AppSecret 只从环境变量 WECHAT_APPSECRET 或配置文件读取，不提供命令行选项，\n"
        "因为本机的所有用户都能看到命令行参数。"
    ),
    "help.epilog": (
        "输出：\n"
        "  标准输出（stdout）只有 access_token 本身，加 --json 时是一个 JSON 对象，\n"
        "  所以 TOKEN=$({prog}) 可以直接使用；提示信息都写到标准错误（stderr）。\n"
        "\n"
        "配置：\n"
        "  先读环境变量 WECHAT_APPID 和 WECHAT_APPSECRET，否则读当前目录下的 {config}\n"
        "  （或 --config PATH 指定的文件）；config.ini.example 列出了所有配置项。\n"
        "  代理：--proxy 或配置文件中的 proxy；都没有时，像 curl 一样读取环境变量\n"
        "  https_proxy 和 no_proxy。\n"
        "\n"
        "退出码：\n"
        "  0 已打印 access_token，1 微信返回了 errcode，2 用法或配置错误，\n"
        "  3 网络、TLS、HTTP 或响应错误，74 无法把 access_token 写入标准输出，\n"
        "  141 标准输出被提前关闭，70 本工具的 bug。按 Ctrl-C 时，进程由 SIGINT 终止。\n"
    ),
    "help.command": (
        "ticket jsapi 或 ticket wx_card：打印对应的 ticket；sign URL：打印页面 URL "
        "所需的 wx.config 字段（不带命令时：打印 access_token）"
    ),
    "help.help": "显示本帮助信息并退出",
    "help.config": "配置文件（默认 {config}）",
    "help.appid": "AppID（默认读环境变量 WECHAT_APPID，再读配置文件）",
    "help.api_base": "API 地址；再指定一次即为备用地址（默认先用 {main}，再用 {backup}）",
    "help.cacert": "CA 证书文件（默认使用 certifi 自带的）",
    "help.timeout": "每次尝试的超时秒数（默认 10）",
    "help.retries": (
        "遇到 errcode -1、HTTP 5xx 或网络故障后额外重试的次数（默认 {default}，最多 {most}）"
    ),
    "help.stable": (
        "使用稳定版接口（POST /cgi-bin/stable_token）：所有调用方共用同一个 access_token"
    ),
    "help.valid_for": (
        "打印的 access_token 至少还要有这么多秒的有效期（缓存中的不够时重新获取）；"
        "例如每小时运行一次的 cron 任务可设为 3900"
    ),
    "help.force_refresh": "即使缓存的 access_token 仍然有效也重新获取（旧的会随之失效）",
    "help.cache_file": (
        "缓存 access_token 的文件（默认：~/.cache/wechat_token 下每个 AppID 一个文件）"
    ),
    "help.no_cache": "不读也不写缓存",
    "help.replace": (
        "接口调用拒绝了 TOKEN 时使用（40001、42001、40014）：获取新的 access_token，"
        "除非其他进程已经获取过；写 - 则从标准输入读取 TOKEN"
    ),
    "help.proxy": "通过这个代理发送请求，例如 http://host:3128（默认：环境变量 https_proxy）",
    "help.no_proxy": "不使用代理，忽略所有代理设置",
    "help.sign": "sign URL（离线复现签名）",
    "help.ticket": "用这个 jsapi_ticket 签名：不发请求",
    "help.noncestr": "使用这个 nonceStr（默认随机生成）",
    "help.timestamp": "使用这个时间戳（默认当前时间）",
    "help.json": "输出一个 JSON 对象",
    "help.verbose": "显示执行过程",
    "help.lang": "提示信息和帮助的语言：en（英文）或 zh（中文）；默认按语言环境决定",
    "help.version": "显示版本号并退出",
}

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
        "如果公司的代理会重新签发 TLS 证书，请用 --cacert 指定它的 CA 证书；"
        "否则就是有人在冒充微信：证书校验是故意保持开启的"
    ),
    "hint.response": (
        "回答的不是微信接口：请检查 --api-base，以及是否有代理或 Wi-Fi 登录页挡在中间"
    ),
    "hint.portal": (
        "回答的是 Wi-Fi 或公司网络的登录页（强制门户）或代理，不是微信：请在本机用浏览器登录，"
        "或设置这个网络需要的代理（环境变量 https_proxy，或 config.ini 中的 proxy）"
    ),
    "hint.server_trouble": (
        "服务器出了问题（微信的，或途中代理的）：请一分钟后重试；加 -v 可以看到每次尝试"
    ),
    "excerpt.empty": "（响应体为空）",
    "errcode": "微信返回 errcode {errcode}",
    "errcode.said": "微信返回 errcode {errcode}：{errmsg}",
    "errcode.other": "请在微信文档的「全局返回码说明」中查这个 errcode",
    "errcode.this_ip": "本机的公网 IP",
    "errcode.-1": "微信系统繁忙：请稍等几秒再试",
    "errcode.40001": (
        "AppSecret 错误，或者另一个程序为这个账号获取了更新的 access_token：请到 {keys} 核对 "
        "AppSecret，并且只让一个程序统一获取 access_token"
    ),
    "errcode.40002": "grant_type 必须是 client_credential（调用方的 bug）",
    "errcode.40013": (
        "请到 {console} 核对 AppID（小程序的在：微信公众平台 → 管理 → 开发管理 → 开发设置）"
    ),
    "errcode.40125": (
        "请到 {keys} 核对或重置 AppSecret（小程序的在：微信公众平台 → 管理 → 开发管理 → 开发设置）"
    ),
    "errcode.40164": (
        "请把 {ip} 加入 {keys} 的「API IP 白名单」（服务号也是这几个页面）；"
        "要填本机出口的公网 IP，不是内网地址；出口 IP 会变的话，可以填 CIDR 网段（如 "
        "203.0.113.0/24）；几分钟内生效"
    ),
    "errcode.40243": "AppSecret 已被冻结：请到 {keys} 解冻（大约需要 10 分钟）",
    "errcode.41002": "请求中缺少 AppID：请在配置中设置 appid",
    "errcode.41004": "请求中缺少 AppSecret：请在配置中设置 appsecret",
    "errcode.43002": "这个接口需要用 POST 调用（调用方的 bug）",
    "errcode.45009": (
        "今天获取 access_token 的次数已用完：请在有效期内重复使用同一个 access_token，"
        "不要每次都重新获取；次数每天重置，也可以调用 clear_quota 接口清零"
    ),
    "errcode.45011": "这一分钟内请求太多：请下一分钟再试",
    "errcode.47001": "请求体不是合法的 JSON（调用方的 bug）",
    "errcode.89501": "这个 IP 正在等待账号管理员在微信中确认",
    "errcode.89506": "管理员拒绝了这个 IP：24 小时内不能再调用；请联系管理员",
    "errcode.89507": "管理员拒绝了这个 IP：1 小时内不能再调用；请联系管理员",
    # --- output.py, cli.py --------------------------------------------------------------
    "hint.output": "请给命令一个能写入的标准输出，例如 TOKEN=$(wechat-token)",
    "hint.broken_pipe": "读取这个命令输出的程序在 access_token 输出之前就停止了",
    "hint.internal": "这是 wechat-token 的 bug：请报告给我们，并附上你运行的命令",
}

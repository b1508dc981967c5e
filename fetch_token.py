"""Fetch a WeChat access_token: the PHP curl example, ported to Python, TLS verification on.

Run `python fetch_token.py` with WECHAT_APPID and WECHAT_APPSECRET set, or config.ini in the
current folder ([wechat] appid, appsecret; optional api_base, ca_bundle, timeout). It prints the
token alone; exit 1: WeChat refused, 2: configuration, 3: network, TLS or not a token. It makes
one request per run with no cache, as the PHP does: anything that runs more than now and then
should use the `wechat-token` command, which caches the token (each fetch invalidates the last).
Under a Chinese locale its messages are in Chinese: ZH, at the end of the file.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import sys
from urllib.parse import urlencode

import certifi
import pycurl

MAX_ANSWER = 64 * 1024  # bytes; WeChat's answer is under 1 KiB
CONSOLE = "微信开发者平台 (developers.weixin.qq.com/platform) → 我的业务 → 公众号 → 基础信息"
KEYS = CONSOLE + " → 开发密钥"  # where the AppSecret and the API IP whitelist are
HINTS = {  # for the errcodes a first run meets; {ip} is the one WeChat's errmsg names
    "40164": "add this machine's public egress IP{ip} to 'API IP 白名单' at {keys}",
    "40125": "check or reset the AppSecret at {keys}",
    "40013": "check the AppID at {console}",
    "-1": "WeChat is busy: wait a few seconds and try again",
}
SETUP = "cp config.ini.example config.ini; fill it in from {console}"
TLS_ERRORS = {pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CACERT, pycurl.E_SSL_CACERT_BADFILE}
TLS_HINT = "never turn verification off: someone on the path may be posing as WeChat"
NETWORK_HINT = "check that this machine reaches api_base over https, or raise timeout"
NOT_WECHAT = "is api_base WeChat's? a Wi-Fi login or a proxy may be in the way: try a browser"
USAGE = "usage: python fetch_token.py  (no arguments; see its docstring)"


class Failure(Exception):
    """The exit code, the English templates of the `error:` and `hint:` lines, their {fields}."""

    def __init__(self, code: int, error: str, hint: str, /, **fields: object) -> None:
        super().__init__(code, error, hint, fields)


def mask(text: str, secret: str) -> str:
    """The text, control characters escaped, the secret (in any letter case) as ***."""
    text = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
    return re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE) if secret else text


def read_settings() -> tuple[str, str, str, str, float]:
    """appid, appsecret, api_base, ca_bundle, timeout: each checked here, once."""
    config = configparser.ConfigParser(interpolation=None)  # a '%' in the secret stays itself
    config.add_section("wechat")  # with no config.ini, its settings are all unset
    try:
        config.read("config.ini", encoding="utf-8-sig")  # none: nothing read; -sig: a BOM is fine
    except (configparser.Error, UnicodeDecodeError):  # not shown: it may quote the secret
        raise Failure(2, "config.ini cannot be parsed", "compare with config.ini.example") from None
    wechat = config["wechat"]
    appid = os.environ.get("WECHAT_APPID", "") or wechat.get("appid", "")
    appsecret = os.environ.get("WECHAT_APPSECRET", "") or wechat.get("appsecret", "")
    for key, value in (("appid", appid), ("appsecret", appsecret)):
        names = {"key": key, "env": f"WECHAT_{key.upper()}"}  # where it is set
        if not value:
            raise Failure(2, "no {key}: set {env} or [wechat] {key} in config.ini", SETUP, **names)
        if value in ("your-appid-here", "your-appsecret-here"):
            raise Failure(2, "{key} is still {value}", SETUP, value=value, **names)
        if not re.fullmatch(r"[!-~]+", value) or "'" in value or '"' in value:
            error = "{key}: spaces, quotes or odd characters"
            raise Failure(2, error, "write it bare: {env} or [wechat] {key} in config.ini", **names)
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", appsecret):  # WeChat's: 32 hex characters
        raise Failure(2, "appsecret: not 16 to 64 of A-Z a-z 0-9 - _", "copy it again: {keys}")
    api_base = wechat.get("api_base", "https://api.weixin.qq.com").rstrip("/")
    if not re.fullmatch(r"https://[!-~]+", api_base):
        raise Failure(2, "api_base must be one https:// URL", "e.g. https://api.weixin.qq.com")
    ca_bundle = os.path.abspath(wechat.get("ca_bundle", certifi.where()))  # from config.ini's
    if not os.path.isfile(ca_bundle):  # folder, which is this one
        shown = mask(ca_bundle, appsecret)  # here: main() does not know the secret yet
        raise Failure(2, "ca_bundle: no file {path}", "name a PEM file", path=shown)
    timeout = wechat.get("timeout", "10")
    if not re.fullmatch(r"\d+(\.\d+)?", timeout) or not 0 < float(timeout) <= 3600:
        raise Failure(2, "timeout must be a number of seconds, at most 3600", "e.g. timeout = 10")
    return appid, appsecret, api_base, ca_bundle, float(timeout)


def collect(output: bytearray, chunk: bytes) -> int:
    """pycurl's WRITEFUNCTION: keep the chunk; past MAX_ANSWER bytes, 0 aborts the transfer."""
    fits = len(output) + len(chunk) <= MAX_ANSWER
    output.extend(chunk if fits else b"")
    return len(chunk) if fits else 0  # 0: libcurl stops with E_WRITE_ERROR


def main() -> int:
    if sys.argv[1:]:
        print(say(USAGE), file=sys.stderr)
        return 2
    appsecret = ""  # until it is read, there is nothing to mask
    try:
        # $appid = "";  $appsecret = "";
        appid, appsecret, api_base, ca_bundle, timeout = read_settings()
        # $url = "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential
        #         &appid=$appid&secret=$appsecret";
        # Unlike the PHP, the values are URL-encoded: a '+' or '&' in them arrives as itself.
        query = urlencode({"grant_type": "client_credential", "appid": appid, "secret": appsecret})
        url = f"{api_base}/cgi-bin/token?{query}"
        c = pycurl.Curl()  # $ch = curl_init();
        c.setopt(pycurl.URL, url)  # curl_setopt($ch, CURLOPT_URL, $url);
        # The PHP turns these two off, which lets anyone on the path pose as WeChat and collect
        # the AppSecret. On here: the certificate must chain to CAINFO and name the host.
        c.setopt(pycurl.SSL_VERIFYPEER, 1)  # curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, FALSE);
        c.setopt(pycurl.SSL_VERIFYHOST, 2)  # curl_setopt($ch, CURLOPT_SSL_VERIFYHOST, FALSE);
        c.setopt(pycurl.CAINFO, ca_bundle)  # the CAs trusted: certifi's, or ca_bundle's
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS)  # https only: the secret is in the URL
        c.setopt(pycurl.FOLLOWLOCATION, 0)  # a redirect is not WeChat's answer
        c.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(min(timeout, 5) * 1000)))
        c.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))  # the whole request
        output = bytearray()  # curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);
        c.setopt(pycurl.WRITEFUNCTION, lambda chunk: collect(output, chunk))
        try:
            c.perform()  # $output = curl_exec($ch);
        except pycurl.error as failed:
            code, message = failed.args[0], failed.args[-1]  # perform() raises (code, message)
            if code in TLS_ERRORS:  # not signed by a CA in CAINFO, or for another host
                error, hint = "TLS verification failed: {message}", TLS_HINT
            elif code == pycurl.E_WRITE_ERROR:  # collect() refused the rest
                error, hint = "the answer is over {size} bytes", NOT_WECHAT
            else:
                error, hint = "network: {message} (curl error {code})", NETWORK_HINT
            raise Failure(3, error, hint, message=message, code=code, size=MAX_ANSWER) from None
        status = c.getinfo(pycurl.RESPONSE_CODE)  # getinfo must be called before close
        c.close()  # curl_close($ch);
        if status != 200:
            raise Failure(3, "HTTP {status}, not WeChat's answer", NOT_WECHAT, status=status)
        try:
            jsoninfo = json.loads(output)  # $jsoninfo = json_decode($output, true);
        except ValueError:  # named, not shown: a page is not ours to print
            page = output.lstrip().startswith(b"<")
            error = "the answer is a web page, not JSON" if page else "the answer is not JSON"
            raise Failure(3, error, NOT_WECHAT) from None
        jsoninfo = jsoninfo if isinstance(jsoninfo, dict) else {}  # a list: no access_token
        if jsoninfo.get("errcode"):  # absent, or 0, when all is well
            errcode, errmsg = str(jsoninfo["errcode"]), str(jsoninfo.get("errmsg", ""))
            ip = (re.search(r" \d{1,3}(?:\.\d{1,3}){3}\b", errmsg) or [""])[0]  # 40164's names it
            hint = HINTS.get(errcode, "look up this errcode in WeChat's 全局返回码说明")
            error = "errcode {errcode}: {errmsg}"  # WeChat's errmsg: a value, never a template
            raise Failure(1, error, hint, errcode=errcode, errmsg=errmsg, ip=ip)
        access_token = jsoninfo.get("access_token")  # $access_token = $jsoninfo["access_token"];
        usable = isinstance(access_token, str) and re.fullmatch(r"[!-~]+", access_token)
        if not usable or mask(str(access_token), appsecret) != access_token:  # nor the secret
            raise Failure(3, "the answer has no usable access_token", NOT_WECHAT)
    except Failure as failure:
        code, error, hint, fields = failure.args  # in the reader's language, then masked
        print(mask("error: " + say(error, **fields), appsecret), file=sys.stderr)
        print(mask("hint: " + say(hint, **fields), appsecret), file=sys.stderr)
        return int(code)
    print(access_token)  # checked above: printable, and no form of the secret
    return 0


def say(template: str, **fields: object) -> str:
    """The template, in Chinese (ZH's) if the locale is (the first of LANGUAGE, LC_ALL,
    LC_MESSAGES, LANG that is set starts with "zh", as gettext reads it) and stderr can show
    Chinese; its {fields} filled in, {console} and {keys} too."""
    env = os.environ.get
    locale = env("LANGUAGE") or env("LC_ALL") or env("LC_MESSAGES") or env("LANG") or ""
    shows = "微信".encode(getattr(sys.stderr, "encoding", None) or "utf-8", "ignore")
    text = ZH.get(template, template) if locale.startswith("zh") and shows else template
    return text.format(console=CONSOLE, keys=KEYS, **fields)


ZH = {  # the messages in Chinese, keyed by the English template
    USAGE: "用法：python fetch_token.py（不带参数；说明见文件开头的文档字符串）",
    "config.ini cannot be parsed": "config.ini 的格式有误，无法解析",
    "compare with config.ini.example": "请对照 config.ini.example 检查",
    "no {key}: set {env} or [wechat] {key} in config.ini": (
        "缺少 {key}：请设置环境变量 {env}，或在 config.ini 的 [wechat] 中填写 {key}"
    ),
    "{key} is still {value}": "{key} 还是示例值 {value}",
    SETUP: "请执行 cp config.ini.example config.ini，再按 {console} 中的信息填写",
    "{key}: spaces, quotes or odd characters": "{key} 中有空格、引号或其他不允许的字符",
    "write it bare: {env} or [wechat] {key} in config.ini": (
        "值要原样写，不加引号：环境变量 {env}，或 config.ini 中 [wechat] 下的 {key}"
    ),
    "appsecret: not 16 to 64 of A-Z a-z 0-9 - _": (
        "appsecret 格式不对：应由 16 到 64 个字符组成，只能是 A-Z、a-z、0-9、- 和 _"
    ),
    "copy it again: {keys}": "请到 {keys} 重新复制 AppSecret",
    "api_base must be one https:// URL": "api_base 必须是一个 https:// URL",
    "e.g. https://api.weixin.qq.com": "例如 https://api.weixin.qq.com",
    "ca_bundle: no file {path}": "ca_bundle：文件 {path} 不存在",
    "name a PEM file": "请指定一个 PEM 格式的 CA 证书文件",
    "timeout must be a number of seconds, at most 3600": "timeout 必须是不超过 3600 的秒数",
    "e.g. timeout = 10": "例如 timeout = 10",
    "TLS verification failed: {message}": "TLS 证书校验失败：{message}",
    TLS_HINT: "不要关闭证书校验：网络途中可能有人在冒充微信",
    "the answer is over {size} bytes": "响应超过 {size} 字节",
    "network: {message} (curl error {code})": "网络出错：{message}（curl 错误码 {code}）",
    NETWORK_HINT: "请确认本机能通过 https 访问 api_base，或调大 timeout",
    "HTTP {status}, not WeChat's answer": "HTTP {status}：这不是微信的响应",
    "the answer is a web page, not JSON": "响应是一个网页，不是 JSON",
    "the answer is not JSON": "响应不是 JSON",
    NOT_WECHAT: "api_base 是微信的地址吗？中间可能有 Wi-Fi 登录页或代理：请用浏览器试试",
    "errcode {errcode}: {errmsg}": "微信返回 errcode {errcode}：{errmsg}",
    HINTS["40164"]: "请把本机的公网出口 IP{ip} 加入 {keys} 中的「API IP 白名单」",
    HINTS["40125"]: "请到 {keys} 核对或重置 AppSecret",
    HINTS["40013"]: "请到 {console} 核对 AppID",
    HINTS["-1"]: "微信系统繁忙：请稍等几秒再试",
    "look up this errcode in WeChat's 全局返回码说明": (
        "请在微信文档的「全局返回码说明」中查这个 errcode"
    ),
    "the answer has no usable access_token": "响应中没有可用的 access_token",
}


if __name__ == "__main__":
    raise SystemExit(main())

"""Fetch a WeChat access_token: the PHP curl example, ported to Python, TLS verification on.

Run `python fetch_token.py` with WECHAT_APPID and WECHAT_APPSECRET set, or config.ini in the
current folder ([wechat] appid, appsecret; optional api_base, ca_bundle, timeout). It prints the
token alone; exit 1: WeChat refused, 2: configuration, 3: network, TLS or not a token. It makes
one request per run with no cache, as the PHP does: anything that runs more than now and then
should use the `wechat-token` command, which caches the token (each fetch invalidates the last).
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
    "40164": "add this machine's public egress IP{ip} to 'API IP 白名单' at " + KEYS,
    "40125": "check or reset the AppSecret at " + KEYS,
    "40013": "check the AppID at " + CONSOLE,
    "-1": "WeChat is busy: wait a few seconds and try again",
}
TLS_ERRORS = {pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CACERT, pycurl.E_SSL_CACERT_BADFILE}
TLS_HINT = "never turn verification off: someone on the path may be posing as WeChat"
NETWORK_HINT = "check that this machine reaches api_base over https, or raise timeout"
NOT_WECHAT = "is api_base WeChat's? a Wi-Fi login or a proxy may be in the way: try a browser"


class Failure(Exception):
    """args: the exit code, the `error:` line, the `hint:` line."""


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
        where = f"WECHAT_{key.upper()} or [wechat] {key} in config.ini"
        if not value or value in ("your-appid-here", "your-appsecret-here"):
            error = f"no {key}: set {where}" if not value else f"{key} is still {value}"
            raise Failure(2, error, f"cp config.ini.example config.ini; fill it in from {CONSOLE}")
        if not re.fullmatch(r"[!-~]+", value) or "'" in value or '"' in value:
            raise Failure(2, f"{key}: spaces, quotes or odd characters", f"write it bare: {where}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", appsecret):  # WeChat's: 32 hex characters
        raise Failure(2, "appsecret: not 16 to 64 of A-Z a-z 0-9 - _", "copy it again: " + KEYS)
    api_base = wechat.get("api_base", "https://api.weixin.qq.com").rstrip("/")
    if not re.fullmatch(r"https://[!-~]+", api_base):
        raise Failure(2, "api_base must be one https:// URL", "e.g. https://api.weixin.qq.com")
    ca_bundle = os.path.abspath(wechat.get("ca_bundle", certifi.where()))  # from config.ini's
    if not os.path.isfile(ca_bundle):  # folder, which is this one
        raise Failure(2, mask(f"ca_bundle: no file {ca_bundle}", appsecret), "name a PEM file")
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
        print("usage: python fetch_token.py  (no arguments; see its docstring)", file=sys.stderr)
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
        except pycurl.error as error:
            code, message = error.args[0], error.args[-1]  # perform() raises (code, message)
            if code in TLS_ERRORS:  # not signed by a CA in CAINFO, or for another host
                raise Failure(3, f"TLS verification failed: {message}", TLS_HINT) from None
            if code == pycurl.E_WRITE_ERROR:  # collect() refused the rest
                raise Failure(3, f"the answer is over {MAX_ANSWER} bytes", NOT_WECHAT) from None
            raise Failure(3, f"network: {message} (curl error {code})", NETWORK_HINT) from None
        status = c.getinfo(pycurl.RESPONSE_CODE)  # getinfo must be called before close
        c.close()  # curl_close($ch);
        if status != 200:
            raise Failure(3, f"HTTP {status}, not WeChat's answer", NOT_WECHAT)
        try:
            jsoninfo = json.loads(output)  # $jsoninfo = json_decode($output, true);
        except ValueError:  # named, not shown: a page is not ours to print
            what = "a web page, not JSON" if output.lstrip().startswith(b"<") else "not JSON"
            raise Failure(3, f"the answer is {what}", NOT_WECHAT) from None
        jsoninfo = jsoninfo if isinstance(jsoninfo, dict) else {}  # a list: no access_token
        if jsoninfo.get("errcode"):  # absent, or 0, when all is well
            errcode, errmsg = str(jsoninfo["errcode"]), str(jsoninfo.get("errmsg", ""))
            ip = (re.search(r" \d{1,3}(?:\.\d{1,3}){3}\b", errmsg) or [""])[0]  # 40164's names it
            hint = HINTS.get(errcode, "look up this errcode in WeChat's 全局返回码说明")
            raise Failure(1, f"errcode {errcode}: {errmsg}", hint.replace("{ip}", ip))  # not format
        access_token = jsoninfo.get("access_token")  # $access_token = $jsoninfo["access_token"];
        usable = isinstance(access_token, str) and re.fullmatch(r"[!-~]+", access_token)
        if not usable or mask(str(access_token), appsecret) != access_token:  # nor the secret
            raise Failure(3, "the answer has no usable access_token", NOT_WECHAT)
    except Failure as failure:
        code, message, hint = failure.args
        print(mask(f"error: {message}", appsecret), file=sys.stderr)
        print(mask(f"hint: {hint}", appsecret), file=sys.stderr)
        return int(code)
    print(access_token)  # checked above: printable, and no form of the secret
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

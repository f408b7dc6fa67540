"""Merchant webhook URL policy: `https` to public addresses only, unless insecure targets are
explicitly allowed (local development and tests).

Checked when a merchant saves a URL and again at every delivery, where the delivery connects
to an address this check approved, so a hostname that later resolves to an internal address
(DNS rebinding) cannot turn webhooks into requests against our own network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit

MAX_URL_CHARS = 2048

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlVerdict(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"  # the URL itself breaks the policy: fix the URL
    UNRESOLVABLE = "unresolvable"  # DNS gave no answer now: may pass later


@dataclass(frozen=True)
class UrlDecision:
    verdict: UrlVerdict
    reason: str
    addresses: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict is UrlVerdict.ALLOWED


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as text (IPv6 without scope)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def check_webhook_url(
    url: str, *, allow_insecure: bool = False, resolve: Resolver = resolve_host
) -> UrlDecision:
    parts = _parse(url)
    if isinstance(parts, UrlDecision):
        return parts
    if parts.scheme == "http" and not allow_insecure:
        return _refused("plain http is not allowed; use https")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return UrlDecision(UrlVerdict.UNRESOLVABLE, f"host does not resolve ({type(exc).__name__})")
    if not addresses:
        return UrlDecision(UrlVerdict.UNRESOLVABLE, "host resolves to no address")
    if not allow_insecure:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address)):
                return _refused(f"host resolves to a non-public address ({address})")
    return UrlDecision(UrlVerdict.ALLOWED, "ok", tuple(addresses))


def is_public_address(ip: IPAddress) -> bool:
    """Globally routable unicast; IPv4 carried inside IPv6 is judged as the IPv4 it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public_address(embedded)
    return ip.is_global and not ip.is_multicast


def _parse(url: str) -> SplitResult | UrlDecision:
    if len(url) > MAX_URL_CHARS:
        return _refused(f"URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        return _refused("URL is malformed")
    if parts.scheme not in ("https", "http"):
        return _refused("URL must start with https://")
    if not parts.hostname:
        return _refused("URL has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and error messages.
        return _refused("URL must not carry credentials; sign-in is by signature")
    return parts


def _refused(reason: str) -> UrlDecision:
    return UrlDecision(UrlVerdict.REFUSED, reason)

"""The policy every external arm URL passes before the orchestrator calls it (docs/security.md).

An arm URL names a *base*: the orchestrator chooses the path (``/recommenders``,
``/recommendations``), so a URL with a query, a fragment, user info, percent-escapes or dot
segments is refused. The host must be allowed by ``PREFSHIFT_ARM_URL_ALLOW`` (host names, IP
addresses or CIDR blocks) or be one the operator configured (``PREFSHIFT_RECOMMENDER_URL``,
``PREFSHIFT_ORCHESTRATOR_ARMS``). Whatever the allowlist says, link-local, metadata, unspecified,
multicast and broadcast addresses are refused. The name is resolved and *every* address it
resolves to is checked; the call then goes to the checked address (the name travels only in
``Host`` and TLS SNI), so a DNS answer that changes between the check and the connection cannot
redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from prefshift_common.errors import Unprocessable
from prefshift_orchestrator.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never called, whatever the allowlist says: link-local (cloud metadata lives there),
#: other metadata endpoints, unspecified, multicast and broadcast addresses.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure metadata)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "::/128",
        "224.0.0.0/4",  # multicast
        "ff00::/8",
        "255.255.255.255/32",
    )
)

_BASE_PATH = re.compile(r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?$")
_RESOLVE_TIMEOUT_SECONDS = 5.0


class ArmUrlRefused(Unprocessable):
    """An arm URL the policy refuses (a 422 at submission; a failed run if DNS changed later)."""


@dataclass(frozen=True)
class ArmUrl:
    """A syntactically acceptable arm URL, split into the parts a call needs."""

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class PinnedArm:
    """An arm URL with the checked address its calls connect to."""

    url: ArmUrl
    address: IPAddress

    def request_url(self, path: str) -> str:
        """The URL of ``path`` under the arm's base, aimed at the checked address."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.url.scheme}://{host}:{self.url.port}{self.url.base_path}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"host": self.url.host_header}

    @property
    def extensions(self) -> dict[str, str]:
        # TLS: SNI and certificate checks use the name, while the socket goes to the address.
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def parse_arm_url(url: str) -> ArmUrl:
    """Check an arm URL's form (no address checks): http(s), a host, and a plain base path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ArmUrlRefused(f"arm URL {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ArmUrlRefused(f"arm URL {url!r}: only http and https are allowed")
    if not parts.hostname:
        raise ArmUrlRefused(f"arm URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ArmUrlRefused(f"arm URL {url!r}: user info (user@host) is not allowed")
    try:  # what the resolver will do with the name (IDNA): control characters, empty labels
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ArmUrlRefused(f"arm URL {url!r}: {parts.hostname!r} is not a host name") from None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ArmUrlRefused(
            f"arm URL {url!r}: no query or fragment; the URL is a base and prefshift adds the path"
        )
    path = parts.path.rstrip("/")
    if (
        not _BASE_PATH.match(path)
        or "%" in path
        or any(segment in (".", "..") for segment in path.split("/"))
    ):
        raise ArmUrlRefused(
            f"arm URL {url!r}: the base path may hold only letters, digits and ._~- segments"
        )
    return ArmUrl(
        scheme=parts.scheme,
        host=parts.hostname.lower(),
        port=port or (443 if parts.scheme == "https" else 80),
        base_path=path,
    )


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _literal(host: str) -> IPAddress | None:
    try:
        return _plain(ipaddress.ip_address(host))
    except ValueError:
        return None


class ArmUrlPolicy:
    """Which arm URLs may be called: ``allow`` entries (host names, addresses, CIDR blocks)
    plus the operator's ``trusted`` base URLs; never the always-refused ranges."""

    def __init__(self, allow: Iterable[str] = (), trusted: Iterable[str] = ()) -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in (item.strip().lower() for item in allow):
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.strip("[]"))
        self.trusted: set[tuple[str, str, int]] = set()
        for url in trusted:
            try:
                parsed = parse_arm_url(url)
            except ArmUrlRefused:
                continue
            self.trusted.add((parsed.scheme, parsed.host, parsed.port))

    @classmethod
    def from_settings(cls, settings: Settings) -> ArmUrlPolicy:
        """``PREFSHIFT_ARM_URL_ALLOW`` (entries separated by commas or spaces), trusting the
        configured services and ``PREFSHIFT_ORCHESTRATOR_ARMS``."""
        configured = [target.url for target in settings.orchestrator_arms.values() if target.url]
        services = [settings.recommender_url, settings.simulator_url, settings.tmdb_proxy_url]
        return cls(re.split(r"[,\s]+", settings.arm_url_allow), [*services, *configured])

    def _allowed(self, url: ArmUrl, address: IPAddress) -> bool:
        if (url.scheme, url.host, url.port) in self.trusted or url.host in self.hosts:
            return True
        return any(address in network for network in self.networks)

    @staticmethod
    def _always_refused(address: IPAddress) -> bool:
        return any(address in network for network in ALWAYS_REFUSED)

    async def pin(self, url: str) -> PinnedArm:
        """Check ``url`` and every address its host resolves to; the address to connect to."""
        parsed = parse_arm_url(url)
        literal = _literal(parsed.host)
        addresses = [literal] if literal is not None else await _resolve(parsed)
        # a refusal never names an address a name resolved to: it would show the caller what
        # the orchestrator's (internal) DNS answers
        for address in addresses:
            if self._always_refused(address):
                raise ArmUrlRefused(
                    f"arm URL {url!r} is or resolves to a link-local, metadata or otherwise "
                    "reserved address that is never called"
                )
            if not self._allowed(parsed, address):
                raise ArmUrlRefused(
                    f"arm URL {url!r} is not allowed; the operator allows arm hosts "
                    "with PREFSHIFT_ARM_URL_ALLOW (host names or CIDR blocks)"
                )
        return PinnedArm(parsed, addresses[0])


async def _resolve(url: ArmUrl) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise ArmUrlRefused(f"arm host {url.host!r} does not resolve") from None
    addresses = list(dict.fromkeys(_plain(ipaddress.ip_address(info[4][0])) for info in infos))
    if not addresses:
        raise ArmUrlRefused(f"arm host {url.host!r} does not resolve")
    return addresses

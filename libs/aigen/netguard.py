"""Fetching URLs that strangers handed us, without letting them reach our own network (SSRF).

Provider result URLs and client webhook URLs come from outside. Fetched naively, a URL can make
us read the cloud metadata service (169.254.169.254), a database port on localhost, or anything
on the private network, and redirects or DNS can smuggle such a target past a first check.

The rules, applied to the first URL and again to every redirect hop:
- only `http` and `https`;
- the host is resolved once; every address it resolves to must be public: loopback, private,
  shared (100.64/10), link-local (169.254/16, fe80::/10), multicast, reserved, unspecified and
  documentation ranges are refused, also when wrapped in IPv6 (IPv4-mapped, 6to4, Teredo,
  NAT64) — unless the host name or the address is on the allow-list (`AIGEN_NETGUARD_ALLOW`,
  comma-separated host names, addresses and CIDR networks);
- the connection goes to the address that was checked (the URL is rewritten to it; `Host` and
  TLS SNI/verification keep the name), so DNS cannot answer differently between check and use;
- redirects are followed here, at most `max_redirects`, each hop checked like the first;
- bodies are capped at `max_bytes` (declared length and actual bytes), with connect and read
  timeouts; no environment proxies.

Every failure is a `NetGuardError` naming the URL and the reason; `retryable` says whether trying
again later can help (network trouble, 5xx) or not (refused, too large, 4xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOW_ENV = "AIGEN_NETGUARD_ALLOW"
SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)

# Ranges Python's ipaddress flags inconsistently across versions, named here so the rule is ours.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_BENCHMARK = ipaddress.ip_network("198.18.0.0/15")


class NetGuardError(Exception):
    """A guarded fetch that did not happen or did not finish; `reason` says why."""

    retryable = False

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class Refused(NetGuardError):
    """The guard would not fetch this URL (scheme, address, redirect limit)."""


class TooLarge(NetGuardError):
    """The body is larger than allowed."""


class HttpError(NetGuardError):
    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status
        self.retryable = status >= 500 or status in (408, 425, 429)


class Unreachable(NetGuardError):
    """DNS, connection, TLS or timeout trouble: worth another try later."""

    retryable = True


# --- address rules (pure) -------------------------------------------------------------------------


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why this address must not be fetched from, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = blocked_reason(inner)
            return f"{why} (inside the IPv6 address {ip})" if why else None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv4Address) and (ip in _SHARED or ip in _BENCHMARK):
        return "a private address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks that may be fetched although their addresses are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> AllowList:
        items = text.split(",") if isinstance(text, str) else list(text)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(_normal_host(item))
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AllowList:
        env = os.environ if env is None else env
        return cls.parse(env.get(ALLOW_ENV, ""))

    def allows_host(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        return any(c in net for c in candidates for net in self.networks if c.version == net.version)


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def check_address(url: str, host: str, ip: IPAddress, allow: AllowList) -> None:
    """Raise Refused unless `ip` (what `host` resolved to) may be fetched from."""
    if allow.allows_host(host) or allow.allows_address(ip):
        return
    why = blocked_reason(ip)
    if why is not None:
        named = f"{host} resolves to {ip}" if _normal_host(host) != str(ip) else str(ip)
        raise Refused(url, f"{named}, {why}; refused (allow it with {ALLOW_ENV} if it is trusted)")


# --- fetching -------------------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, and the address to connect to."""

    url: httpx.URL
    address: IPAddress

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    def host_header(self) -> str:
        host = self.url.host
        if ":" in host:
            host = f"[{host}]"
        default = 443 if self.url.scheme == "https" else 80
        port = self.url.port
        return f"{host}:{port}" if port is not None and port != default else host


@dataclass
class GuardedResponse:
    """A response whose body is read within the size cap."""

    url: str  # the final URL, after redirects
    status_code: int
    headers: httpx.Headers
    max_bytes: int
    redirects: tuple[str, ...] = ()
    _response: httpx.Response | None = field(default=None, repr=False)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HttpError(self.url, self.status_code)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._response is None:
            return
        received = 0
        try:
            async for chunk in self._response.aiter_bytes():
                received += len(chunk)
                if received > self.max_bytes:
                    raise TooLarge(self.url, f"the body exceeds {self.max_bytes} bytes")
                yield chunk
        except httpx.TimeoutException as exc:
            raise Unreachable(self.url, f"read timed out after {received} bytes") from exc
        except httpx.TransportError as exc:
            raise Unreachable(self.url, f"connection broke after {received} bytes: {_describe(exc)}") from exc

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class NetGuard:
    def __init__(
        self,
        *,
        allow: AllowList | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_redirects: int = 5,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "aigen/1 (+result storage)",
    ) -> None:
        self.allow = allow or AllowList()
        self.max_bytes = max_bytes
        self.timeout = httpx.Timeout(
            connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=connect_timeout_s
        )
        self.max_redirects = max_redirects
        self.resolver = resolver
        self.ssl_context = ssl_context or httpx.create_ssl_context()
        self.user_agent = user_agent

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
    ) -> NetGuard:
        """A guard whose allow-list is AIGEN_NETGUARD_ALLOW."""
        return cls(
            allow=AllowList.from_env(env),
            max_bytes=max_bytes,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )

    async def check(self, url: str | httpx.URL) -> Target:
        """Validate a URL and resolve its host; raises Refused or Unreachable."""
        text = str(url)
        try:
            parsed = httpx.URL(text)
        except (httpx.InvalidURL, ValueError) as exc:
            raise Refused(text, f"not a valid URL ({_describe(exc)})") from None
        if parsed.scheme not in SCHEMES:
            raise Refused(
                text, f"the scheme {parsed.scheme or '(none)'!r} is refused; only http and https are fetched"
            )
        host = parsed.host
        if not host:
            raise Refused(text, "the URL has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            check_address(text, host, literal, self.allow)
            return Target(parsed, literal)
        try:
            answers = await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise Unreachable(text, f"cannot resolve {host}: {_describe(exc)}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            with contextlib.suppress(ValueError):
                addresses.append(ipaddress.ip_address(answer))
        if not addresses:
            raise Unreachable(text, f"{host} resolves to no address")
        # Every answer must pass: a name with one public and one private address is not trusted.
        for address in addresses:
            check_address(text, host, address, self.allow)
        return Target(parsed, addresses[0])

    @contextlib.asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> AsyncIterator[GuardedResponse]:
        """Open `url` under the rules; the body is read from the response inside the block."""
        current = url
        method = method.upper()
        sent_headers = dict(headers or {})
        body = content
        hops: list[str] = []
        for _ in range(self.max_redirects + 1):
            target = await self.check(current)
            # One client per hop: a connection pool keyed by address must never carry a TLS
            # session made for one host name over to a request for another.
            async with httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, trust_env=False, verify=self.ssl_context
            ) as client:
                response = await self._send(client, target, method, sent_headers, body)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        next_url = str(target.url.join(location))
                        hops.append(next_url)
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method not in ("GET", "HEAD")
                        ):
                            method, body = "GET", None
                        if httpx.URL(next_url).netloc != target.url.netloc:
                            sent_headers = {
                                k: v
                                for k, v in sent_headers.items()
                                if k.lower() not in ("authorization", "cookie")
                            }
                        current = next_url
                        continue
                    length = response.headers.get("content-length")
                    if length and length.isdigit() and int(length) > self.max_bytes:
                        raise TooLarge(
                            current, f"the body is {length} bytes, more than the {self.max_bytes} allowed"
                        )
                    yield GuardedResponse(
                        url=current,
                        status_code=response.status_code,
                        headers=response.headers,
                        max_bytes=self.max_bytes,
                        redirects=tuple(hops),
                        _response=response,
                    )
                    return
                finally:
                    await response.aclose()
        raise Refused(url, f"more than {self.max_redirects} redirects")

    async def _send(
        self,
        client: httpx.AsyncClient,
        target: Target,
        method: str,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> httpx.Response:
        request_headers = {"User-Agent": self.user_agent, **headers, "Host": target.host_header()}
        extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
        request = client.build_request(
            method, target.pinned_url(), headers=request_headers, content=content, extensions=extensions
        )
        url = str(target.url)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise Unreachable(url, f"connecting to {target.address} timed out") from exc
        except httpx.TimeoutException as exc:
            raise Unreachable(url, "timed out waiting for the response") from exc
        except httpx.TransportError as exc:
            raise Unreachable(url, f"cannot connect to {target.address}: {_describe(exc)}") from exc

    async def get_bytes(self, url: str) -> bytes:
        """The whole body of a GET (small documents only: it is held in memory)."""
        async with self.stream(url) as response:
            response.raise_for_status()
            return await response.read()

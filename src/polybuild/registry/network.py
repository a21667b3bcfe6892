"""The one place registry HTTP clients are made: over the network (per host, with its TLS
settings, timeouts, connection limits and the environment's proxies), or over a transport the
caller gives (a fake registry in tests: `polybuild.testing.registry`)."""

from __future__ import annotations

import functools
import ssl
import urllib.request

import httpx

from polybuild._version import __version__
from polybuild.errors import RegistryError
from polybuild.registry.config import RegistryConfig

USER_AGENT = f"polybuild/{__version__}"
# Raw bytes only: see registry.body (no decompression before the size caps).
_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=8)


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The verifying TLS context of hosts without TLS settings, shared: loading the CA bundle
    takes tens of milliseconds, too long to repeat for every registry host and client."""
    return httpx.create_ssl_context()


class _TLSOnFirstUse(httpx.AsyncBaseTransport):
    """A host's network transport that makes its TLS context when the first HTTPS request
    goes out.

    Plain-HTTP registries (loopback, `http = true`) never need one, and loading the CA
    bundle for a verifying context costs about 55 ms here, more than the rest of a cached
    pull. HTTP and HTTPS requests go through separate pools; an HTTPS request (a token
    server, a redirect to storage) gets exactly the context it got before.
    """

    def __init__(self, host: str, config: RegistryConfig) -> None:
        self._host = host
        self._config = config
        self._plain: httpx.AsyncHTTPTransport | None = None
        self._tls: httpx.AsyncHTTPTransport | None = None

    def _transport(self, scheme: str) -> httpx.AsyncHTTPTransport:
        if scheme == "https":
            if self._tls is None:
                self._tls = httpx.AsyncHTTPTransport(
                    verify=_verify(self._host, self._config), limits=_LIMITS
                )
            return self._tls
        if self._plain is None:
            # Plain HTTP never reads the context: an unverifying one costs under a millisecond.
            self._plain = httpx.AsyncHTTPTransport(verify=False, limits=_LIMITS)
        return self._plain

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport(request.url.scheme).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                await transport.aclose()


def _verify(host: str, config: RegistryConfig) -> ssl.SSLContext | bool:
    """How to check `host`'s TLS certificate: its own CAs and client keys, none, or the default."""
    settings = config.host(host)
    if settings.insecure:
        return False
    if not (settings.ca or settings.keypairs):
        return _default_tls()
    context = ssl.create_default_context()
    try:
        for ca in settings.ca:
            context.load_verify_locations(cafile=str(ca))
        for pair in settings.keypairs:
            context.load_cert_chain(str(pair.cert), str(pair.key))
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(
            f"registry {host}: cannot load its TLS files: {exc}",
            hint=f"check the ca/keypair paths in {config.source}",
        ) from None
    return context


class Clients:
    """HTTP clients by registry host, made on first use and closed together.

    Without a transport each host gets its own network client (TLS is a per-host setting);
    with one, every host, token server and storage backend is reached through it, by one
    client, and the environment's proxies are not used.
    """

    def __init__(
        self,
        config: RegistryConfig,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, host: str) -> httpx.AsyncClient:
        """The HTTP client for requests that belong to registry `host`."""
        key = host if self.transport is None else ""
        if key not in self._clients:
            self._clients[key] = self._make(host)
        return self._clients[key]

    def _make(self, host: str) -> httpx.AsyncClient:
        if self.transport is not None:
            return httpx.AsyncClient(
                transport=self.transport, timeout=self.timeout, headers=_HEADERS
            )
        if urllib.request.getproxies():
            # httpx mounts a transport per proxy with the client's TLS settings, made now.
            return httpx.AsyncClient(
                verify=_verify(host, self.config),
                timeout=self.timeout,
                headers=_HEADERS,
                limits=_LIMITS,
            )
        return httpx.AsyncClient(
            transport=_TLSOnFirstUse(host, self.config), timeout=self.timeout, headers=_HEADERS
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

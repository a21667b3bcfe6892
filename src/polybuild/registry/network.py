"""The one place registry HTTP clients are made: over the network (per host, with its TLS
settings, timeouts, connection limits and the environment's proxies), or over a transport the
caller gives (a fake registry in tests: `polybuild.testing.registry`)."""

from __future__ import annotations

import functools
import ssl

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
        return httpx.AsyncClient(
            verify=_verify(host, self.config),
            timeout=self.timeout,
            headers=_HEADERS,
            limits=_LIMITS,
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

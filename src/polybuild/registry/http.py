"""One request to a registry host: scheme and TLS choice, the API version check, authorization,
redirects (credentials stay with the registry's origin), bounded reads of answers, and the
mapping of error answers to polybuild's errors (naming the registry and repository)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from polybuild.errors import (
    AuthenticationError,
    BlobUnknownError,
    ImageNotFoundError,
    RegistryError,
)
from polybuild.registry.auth import Authorizer, repository_scope
from polybuild.registry.body import buffered
from polybuild.registry.config import HostConfig, RegistryConfig
from polybuild.registry.network import Clients
from polybuild.registry.origin import (
    REDIRECT_STATUSES,
    is_loopback,
    origin,
    redirect_target,
    same_origin,
    send_once,
)
from polybuild.registry.retry import (
    RETRY_STATUSES,
    RetryPolicy,
    TransientError,
    parse_retry_after,
    retrying,
)

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
Body = bytes | Callable[[], AsyncIterator[bytes]] | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a repository's requests go: a registry host (origin or mirror) and path prefix."""

    host: str
    prefix: str = ""
    mirror: bool = False

    def path(self, repository: str) -> str:
        """The repository's path on this host (mirrors may add a prefix)."""
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def describe(self, repository: str) -> str:
        kind = "mirror" if self.mirror else "registry"
        return f"{kind} {self.host}, repository {self.path(repository)}"


def api_host(domain: str) -> str:
    """The host serving a reference domain's API (Docker Hub's is not docker.io)."""
    return DOCKER_HUB_HOST if domain == DOCKER_HUB_DOMAIN else domain


def error_detail(response: httpx.Response) -> str:
    """`CODE: message` from a registry's JSON error body, else the HTTP reason."""
    try:
        errors = json.loads(response.content).get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
    except (ValueError, AttributeError, TypeError, RecursionError):
        parts = []
    text = "; ".join(p for p in parts if p)
    return f"{response.status_code} {text or response.reason_phrase}"


class Connections:
    """HTTP clients per registry host, the scheme each one speaks, and authorized requests."""

    def __init__(
        self,
        config: RegistryConfig,
        authorizer: Authorizer,
        policy: RetryPolicy,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.authorizer = authorizer
        self.policy = policy
        self._clients = Clients(config, timeout, transport)
        self._bases: dict[str, str] = {}
        self._ping_locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        await self._clients.aclose()

    def host_config(self, host: str) -> HostConfig:
        return self.config.host(host)

    def client(self, host: str) -> httpx.AsyncClient:
        """The HTTP client for `host`, with its TLS settings."""
        return self._clients.get(host)

    def schemes(self, host: str) -> tuple[str, ...]:
        """The schemes to try, in order: plain HTTP only where allowed (as Docker does)."""
        settings = self.host_config(host)
        if settings.http:
            return ("http",)
        if settings.insecure or is_loopback(host):
            return ("https", "http")
        return ("https",)

    async def base_url(self, host: str) -> str:
        """`scheme://host`, found once per host by pinging `/v2/` (the API version check)."""
        if host in self._bases:
            return self._bases[host]
        lock = self._ping_locks.setdefault(host, asyncio.Lock())
        async with lock:
            if host not in self._bases:
                self._bases[host] = await retrying(
                    self.policy, lambda: self._ping(host), f"registry {host}"
                )
        return self._bases[host]

    async def _ping(self, host: str) -> str:
        schemes = self.schemes(host)
        for n, scheme in enumerate(schemes):
            base = f"{scheme}://{host}"
            client = self.client(host)
            try:
                request = client.build_request("GET", f"{base}/v2/")
                response = await buffered(await send_once(client, request, f"registry {host}"))
            except httpx.ConnectError:
                if n + 1 < len(schemes):
                    continue  # e.g. TLS to a plain-HTTP registry on localhost
                raise
            if response.status_code in RETRY_STATUSES:
                raise TransientError(
                    f"/v2/ answered {response.status_code}",
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            version = response.headers.get("Docker-Distribution-API-Version", "")
            if response.status_code == 401:
                self.authorizer.set_challenge(host, response.headers.get("WWW-Authenticate", ""))
            elif response.status_code != 200:
                raise RegistryError(
                    f"{host} is not a registry speaking the v2 API "
                    f"(GET {base}/v2/ answered {error_detail(response)})",
                    hint="check the registry name and port",
                )
            if version and not version.startswith("registry/2."):
                raise RegistryError(f"registry {host} speaks API version {version}, not 2.0")
            return base
        raise AssertionError("unreachable")

    async def send(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        *,
        repository: str,
        actions: Sequence[str] = ("pull",),
        extra_scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One authorized request (no retries); `url` is a path under the host or absolute.

        429/5xx raise TransientError, 401/403 AuthenticationError (RegistryError when a
        redirect target answered them); other statuses are the caller's to judge. Answers
        of 300 and up, and all answers unless `stream`, come back read, with at most
        MAX_ERROR_BODY of their body; a streamed 2xx answer must be closed by the caller.
        """
        host = endpoint.host
        base = httpx.URL(await self.base_url(host))
        where = endpoint.describe(repository)
        try:
            full = httpx.URL(url) if url.startswith(("http://", "https://")) else base.join(url)
        except httpx.InvalidURL as exc:
            raise RegistryError(f"{where}: the registry named an invalid URL ({exc})") from None
        if params:
            full = full.copy_merge_params(params)
        scopes = [repository_scope(endpoint.path(repository), *actions), *extra_scopes]
        for attempt in range(2):
            response = await self._exchange(
                host, base, scopes, where, method, full, headers, body, stream, follow_redirects
            )
            if not same_origin(response.url, base):
                break  # another origin's 401 is not the registry's challenge
            if response.status_code == 401 and attempt == 0:
                challenge = response.headers.get("WWW-Authenticate", "")
                self.authorizer.forget_token(host, scopes)
                if challenge and self.authorizer.set_challenge(host, challenge):
                    continue
            break
        if response.status_code in RETRY_STATUSES:
            await response.aclose()
            raise TransientError(
                f"{where}: {method} answered {response.status_code}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code in (401, 403):
            if not same_origin(response.url, base):
                raise RegistryError(
                    f"{where}: {origin(response.url)}, where the registry sent our {method} "
                    f"request, answered {error_detail(response)}; registry credentials are "
                    "never sent to another origin",
                    hint="the registry's storage refused the request: try again, and tell "
                    "the registry's operator if it persists",
                )
            raise self._auth_error(host, where, response)
        return response

    async def _exchange(
        self,
        host: str,
        base: httpx.URL,
        scopes: Sequence[str],
        where: str,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        body: Body,
        stream: bool,
        follow_redirects: bool,
    ) -> httpx.Response:
        """The final answer to one request; redirects are followed here to see every hop.

        A URL the registry hands us (an upload Location, a Link, a redirect) may name another
        host, such as a storage backend: our credentials are for the registry alone, as in
        containerd, and never go to another origin (nor over a downgraded scheme).
        """
        client = self.client(host)
        hops = 0
        while True:
            request_headers = dict(headers or {})
            if same_origin(url, base):
                authorization = await self.authorizer.authorization(client, host, scopes)
                if authorization:
                    request_headers["Authorization"] = authorization
            content = body() if callable(body) else body
            request = client.build_request(method, url, headers=request_headers, content=content)
            response = await send_once(client, request, where)
            if follow_redirects and response.status_code in REDIRECT_STATUSES:
                await response.aclose()
                hops += 1
                url = redirect_target(response, hops, where)
                if response.status_code == 303 and method != "HEAD":
                    method, body = "GET", None
                continue
            if stream and response.status_code < 300:
                return response
            return await buffered(response)

    def _auth_error(self, host: str, where: str, response: httpx.Response) -> AuthenticationError:
        credentials = self.authorizer.credentials.get(host)
        who = f"the credentials from {credentials.source}" if credentials else "anonymous access"
        verb = "refused" if response.status_code == 401 else "denied"
        return AuthenticationError(
            f"{where}: {verb} {who} ({error_detail(response)})",
            hint=(
                f"check the credentials for {host} in Docker's config.json "
                "($DOCKER_CONFIG or ~/.docker/config.json) and the repository's permissions"
            ),
        )


def raise_for_status(
    response: httpx.Response, where: str, what: str, *, not_found: str = ""
) -> None:
    """Raise the right error for an unexpected answer; 404 becomes a not-found error."""
    if response.status_code < 300:
        return
    detail = error_detail(response)
    if response.status_code == 404 and not_found == "manifest":
        raise ImageNotFoundError(f"{where}: {what}: not found ({detail})")
    if response.status_code == 404 and not_found == "blob":
        raise BlobUnknownError(f"{where}: {what}: not found ({detail})")
    raise RegistryError(f"{where}: {what} failed: {detail}")

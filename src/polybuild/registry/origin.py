"""Where registry credentials may go: the registry's own origin, token realms over HTTPS (plain
HTTP on loopback only), and never a host a redirect leads to."""

from __future__ import annotations

import ipaddress

import httpx

from polybuild.errors import AuthenticationError, RegistryError

# As browsers and curl: enough for a CDN hop or two, and a loop ends quickly.
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (with or without a port): plain HTTP is allowed there."""
    if host.startswith("[") and "]" in host:
        name = host[1 : host.index("]")]
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    else:
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin(url: httpx.URL) -> str:
    """`scheme://host[:port]`: what an error may show of a URL (queries can hold signatures)."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    """Same scheme, host and port (httpx leaves out default ports on both sides)."""
    return (url.scheme, url.host, url.port) == (other.scheme, other.host, other.port)


def redirect_target(response: httpx.Response, hops: int, where: str) -> httpx.URL:
    """Where a 3xx answer sends the request next: http(s) only, at most MAX_REDIRECTS hops."""
    if hops > MAX_REDIRECTS:
        raise RegistryError(
            f"{where}: more than {MAX_REDIRECTS} redirects (last from {origin(response.url)})"
        )
    location = response.headers.get("Location", "").strip()
    try:
        target = response.url.join(location) if location else None
    except (httpx.InvalidURL, UnicodeError, ValueError):
        target = None
    if target is None or target.scheme not in ("http", "https") or not target.host:
        shown = f"a {target.scheme}: URL" if target and target.scheme else "no valid URL"
        raise RegistryError(
            f"{where}: {origin(response.url)} redirected to {shown}; "
            "only http and https redirects are followed"
        )
    return target


async def send_once(
    client: httpx.AsyncClient, request: httpx.Request, where: str
) -> httpx.Response:
    """`request` sent without following redirects, its answer streamed (to be read or closed).

    httpx parses a 3xx answer's Location even when not following it, and raises InvalidURL
    (not a transport error) for a malformed one: that is the server's fault, a RegistryError.
    """
    try:
        return await client.send(request, stream=True, follow_redirects=False)
    except httpx.InvalidURL as exc:
        raise RegistryError(
            f"{where}: {origin(request.url)} answered with an invalid Location ({exc})"
        ) from None


def token_realm(host: str, realm: str) -> httpx.URL:
    """The token server a bearer challenge of registry `host` names, if credentials may go there.

    A token request carries the user's password (or refresh token), so the realm must speak
    HTTPS; plain HTTP is accepted on loopback only, where nobody else can listen in.
    """
    try:
        url = httpx.URL(realm)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        url = None
    if url is None or url.scheme not in ("https", "http") or not url.host:
        raise RegistryError(
            f"registry {host} sent a bearer challenge without a valid realm ({realm[:200]!r})"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise AuthenticationError(
            f"registry {host} names the token server {origin(url)}{url.path} over plain HTTP; "
            "refusing to send credentials there",
            hint="token servers must use HTTPS (plain HTTP only on localhost): check the "
            "registry's auth settings, or whether something between us rewrites its answers",
        )
    return url

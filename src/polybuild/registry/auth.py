"""Registry authentication: WWW-Authenticate challenges, basic auth, and bearer tokens cached
per registry and scope (so a token for one repository is never sent to another)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from polybuild.errors import AuthenticationError, PolybuildError, RegistryError
from polybuild.registry.body import MAX_TOKEN_ANSWER, read_body
from polybuild.registry.credentials import Credentials, DockerCredentials
from polybuild.registry.origin import origin, send_once, token_realm
from polybuild.registry.pull_progress import TokenFetched, report_token
from polybuild.registry.retry import RETRY_STATUSES, TransientError, parse_retry_after

_PARAM = re.compile(r'\s*([a-zA-Z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
# Printable ASCII without spaces: what fits in an Authorization header (RFC 6750 is stricter).
_TOKEN = re.compile(r"[\x21-\x7e]+")
_DEFAULT_EXPIRY = 60
# A token is asked for again after a day at the latest, whatever the server says.
_MAX_EXPIRY = 24 * 3600
# Leave some margin: a token that expires while a long upload runs is refused at its end.
_EXPIRY_MARGIN = 10
CLIENT_ID = "polybuild"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One WWW-Authenticate challenge: `basic` or `bearer` with its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges in a WWW-Authenticate header (schemes lower-cased)."""
    found: list[Challenge] = []
    rest = header.strip()
    while rest:
        scheme, _, rest = rest.partition(" ")
        params: dict[str, str] = {}
        while rest:
            match = _PARAM.match(rest)
            if match is None:
                break
            value = match.group(2) if match.group(2) is not None else match.group(3)
            params[match.group(1).lower()] = value.replace('\\"', '"')
            rest = rest[match.end() :]
        found.append(Challenge(scheme.strip(", ").lower(), params))
        rest = rest.strip(", ")
    return found


def repository_scope(path: str, *actions: str) -> str:
    """`repository:<path>:<actions>` as the token spec writes scopes."""
    return f"repository:{path}:{','.join(actions)}"


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _auth_hint(host: str, credentials: Credentials | None) -> str:
    if credentials is None:
        return (
            f"add credentials for {host} to Docker's config.json ($DOCKER_CONFIG or "
            "~/.docker/config.json), for example with `docker login`"
        )
    return f"check the credentials for {host} in {credentials.source}"


class Authorizer:
    """Chooses the Authorization header for a request from what each registry asked for."""

    def __init__(self, credentials: DockerCredentials | None = None) -> None:
        self.credentials = credentials or DockerCredentials()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}
        self._locks: dict[tuple[str, tuple[str, ...]], asyncio.Lock] = {}

    def set_challenge(self, host: str, header: str) -> bool:
        """Remember what `host` asked for; True when it is a scheme we can answer."""
        for challenge in parse_challenges(header):
            if challenge.scheme in ("bearer", "basic"):
                self._challenges[host] = challenge
                return True
        return False

    def challenge(self, host: str) -> Challenge | None:
        return self._challenges.get(host)

    def forget_token(self, host: str, scopes: Sequence[str]) -> None:
        self._tokens.pop((host, tuple(sorted(scopes))), None)

    async def authorization(
        self, http: httpx.AsyncClient, host: str, scopes: Sequence[str]
    ) -> str | None:
        """The Authorization header value for a request to `host` needing `scopes`."""
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        credentials = self.credentials.get(host)
        if challenge.scheme == "basic":
            if credentials is None or not credentials.username:
                raise AuthenticationError(
                    f"registry {host} requires a user name and password",
                    hint=_auth_hint(host, credentials),
                )
            return _basic(credentials)
        if credentials is not None and credentials.registry_token:
            return f"Bearer {credentials.registry_token}"
        key = (host, tuple(sorted(scopes)))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
            token, expires_in = await self._reported_token(
                http, host, challenge, key[1], credentials
            )
            self._tokens[key] = (token, time.monotonic() + max(expires_in - _EXPIRY_MARGIN, 1))
            return f"Bearer {token}"

    async def _reported_token(
        self,
        http: httpx.AsyncClient,
        host: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        credentials: Credentials | None,
    ) -> tuple[str, int]:
        """_fetch_token, reported to the pull's observer when the user's credentials were
        sent (BuildKit's `[auth] SCOPES token for HOST` step; an anonymous token has none)."""
        if credentials is None or not (credentials.username or credentials.identity_token):
            return await self._fetch_token(http, host, challenge, scopes, credentials)
        started = time.time()
        try:
            answer = await self._fetch_token(http, host, challenge, scopes, credentials)
        except PolybuildError as exc:
            report_token(TokenFetched(host, scopes, started, time.time(), str(exc)))
            raise
        report_token(TokenFetched(host, scopes, started, time.time()))
        return answer

    async def _fetch_token(
        self,
        http: httpx.AsyncClient,
        host: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        credentials: Credentials | None,
    ) -> tuple[str, int]:
        realm = token_realm(host, challenge.realm)
        shown = f"{origin(realm)}{realm.path}"
        service = challenge.params.get("service", "")
        if credentials is not None and credentials.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "service": service,
                "client_id": CLIENT_ID,
                "scope": " ".join(scopes),
            }
            request = http.build_request("POST", realm, data=form)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else []
            )
            params += [("scope", scope) for scope in scopes]
            headers: dict[str, str] = {}
            if credentials is not None and credentials.username:
                params.append(("account", credentials.username))
                headers["Authorization"] = _basic(credentials)
            request = http.build_request("GET", realm, params=params, headers=headers)
        response = await send_once(http, request, f"registry {host}")
        try:
            if response.status_code in RETRY_STATUSES:
                raise TransientError(
                    f"token server {shown} answered {response.status_code}",
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            if response.status_code in (401, 403):
                who = (
                    f"the credentials from {credentials.source}"
                    if credentials
                    else "anonymous access"
                )
                raise AuthenticationError(
                    f"registry {host}: the token server {shown} refused {who} "
                    f"({response.status_code} {response.reason_phrase}) "
                    f"for {' '.join(scopes) or 'login'}",
                    hint=_auth_hint(host, credentials),
                )
            if response.status_code != 200:
                raise RegistryError(
                    f"registry {host}: the token server {shown} answered {response.status_code}"
                )
            raw = await read_body(
                response,
                MAX_TOKEN_ANSWER,
                f"registry {host}",
                f"the answer of token server {shown}",
            )
        finally:
            await response.aclose()
        return _parse_token(raw, f"registry {host}: the token server {shown}")


def _parse_token(raw: bytes, who: str) -> tuple[str, int]:
    """The token and its lifetime in seconds (at least a minute, at most a day)."""
    try:
        answer = json.loads(raw)
        token = answer.get("token") or answer.get("access_token") or ""
    except (ValueError, AttributeError, RecursionError):
        answer, token = {}, ""
    try:
        expires_in = int(answer.get("expires_in") or _DEFAULT_EXPIRY)
    except (ValueError, TypeError, OverflowError):
        expires_in = _DEFAULT_EXPIRY
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise RegistryError(f"{who} sent no token" if not token else f"{who} sent an invalid token")
    return token, min(max(expires_in, _DEFAULT_EXPIRY), _MAX_EXPIRY)

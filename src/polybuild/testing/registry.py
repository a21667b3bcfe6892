"""An in-memory registry served as an httpx transport, so the registry client runs in tests
without a network, a registry process or root: `RegistryClient(transport=FakeRegistry())`.

It speaks the distribution API: the `/v2/` check, blobs and manifests (GET, HEAD; pushed
manifests must find their blobs), uploads (monolithic, chunked, resumable, cross-repository
mounts), paginated tag lists, basic or bearer auth (its token server is `https://<host>/token`),
upload sessions on a storage host (`upload_host`), and injected faults. It records every
request in `requests`; other hosts do not connect.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

import httpx

_API = re.compile(r"/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)")
_UPLOAD = re.compile(r"/uploads?/(?P<session>[^/]*)")
_DIGEST = re.compile(r"(?P<algorithm>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)")
_OCTET = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Fault:
    """A forced answer: `status` (or a dropped connection) for requests of `method` (any when
    None) whose path matches the regular expression `path`, the next `times` times (0: always).
    """

    status: int = 503
    method: str | None = None
    path: str = ""
    times: int = 1
    headers: tuple[tuple[str, str], ...] = ()
    disconnect: bool = False

    def matches(self, request: httpx.Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        return re.search(self.path, request.url.path) is not None


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the fake registry got it."""

    method: str
    host: str
    path: str
    query: str
    authorization: str | None


@dataclass(slots=True)
class _Repository:
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # by digest
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest


@dataclass(slots=True)
class _Armed:
    fault: Fault
    left: int


@dataclass(slots=True)
class _Session:
    repository: str
    data: bytearray = field(default_factory=bytearray)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """`algorithm:hex` of `data`, as registries name blobs and manifests."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _matches(digest: str, data: bytes) -> bool:
    match = _DIGEST.fullmatch(digest)
    if match is None or match["algorithm"] not in hashlib.algorithms_available:
        return False
    return digest_of(data, match["algorithm"]) == digest


def _answer(
    status: int, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> httpx.Response:
    """An answer streamed as a network's is (not read yet); Content-Length unless given."""
    return httpx.Response(
        status,
        headers={"Content-Length": str(len(body)), **(headers or {})},
        stream=httpx.ByteStream(body),
    )


def _json(
    status: int, document: object, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    body = json.dumps(document).encode()
    return _answer(status, {"Content-Type": "application/json", **(headers or {})}, body)


def _error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return _json(status, {"errors": [{"code": code, "message": message}]}, headers)


class FakeRegistry(httpx.AsyncBaseTransport):
    """A registry at `host`; `auth` asks for `users`' passwords, as basic auth or by tokens.

    With bearer auth, a token grants what it was asked for to a known user; anonymous users
    get pull access when `anonymous_pull`, else the token server refuses them.
    """

    def __init__(
        self,
        host: str = "registry.test",
        *,
        auth: Literal["basic", "bearer"] | None = None,
        users: Mapping[str, str] | None = None,
        anonymous_pull: bool = False,
        upload_host: str | None = None,
    ) -> None:
        self.host = host
        self.auth = auth
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.upload_host = upload_host
        self.requests: list[Seen] = []
        self._faults: list[_Armed] = []
        self._repositories: dict[str, _Repository] = {}
        self._sessions: dict[str, _Session] = {}
        self._tokens: dict[str, frozenset[tuple[str, str]]] = {}
        self._ids = itertools.count(1)

    # ---- the test's side -------------------------------------------------------------------

    def repository(self, name: str) -> _Repository:
        return self._repositories.setdefault(name, _Repository())

    def add_blob(self, repository: str, data: bytes) -> str:
        """Store a blob in `repository`; returns its digest."""
        digest = digest_of(data)
        self.repository(repository).blobs[digest] = data
        return digest

    def add_manifest(
        self, repository: str, raw: bytes, media_type: str, tag: str | None = None
    ) -> str:
        """Store a manifest or index (and tag it); returns its digest. Blobs are not checked."""
        digest = digest_of(raw)
        stored = self.repository(repository)
        stored.manifests[digest] = (media_type, raw)
        if tag is not None:
            stored.tags[tag] = digest
        return digest

    def blob(self, repository: str, digest: str) -> bytes | None:
        return self.repository(repository).blobs.get(digest)

    def manifest(self, repository: str, reference: str) -> tuple[str, bytes] | None:
        """The (media type, bytes) a tag or digest names in `repository`, if any."""
        stored = self.repository(repository)
        return stored.manifests.get(stored.tags.get(reference, reference))

    def inject(self, fault: Fault) -> None:
        """Answer the next matching requests with `fault` (before auth and everything else)."""
        self._faults.append(_Armed(fault, fault.times))

    def count(self, method: str, path: str = "") -> int:
        """How many requests of `method` had a path matching the regular expression `path`."""
        return sum(1 for s in self.requests if s.method == method and re.search(path, s.path))

    # ---- the transport ---------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii")
        self.requests.append(
            Seen(
                request.method,
                host,
                request.url.path,
                request.url.query.decode("ascii"),
                request.headers.get("Authorization"),
            )
        )
        body = await request.aread()
        fault = self._fault(request)
        if fault is not None:
            if fault.disconnect:
                raise httpx.RemoteProtocolError("the fake registry dropped the connection")
            return _error(fault.status, "FAULT", "injected fault", **dict(fault.headers))
        if host == self.upload_host:
            upload = _UPLOAD.fullmatch(request.url.path)
            if upload is None:
                return _error(404, "NOT_FOUND", "no such upload path")
            return self._upload(request, upload["session"], body)
        if host != self.host:
            raise httpx.ConnectError(f"no route to {host} (only {self.host} is served)")
        if self.auth == "bearer" and request.url.path == "/token":
            return self._token(request)
        return self._api(request, body)

    def _fault(self, request: httpx.Request) -> Fault | None:
        for armed in self._faults:
            if armed.fault.matches(request) and (armed.fault.times == 0 or armed.left > 0):
                armed.left -= 1
                return armed.fault
        return None

    # ---- authorization ---------------------------------------------------------------------

    def _user(self, authorization: str) -> str | None:
        """The user a `Basic` header names, if the password is right."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password and user else None

    def _challenge(self, scope: str) -> httpx.Response:
        if self.auth == "basic":
            header = 'Basic realm="fake-registry"'
        else:
            header = f'Bearer realm="https://{self.host}/token",service="{self.host}"'
            if scope:
                header += f',scope="{scope}"'
        return _error(
            401, "UNAUTHORIZED", "authentication required", **{"WWW-Authenticate": header}
        )

    def _allowed(self, request: httpx.Request, scope: tuple[str, str] | None) -> bool:
        """Whether the request's credentials allow `scope` (repository, action); None: any."""
        authorization = request.headers.get("Authorization", "")
        if self.auth is None:
            return True
        if self.auth == "basic":
            return self._user(authorization) is not None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            return False
        return scope is None or scope in self._tokens[token]

    def _token(self, request: httpx.Request) -> httpx.Response:
        user = self._user(request.headers.get("Authorization", ""))
        if user is None and (request.headers.get("Authorization") or not self.anonymous_pull):
            return _error(401, "UNAUTHORIZED", "the token server refused the credentials")
        granted: set[tuple[str, str]] = set()
        for scope in request.url.params.get_list("scope"):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            for action in actions.split(","):
                if user is not None or action == "pull":
                    granted.add((name, action))
        token = f"fake-token-{next(self._ids)}"
        self._tokens[token] = frozenset(granted)
        return _json(200, {"token": token, "expires_in": 300})

    # ---- the API ---------------------------------------------------------------------------

    def _api(self, request: httpx.Request, body: bytes) -> httpx.Response:
        path = request.url.path
        if path == "/v2/":
            if not self._allowed(request, None):
                return self._challenge("")
            return _answer(200, {"Docker-Distribution-API-Version": "registry/2.0"})
        match = _API.fullmatch(path)
        if match is None:
            return _error(404, "NOT_FOUND", f"no API at {path}")
        name, kind, rest = match["name"], match["kind"], match["rest"]
        action = "pull" if request.method in ("GET", "HEAD") else "push"
        if not self._allowed(request, (name, action)):
            return self._challenge(f"repository:{name}:{action}")
        if kind == "manifests":
            return self._manifests(request, name, rest, body)
        if kind == "tags" and rest == "list":
            return self._tags(request, name)
        upload = _UPLOAD.fullmatch(f"/{rest}")
        if upload is not None:
            if request.method == "POST" and not upload["session"]:
                return self._start(request, name, body)
            return self._upload(request, upload["session"], body)
        return self._blob(request, name, rest)

    def _manifests(
        self, request: httpx.Request, name: str, reference: str, body: bytes
    ) -> httpx.Response:
        stored = self.repository(name)
        if request.method == "PUT":
            return self._put_manifest(request, stored, name, reference, body)
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", f"{request.method} on manifests")
        found = self.manifest(name, reference)
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {reference}")
        media_type, raw = found
        headers = {
            "Content-Type": media_type,
            "Docker-Content-Digest": digest_of(raw),
            "Content-Length": str(len(raw)),
        }
        return _answer(200, headers, b"" if request.method == "HEAD" else raw)

    def _put_manifest(
        self, request: httpx.Request, stored: _Repository, name: str, reference: str, raw: bytes
    ) -> httpx.Response:
        digest = digest_of(raw)
        if _DIGEST.fullmatch(reference) and not _matches(reference, raw):
            return _error(400, "DIGEST_INVALID", f"the manifest is not {reference}")
        try:
            document = json.loads(raw)
            children = [m["digest"] for m in document.get("manifests", [])]
            blobs = [document["config"]["digest"]] if "config" in document else []
            blobs += [
                layer["digest"] for layer in document.get("layers", []) if not layer.get("urls")
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "MANIFEST_INVALID", "the manifest is not valid JSON")
        missing = [d for d in children if d not in stored.manifests]
        missing += [d for d in blobs if d not in stored.blobs]
        if missing:
            return _error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown: {missing[0]}")
        media_type = request.headers.get("Content-Type", "") or document.get("mediaType", "")
        stored.manifests[digest] = (media_type, raw)
        if not _DIGEST.fullmatch(reference):
            stored.tags[reference] = digest
        location = f"/v2/{name}/manifests/{digest}"
        return _answer(201, {"Docker-Content-Digest": digest, "Location": location})

    def _tags(self, request: httpx.Request, name: str) -> httpx.Response:
        tags = sorted(self.repository(name).tags)
        last = request.url.params.get("last")
        if last is not None:
            tags = [tag for tag in tags if tag > last]
        size = int(request.url.params.get("n", "0") or 0) or len(tags)
        page, more = tags[:size], len(tags) > size
        headers = {}
        if more:
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={quote(page[-1])}>; rel="next"'
        return _json(200, {"name": name, "tags": page}, headers)

    def _blob(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", f"{request.method} on blobs")
        data = self.blob(name, digest)
        if data is None:
            return _error(404, "BLOB_UNKNOWN", f"blob unknown: {digest}")
        headers = {
            "Content-Type": _OCTET,
            "Docker-Content-Digest": digest,
            "Content-Length": str(len(data)),
        }
        return _answer(200, headers, b"" if request.method == "HEAD" else data)

    # ---- uploads ---------------------------------------------------------------------------

    def _start(self, request: httpx.Request, name: str, body: bytes) -> httpx.Response:
        params = request.url.params
        mount, source = params.get("mount"), params.get("from")
        if mount and source:
            data = self.blob(source, mount)
            if data is not None and self._allowed(request, (source, "pull")):
                self.repository(name).blobs[mount] = data
                location = f"/v2/{name}/blobs/{mount}"
                return _answer(201, {"Location": location, "Docker-Content-Digest": mount})
        digest = params.get("digest")
        if digest:  # a monolithic upload in one POST
            return self._commit(_Session(name, bytearray(body)), digest)
        session = f"session-{next(self._ids)}"
        self._sessions[session] = _Session(name)
        return self._progress(202, session)

    def _location(self, session: str) -> str:
        if self.upload_host is not None:
            return f"https://{self.upload_host}/upload/{session}?signature=fake"
        return f"/v2/{self._sessions[session].repository}/blobs/uploads/{session}"

    def _progress(self, status: int, session: str) -> httpx.Response:
        size = len(self._sessions[session].data)
        headers = {
            "Location": self._location(session),
            "Range": f"0-{max(size - 1, 0)}",
            "Docker-Upload-UUID": session,
        }
        return _answer(status, headers)

    def _upload(self, request: httpx.Request, session: str, body: bytes) -> httpx.Response:
        upload = self._sessions.get(session)
        if upload is None:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", f"upload unknown: {session}")
        if request.method == "GET":
            return self._progress(204, session)
        if request.method == "DELETE":
            del self._sessions[session]
            return _answer(204)
        content_range = request.headers.get("Content-Range")
        if content_range is not None and not content_range.startswith(f"{len(upload.data)}-"):
            return _error(416, "BLOB_UPLOAD_INVALID", f"range {content_range} is out of order")
        upload.data += body
        if request.method == "PATCH":
            return self._progress(202, session)
        if request.method == "PUT":
            del self._sessions[session]
            return self._commit(upload, request.url.params.get("digest", ""))
        return _error(405, "UNSUPPORTED", f"{request.method} on an upload")

    def _commit(self, upload: _Session, digest: str) -> httpx.Response:
        data = bytes(upload.data)
        if not _matches(digest, data):
            return _error(400, "DIGEST_INVALID", f"the upload is not {digest or 'named'}")
        self.repository(upload.repository).blobs[digest] = data
        location = f"/v2/{upload.repository}/blobs/{digest}"
        return _answer(201, {"Location": location, "Docker-Content-Digest": digest})

"""A BuildKit daemon's address as a gRPC target, and the TLS files a connection uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import UsageError

_HINT = "a BuildKit daemon is tcp://HOST:PORT or unix:///PATH (as buildx's remote driver)"


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """buildx's remote-driver TLS options: `cacert` checks the daemon's certificate (the
    system's roots when None), `cert` and `key` are the client's for mutual TLS, and
    `server_name` is the name the daemon's certificate must carry when it is not the host."""

    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise UsageError(
                "TLS: cert and key go together (the client's certificate and its private key)"
            )


@dataclass(frozen=True, slots=True)
class TLSMaterial:
    """The PEM bytes of a TLSConfig's files, read once when a connection is made."""

    root_certificates: bytes | None
    certificate_chain: bytes | None
    private_key: bytes | None


def grpc_target(address: str) -> str:
    """The gRPC target of `tcp://host:port` (host:port) or `unix:///path` (itself).

    The address is the one builders/endpoint stored (checked there); this only translates it.
    """
    scheme, sep, rest = address.partition("://")
    if sep and scheme == "tcp" and rest:
        return rest
    if sep and scheme == "unix" and rest.startswith("/"):
        return address
    raise UsageError(f"invalid BuildKit endpoint {address!r}", hint=_HINT)


def read_tls(tls: TLSConfig) -> TLSMaterial:
    """The files' bytes; one that cannot be read is a usage error naming the option."""

    def read(option: str, path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"TLS {option} {str(path)!r} cannot be read: {exc.strerror or exc}"
            ) from exc

    return TLSMaterial(
        root_certificates=read("cacert", tls.cacert),
        certificate_chain=read("cert", tls.cert),
        private_key=read("key", tls.key),
    )


__all__ = ["TLSConfig", "TLSMaterial", "grpc_target", "read_tls"]

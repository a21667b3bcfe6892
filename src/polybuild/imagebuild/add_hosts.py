"""`--add-host HOST:IP` (or HOST=IP), as buildx reads it: entries added to the /etc/hosts of
every RUN step (and part of their cache keys, as BuildKit keeps them in the exec op)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from polybuild.errors import UsageError

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def parse_add_hosts(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Each value's (host, ip); UsageError naming the flag and the value when it is wrong."""
    found: list[tuple[str, str]] = []
    for value in values:
        host, sep, ip = value.partition("=")
        if not sep:
            host, sep, ip = value.partition(":")  # the IP may be IPv6: split at the first
        host, ip = host.strip(), ip.strip()
        if not sep or not host or not ip:
            raise UsageError(f"--add-host {value!r}: expected HOST:IP")
        if not _HOST.match(host):
            raise UsageError(f"--add-host {value!r}: invalid host name {host!r}")
        if ip == "host-gateway":
            raise UsageError(
                f"--add-host {value!r}: host-gateway is not supported yet",
                hint="give the address itself",
            )
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise UsageError(f"--add-host {value!r}: invalid IP address {ip!r}") from None
        found.append((host, ip.strip("[]")))
    return tuple(found)


__all__ = ["parse_add_hosts"]

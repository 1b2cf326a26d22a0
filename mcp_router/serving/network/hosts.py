"""Which `Host` and `Origin` headers the HTTP face answers: the DNS-rebinding allowlist.

A page on `evil.example` whose name is re-pointed at this machine makes the victim's browser talk to
the server with `Host: evil.example`; answering only the names the server is really reached by stops
that. The patterns follow the SDK's `TransportSecuritySettings` (an exact value, or `NAME:*` for any
port) so the same lists can be handed to the SDK, which then checks `/mcp` a second time; our match
is the stricter of the two (a wildcard port must be digits), so the SDK never refuses what we let by.

Stdlib only (imported by the command-line parser); the SDK type is built on demand.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SCHEMES = ("http", "https")
_FORBIDDEN = set("/@ ,?#\\")


def bracketed(host: str) -> str:
    """An IPv6 literal as it appears in a `Host` header (`[::1]`); other names unchanged."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1): binds only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _split(entry: str) -> tuple[str, str]:
    """`NAME[:PORT]` → (NAME, ":PORT" or ""), IPv6 literals in brackets."""
    if entry.startswith("["):
        end = entry.find("]")
        return (entry, "") if end < 0 else (entry[: end + 1], entry[end + 1 :])
    if entry.count(":") > 1:  # a bare IPv6 literal: no port can be told apart
        return f"[{entry}]", ""
    name, colon, port = entry.partition(":")
    return name, colon + port


def _valid_port(part: str) -> bool:
    digits = part[1:]
    return part == ":*" or (digits.isascii() and digits.isdigit() and 0 < int(digits) < 65536)


def host_entry(text: str) -> str:
    """One `--allowed-host` value, normalised (argparse type): NAME, NAME:PORT, NAME:* or an IPv6
    literal. NAME alone means that name bare (as sent to port 80 or 443) or on any port."""
    entry = text.strip().lower()
    name, port = _split(entry)
    bad_name = not name or name == "[]" or "*" in name or any(c in _FORBIDDEN for c in name)
    if bad_name or (name.startswith("[") and not name.endswith("]")) or (port and not _valid_port(port)):
        raise argparse.ArgumentTypeError(
            f"expected a host name as clients send it (example.com, example.com:8443, example.com:*, "
            f"[::1]:8000), not {text!r}"
        )
    return name + port


def origin_entry(text: str) -> str:
    """One `--allowed-origin` value (argparse type): `http(s)://NAME[:PORT]`, as browsers send it."""
    origin = text.strip().rstrip("/")
    parts = urlsplit(origin.lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise argparse.ArgumentTypeError(
            f"expected an origin such as https://app.example.com or http://localhost:3000, not {text!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def matches(value: str, patterns: Iterable[str]) -> bool:
    """`value` equals a pattern, or a `BASE:*` pattern with a numeric port."""
    for pattern in patterns:
        if value == pattern:
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2] + ":"
            port = value[len(base) :]
            if value.startswith(base) and port.isascii() and port.isdigit():
                return True
    return False


@dataclass(frozen=True)
class HostPolicy:
    """The allowed `Host` values and browser `Origin`s of one server."""

    hosts: tuple[str, ...]
    origins: tuple[str, ...]

    @classmethod
    def for_bind(
        cls, host: str, extra_hosts: Iterable[str] = (), extra_origins: Iterable[str] = ()
    ) -> HostPolicy:
        """The bind address and the loopback names, plus what the operator added.

        Names are what rebinding forges, never ports (the forged `Host` is the attacker's name), so
        the default names are allowed on any port, as the SDK's loopback default does: ssh tunnels and
        `docker -p 9000:8000` keep working. An unspecified bind (0.0.0.0, ::) is no name to send:
        clients on other machines use a name or address only the operator knows, hence
        `--allowed-host`. Origins follow the hosts (a page an allowed host serves may call the
        server), plus `--allowed-origin`.
        """
        names = list(LOOPBACK_NAMES)
        bind = bracketed(host.strip().lower())
        if not _is_unspecified(bind) and bind not in names:
            names.insert(0, bind)
        hosts: list[str] = []
        for entry in [*names, *extra_hosts]:
            name, port_part = _split(entry)
            hosts += [entry] if port_part else [name, f"{name}:*"]
        origins = [f"{scheme}://{h}" for h in hosts for scheme in SCHEMES]
        return cls(hosts=_unique(hosts), origins=_unique([*origins, *extra_origins]))

    def allows_host(self, host: str | None) -> bool:
        return host is not None and matches(host, self.hosts)

    def allows_origin(self, origin: str | None) -> bool:
        """No `Origin` is no browser (or a same-origin GET): only a browser can be rebound."""
        return origin is None or matches(origin, self.origins)

    def sdk_settings(self) -> TransportSecuritySettings:
        """The same lists for the SDK's own check of `/mcp` (its default turns the check off for a
        non-loopback bind, and on loopback would refuse names added with `--allowed-host`)."""
        from mcp.server.transport_security import TransportSecuritySettings

        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(self.hosts),
            allowed_origins=list(self.origins),
        )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))

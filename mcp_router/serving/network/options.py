"""The command line of `serve --transport http` → `NetworkOptions`, refusing what is unsafe to serve.

A bind beyond loopback with no token would hand the configured API keys to anyone who reaches the
port, so it is refused before anything binds (`NetworkRefusal`, exit 2). A token comes from
`MCP_ROUTER_TOKEN` or from `--token-file` (the flag wins: it is the more deliberate of the two); a
file that group or others can read or write is refused, as ssh refuses an open private key. On
loopback nothing is required, but a token that is given is enforced there too.

Stdlib only: `build_parser` imports this module for every command.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_router.serving.network.hosts import HostPolicy, host_entry, is_loopback, origin_entry
from mcp_router.serving.network.ratelimit import RateLimit

if TYPE_CHECKING:
    from providers import Secret

TOKEN_ENV = "MCP_ROUTER_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_FILE_BYTES = 4096
DEFAULT_RATE_PER_S = 20.0
BURST_SECONDS = 2.0  # the default burst is two seconds' worth of the rate: 40 at 20/s
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0}


class NetworkRefusal(Exception):
    """A setting the server must not start with; the message says what to do, never the token."""


@dataclass(frozen=True)
class NetworkOptions:
    """Everything the HTTP face needs; `token` masks itself in any repr or log."""

    host: str
    port: int
    policy: HostPolicy
    token: Secret | None = field(default=None, repr=False)
    token_source: str | None = None  # where the token came from, for the start-up log
    rate_limit: RateLimit | None = None
    trust_proxy: bool = False
    stateless: bool = False  # every request stands alone: any replica can serve any request

    def describe(self) -> str:
        """One line for the start-up log: what guards the port (never the token)."""
        auth = f"bearer token required (from {self.token_source})" if self.token else "no token (loopback)"
        rate = self.rate_limit.describe() if self.rate_limit else "no rate limit"
        proxy = ", client address from X-Forwarded-For" if self.trust_proxy else ""
        sessions = "stateless" if self.stateless else "MCP sessions kept in this process"
        hosts = ", ".join(self.policy.hosts)
        return f"HTTP face: {auth}; {rate}{proxy}; {sessions}; allowed hosts: {hosts}"


def rate_spec(text: str) -> float:
    """`--rate-limit` (argparse type): `N/s`, `N/min`, a bare `N` per second, or `off` (0)."""
    value, _, unit = text.strip().lower().partition("/")
    if value in ("off", "0", "none") and not unit:
        return 0.0
    try:
        per_s = float(value) / _PER[unit or "s"]
    except (ValueError, KeyError):
        per_s = -1.0
    if not (per_s > 0 and math.isfinite(per_s)):
        raise argparse.ArgumentTypeError(f"expected a rate such as 20/s, 600/min or off, not {text!r}")
    return per_s


def _burst(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of requests ≥ 1, not {text!r}")
    return value


def add_arguments(serve: argparse.ArgumentParser) -> None:
    """The HTTP face's flags on the `serve` subcommand (ignored with `--transport stdio`)."""
    group = serve.add_argument_group("HTTP access (--transport http)")
    group.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"read the bearer token from PATH (mode 600; default: ${TOKEN_ENV}). Clients send "
        "'Authorization: Bearer TOKEN'. Required when --host is not a loopback address",
    )
    group.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        type=host_entry,
        metavar="HOST[:PORT]",
        help="a Host header clients may send: the name or address they connect to (repeatable; "
        "default: the bind address, 127.0.0.1, localhost and [::1]; HOST alone: on any port)",
    )
    group.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        type=origin_entry,
        metavar="ORIGIN",
        help="a browser Origin that may call the server, e.g. https://app.example.com (repeatable; "
        "default: http(s):// of the allowed hosts)",
    )
    group.add_argument(
        "--rate-limit",
        type=rate_spec,
        metavar="N/s",
        help=f"requests per client: N/s, N/min or off (default {DEFAULT_RATE_PER_S:g}/s when --host is "
        "not loopback, off on loopback)",
    )
    group.add_argument(
        "--burst",
        type=_burst,
        metavar="B",
        help="requests a client may send at once (default: 2 s of the rate)",
    )
    group.add_argument(
        "--trust-proxy",
        action="store_true",
        help="behind one reverse proxy: rate-limit by the last X-Forwarded-For address, not the peer's",
    )
    group.add_argument(
        "--stateless",
        action="store_true",
        help="keep no MCP session between requests, so replicas behind a load balancer need no "
        "sticky sessions (router state and budgets are in the database either way)",
    )


def read_token_file(path: Path) -> str:
    """The file's text, if only its owner can read and write it. The mode is checked on the open file,
    so the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NetworkRefusal(f"cannot read the token file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NetworkRefusal(f"the token file {path} is not a regular file")
        if os.name == "posix" and mode & 0o066:
            raise NetworkRefusal(
                f"the token file {path} can be read or written by group or others (mode "
                f"{stat.S_IMODE(mode):03o}); make it private: chmod 600 {path}"
            )
        data = file.read(MAX_TOKEN_FILE_BYTES + 1)
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise NetworkRefusal(f"the token file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise NetworkRefusal(f"the token file {path} is not text") from None


def check_token(raw: str, source: str) -> str:
    """The token without surrounding whitespace; refused when it could not travel in a header or is
    short enough to guess. The message names the source, never the value."""
    token = raw.strip()
    if not token:
        raise NetworkRefusal(f"the bearer token from {source} is empty")
    if not all("!" <= c <= "~" for c in token):
        raise NetworkRefusal(
            f"the bearer token from {source} must be printable ASCII without spaces (it is sent as "
            "'Authorization: Bearer TOKEN')"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise NetworkRefusal(
            f"the bearer token from {source} is too short ({len(token)} characters, at least "
            f"{MIN_TOKEN_CHARS}); make one with: {MAKE_TOKEN}"
        )
    return token


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    if args.token_file:
        path = Path(args.token_file).expanduser()
        return check_token(read_token_file(path), f"the token file {path}"), f"--token-file {path}"
    if environ.get(TOKEN_ENV, "").strip():
        return check_token(environ[TOKEN_ENV], TOKEN_ENV), TOKEN_ENV
    return None, None


def _rate_limit(args: argparse.Namespace, loopback: bool) -> RateLimit | None:
    per_s = args.rate_limit
    if per_s is None:
        per_s = 0.0 if loopback and args.burst is None else DEFAULT_RATE_PER_S
    if per_s == 0:
        return None
    return RateLimit(per_s=per_s, burst=args.burst or max(1, math.ceil(per_s * BURST_SECONDS)))


def options_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> NetworkOptions:
    """The HTTP face for `args`, or `NetworkRefusal` when it must not start (nothing is bound yet)."""
    from providers import Secret

    token, source = _token(args, environ)
    loopback = is_loopback(args.host)
    if token is None and not loopback:
        raise NetworkRefusal(
            f"refusing to serve on {args.host}:{args.port} without a bearer token: anyone who can reach "
            f"the port could spend the configured API keys. Set {TOKEN_ENV} or pass --token-file PATH "
            f"(a file only you can read; make a token with: {MAKE_TOKEN}), or bind --host 127.0.0.1"
        )
    return NetworkOptions(
        host=args.host,
        port=args.port,
        policy=HostPolicy.for_bind(args.host, args.allowed_host, args.allowed_origin),
        token=Secret(token) if token else None,
        token_source=source,
        rate_limit=_rate_limit(args, loopback),
        trust_proxy=args.trust_proxy,
        stateless=args.stateless,
    )

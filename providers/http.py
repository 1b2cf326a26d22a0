"""HTTP plumbing shared by every HTTP adapter: sending, status mapping, `Retry-After`, JSON decoding.

One place maps the wire onto `providers.errors`, so every adapter classifies a 429 or a 503 the same
way and no adapter can forget to hide its key: messages carry the provider name and status only.

One place also decides where a request may go: `send` follows a redirect only within the origin
(scheme, host, port) of the configured endpoint. httpx itself strips only `Authorization` when a
redirect leaves the origin, so `X-Subscription-Token`, `x-api-key`, `x-goog-api-key` and the like would
follow the redirect to whoever it names; and SerpAPI's key rides in the query. A cross-origin redirect
is therefore never sent at all: it is an `Unavailable` naming the target's origin, nothing more.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from providers.errors import BadRequest, BadResponse, ProviderError, RateLimited, Unavailable

if TYPE_CHECKING:
    from providers.base import ProviderSpec

MAX_REDIRECTS = 5


def new_client(max_connections: int = 32) -> httpx.AsyncClient:
    """A connection pool of `max_connections`; per-request timeouts come from each provider's spec.

    The client follows no redirect by itself (`send` does, within the origin). 32 is the size of the
    pool all providers once shared, for callers that still pass one client to every adapter.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(max_connections, 8))
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(20.0))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`; httpx drops a scheme's default port, so `:443` equals no port."""
    return url.scheme, url.host, url.port


def _pool_timeout(spec: ProviderSpec) -> float:
    """How long a request waits for a free connection of the provider's pool: never longer than the
    provider's own timeout, so a saturated pool is reported as such, not as a slow provider."""
    return min(spec.pool_timeout_s, spec.timeout_s)


async def send(
    spec: ProviderSpec,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    stream: bool = False,
    redact: Sequence[str] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, following redirects only within its origin; raises httpx's errors as they are
    (see `transport_error`) and an `Unavailable` for a redirect that would leave the origin.

    With `stream=True` the caller must close the response. `redact` lists the secrets sent with the
    request: the refusal names the target's origin, and the server that was sent a key could put it
    in the host it redirects to.
    """
    timeout = httpx.Timeout(spec.timeout_s, pool=_pool_timeout(spec))
    request = client.build_request(method, url, timeout=timeout, **kwargs)
    home = _origin(request.url)
    response = await client.send(request, stream=stream, follow_redirects=False)
    hops = 0
    while response.next_request is not None:
        target, status = response.next_request, response.status_code
        await response.aclose()
        if _origin(target.url) != home:
            where = f"{target.url.scheme}://{target.url.netloc.decode('ascii', 'replace')}"
            for secret in redact:  # ignoring case: httpx lower-cases the host
                if secret:
                    where = re.sub(re.escape(secret), "***", where, flags=re.IGNORECASE)
            raise Unavailable(
                spec.name,
                f"refused an HTTP {status} redirect to another origin ({where}): credentials go only to "
                "the origin of the configured endpoint",
            )
        hops += 1
        if hops > MAX_REDIRECTS:
            raise Unavailable(spec.name, f"more than {MAX_REDIRECTS} redirects")
        response = await client.send(target, stream=stream, follow_redirects=False)
    return response


def transport_error(spec: ProviderSpec, url: str, exc: httpx.HTTPError | httpx.InvalidURL) -> ProviderError:
    """The project's error for a request that got no response. Waiting for a connection of the
    provider's own pool is told apart from a slow provider: the router should hear "busy here", and
    the operator that `max_connections` may be too small."""
    if isinstance(exc, httpx.PoolTimeout):
        return Unavailable(
            spec.name,
            f"connection pool exhausted ({spec.max_connections} connections busy, "
            f"none free within {_pool_timeout(spec):g} s)",
        )
    if isinstance(exc, httpx.TimeoutException):
        return Unavailable(spec.name, f"timed out after {spec.timeout_s:g} s")
    if isinstance(exc, httpx.InvalidURL):
        return BadRequest(spec.name, "invalid endpoint URL (check `base_url`)")
    return Unavailable(spec.name, f"cannot reach {_host(url)}: {type(exc).__name__}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date; both become seconds from now (≥ 0)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf", "nan" and "1e400" parse as floats but say nothing usable
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_parts(response: httpx.Response, redact: Sequence[str] = ()) -> tuple[str, str]:
    """(message, codes) of an error body: the provider's own short message, key-free, and the
    `error.code`/`error.type` words where OpenAI-style APIs signal `insufficient_quota`.

    Some servers echo the key they rejected, so every string in `redact` is masked (before truncating).
    """
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to decode
        return "", ""
    err = body.get("error", body) if isinstance(body, dict) else None
    msg: Any = None
    codes = ""
    if isinstance(err, dict):
        msg = err.get("message") or err.get("info") or err.get("code")
        codes = " ".join(v for v in (err.get("code"), err.get("type")) if isinstance(v, str))
    elif isinstance(err, str):
        msg = err
    if not isinstance(msg, str):
        return "", codes
    for secret in redact:
        if secret:
            msg = msg.replace(secret, "***")
    return msg[:200], codes


def check_status(provider: str, response: httpx.Response, *, redact: Sequence[str] = ()) -> None:
    """Raise the project's error type for a non-2xx response; `redact` lists secrets to mask."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail, codes = error_parts(response, redact)
    text = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        if "quota" in detail.lower() or "insufficient_quota" in codes:
            raise Unavailable(provider, text)
        raise RateLimited(provider, text, parse_retry_after(response.headers.get("retry-after")))
    if status in (401, 403):
        raise BadRequest(provider, f"{text} (check the API key named in the config)")
    if status == 402:
        raise Unavailable(provider, f"{text} (credits exhausted)")
    if status >= 500 or status in (408, 409):
        raise Unavailable(provider, text)
    raise BadRequest(provider, text)


def json_body(provider: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: valid JSON nested too deeply to decode
        pass
    # raised outside the handler: the decoder's error would stay attached as `__context__`, holding the
    # whole body, which may echo a key
    kind = response.headers.get("content-type", "unknown content type")
    raise BadResponse(provider, f"HTTP {response.status_code} body is not JSON ({kind})")


async def request_json(
    spec: ProviderSpec,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    redact: Sequence[str] = (),
    screen: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Send one request (see `send`) and return its decoded JSON body, or raise a `ProviderError`.

    `redact` lists secrets sent with the request (API keys) that must not appear in an error message;
    `screen` may raise for provider-specific statuses before the common mapping.
    """
    failure: ProviderError | None = None
    try:
        response = await send(spec, client, method, url, redact=redact, **kwargs)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        failure = transport_error(spec, url, exc)
    if failure is not None:
        # raised outside the handler, so no `__context__` keeps the httpx request alive: its URL may
        # carry the key (SerpAPI sends it as a query parameter)
        raise failure
    if screen is not None:
        screen(response)
    check_status(spec.name, response, redact=redact)
    return json_body(spec.name, response)


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "the endpoint"
    except httpx.InvalidURL:
        return "the endpoint"


def require(provider: str, condition: bool, what: str) -> None:
    """Assert a shape fact of a parsed body; a violation is a `BadResponse`."""
    if not condition:
        raise BadResponse(provider, f"unexpected response: {what}")


__all__ = [
    "ProviderError",
    "check_status",
    "json_body",
    "new_client",
    "parse_retry_after",
    "request_json",
    "send",
    "transport_error",
]

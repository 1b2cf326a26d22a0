"""HTTP plumbing shared by every HTTP adapter: sending, status mapping, `Retry-After`, JSON decoding.

One place maps the wire onto `providers.errors`, so every adapter classifies a 429 or a 503 the same
way and no adapter can forget to hide its key: messages carry the provider name and status only.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from providers.errors import BadRequest, BadResponse, ProviderError, RateLimited, Unavailable

DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=8)


def new_client() -> httpx.AsyncClient:
    """The process-wide pool; per-request timeouts come from each provider's spec."""
    return httpx.AsyncClient(limits=DEFAULT_LIMITS, follow_redirects=True, timeout=httpx.Timeout(20.0))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date; both become seconds from now (≥ 0)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_detail(response: httpx.Response) -> str:
    """A short, key-free description of an error body: the provider's own message when it has one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("info") or err.get("code")
            if isinstance(msg, str):
                return msg[:200]
        elif isinstance(err, str):
            return err[:200]
    return ""


def check_status(provider: str, response: httpx.Response) -> None:
    """Raise the project's error type for a non-2xx response."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _error_detail(response)
    text = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        if "insufficient_quota" in detail or "quota" in detail.lower():
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
    except ValueError:
        kind = response.headers.get("content-type", "unknown content type")
        raise BadResponse(provider, f"HTTP {response.status_code} body is not JSON ({kind})") from None


async def request_json(
    provider: str, client: httpx.AsyncClient, method: str, url: str, *, timeout: float, **kwargs: Any
) -> Any:
    """Send one request and return its decoded JSON body, or raise a `ProviderError`."""
    try:
        response = await client.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise Unavailable(provider, f"timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise Unavailable(provider, f"cannot reach {httpx.URL(url).host}: {type(exc).__name__}") from None
    check_status(provider, response)
    return json_body(provider, response)


def require(provider: str, condition: bool, what: str) -> None:
    """Assert a shape fact of a parsed body; a violation is a `BadResponse`."""
    if not condition:
        raise BadResponse(provider, f"unexpected response: {what}")


__all__ = ["ProviderError", "check_status", "json_body", "new_client", "parse_retry_after", "request_json"]

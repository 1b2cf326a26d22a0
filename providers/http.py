"""HTTP plumbing shared by every HTTP adapter: sending, status mapping, `Retry-After`, JSON decoding.

One place maps the wire onto `providers.errors`, so every adapter classifies a 429 or a 503 the same
way and no adapter can forget to hide its key: messages carry the provider name and status only.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Sequence
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
    provider: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    redact: Sequence[str] = (),
    screen: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Send one request and return its decoded JSON body, or raise a `ProviderError`.

    `redact` lists secrets sent with the request (API keys) that must not appear in an error message;
    `screen` may raise for provider-specific statuses before the common mapping.
    """
    failure: ProviderError | None = None
    try:
        response = await client.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        failure = Unavailable(provider, f"timed out after {timeout:g} s")
    except httpx.InvalidURL:
        failure = BadRequest(provider, "invalid endpoint URL (check `base_url`)")
    except httpx.HTTPError as exc:
        failure = Unavailable(provider, f"cannot reach {_host(url)}: {type(exc).__name__}")
    if failure is not None:
        # raised outside the handler, so no `__context__` keeps the httpx request alive: its URL may
        # carry the key (SerpAPI sends it as a query parameter)
        raise failure
    if screen is not None:
        screen(response)
    check_status(provider, response, redact=redact)
    return json_body(provider, response)


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "the endpoint"
    except httpx.InvalidURL:
        return "the endpoint"


def require(provider: str, condition: bool, what: str) -> None:
    """Assert a shape fact of a parsed body; a violation is a `BadResponse`."""
    if not condition:
        raise BadResponse(provider, f"unexpected response: {what}")


__all__ = ["ProviderError", "check_status", "json_body", "new_client", "parse_retry_after", "request_json"]

"""The four ways a provider call can fail, as the router needs to tell them apart.

The router treats them differently: a `RateLimited` arm cools down for `retry_after` seconds, an
`Unavailable` arm is tried again later, a `BadResponse` counts as a failure of that arm, and a
`BadRequest` says the request itself is wrong (retrying it unchanged elsewhere may still help when
providers differ in what they accept). Messages name the provider and the status, never a key.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class: `provider` is the configured arm name, `message` is safe to show to a user."""

    kind = "error"

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class RateLimited(ProviderError):
    """HTTP 429 or a provider's own rate-limit signal; `retry_after` in seconds when known."""

    kind = "rate_limited"

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class Unavailable(ProviderError):
    """Network failure, timeout, 5xx, missing dependency or exhausted quota: the arm cannot serve now."""

    kind = "unavailable"


class BadResponse(ProviderError):
    """The provider answered, but with a body that does not parse into the expected shape."""

    kind = "bad_response"


class BadRequest(ProviderError):
    """The provider rejected the request (4xx other than 429), or the configuration is wrong (401/403)."""

    kind = "bad_request"

"""Anthropic Messages API: `POST {base}/v1/messages`.

The system prompt is the top-level `system` field, not a message; the reply is a list of content blocks
whose `text` blocks are concatenated (tool-use and thinking blocks are skipped). `stop_reason` is mapped
onto the OpenAI vocabulary the other adapters use: `end_turn`/`stop_sequence` → "stop",
`max_tokens` → "length", `refusal` → "safety"; any other reason is passed through unchanged.

Usage is `input_tokens`/`output_tokens`; the adapter sends no `cache_control`, so the cache token counts
are not added (they would be billed at other prices anyway).
"""

from __future__ import annotations

from typing import Any

from providers.base import Adapter
from providers.errors import BadRequest, RateLimited, Unavailable
from providers.http import request_json, require
from providers.llm.cost import completion_cost
from providers.text import utf8_safe
from providers.types import Completion, CompletionRequest, Usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "safety"}


class AnthropicChat(Adapter[CompletionRequest, Completion]):
    tool = "llm_complete"
    type = "anthropic"

    async def call(self, request: CompletionRequest) -> Completion:
        if not self.spec.model:
            raise BadRequest(self.name, "no `model` configured for this provider")
        key = self.spec.api_key.reveal() if self.spec.api_key else ""
        headers = {
            "Accept": "application/json",
            "anthropic-version": str(self.spec.options.get("anthropic_version", API_VERSION)),
        }
        if key:
            headers["x-api-key"] = key
        system = [m.content for m in request.messages if m.role == "system"]
        payload: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": request.max_tokens,
            "messages": [
                {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
            ],
            "temperature": request.temperature,
        }
        if system:
            payload["system"] = "\n\n".join(system)
        base = (self.spec.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/v1")
        body = await request_json(
            self.spec,
            self.http,
            "POST",
            f"{base}/v1/messages",
            json=payload,
            headers=headers,
            redact=self._redact(),
        )
        return self.parse(body)

    def _redact(self) -> tuple[str, ...]:
        return (self.spec.api_key.reveal(),) if self.spec.api_key else ()

    def parse(self, body: Any) -> Completion:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        if body.get("type") == "error":  # an error body served with HTTP 200 (some gateways do)
            self._raise_error_body(body.get("error"))
        content = body.get("content")
        require(self.name, isinstance(content, list), "no `content` list")
        parts: list[str] = []
        for block in content:
            require(self.name, isinstance(block, dict), "content block is not an object")
            if block.get("type") == "text":
                text = block.get("text")
                require(self.name, isinstance(text, str), "text block without `text`")
                parts.append(text)
        usage_body = body.get("usage") or {}
        require(self.name, isinstance(usage_body, dict), "`usage` is not an object")
        usage = Usage(
            prompt_tokens=self._count(usage_body.get("input_tokens", 0)),
            completion_tokens=self._count(usage_body.get("output_tokens", 0)),
        )
        model = body.get("model")
        stop = body.get("stop_reason")
        return Completion(
            text=utf8_safe("".join(parts)),
            model=model if isinstance(model, str) and model else str(self.spec.model),
            usage=usage,
            cost_usd=completion_cost(self.spec, usage),
            finish_reason=_FINISH.get(stop, stop) if isinstance(stop, str) else None,
        )

    def _count(self, value: Any) -> int:
        # `type() is int` rejects JSON booleans; the bound keeps the cost a finite float
        require(
            self.name, type(value) is int and 0 <= value < 2**53, "token counts are not non-negative integers"
        )
        return value

    def _raise_error_body(self, error: Any) -> None:
        kind = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        text = message if isinstance(message, str) else ""
        for secret in self._redact():
            if secret:
                text = text.replace(secret, "***")
        detail = f"{kind if isinstance(kind, str) else 'error'}" + (f": {text[:200]}" if text else "")
        if kind == "rate_limit_error":
            raise RateLimited(self.name, detail)
        if kind in ("overloaded_error", "api_error"):
            raise Unavailable(self.name, detail)
        raise BadRequest(self.name, detail)

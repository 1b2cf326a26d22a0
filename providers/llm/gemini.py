"""Google Gemini `generateContent`: `POST {base}/v1beta/models/{model}:generateContent`.

The key goes in the `x-goog-api-key` header, never in the URL (URLs end up in logs). System messages
become `systemInstruction`, the assistant role is `model`. Text is `candidates[0].content.parts[].text`
with thought parts skipped; completion tokens are `candidatesTokenCount` plus `thoughtsTokenCount`
(thinking is billed as output).

A 429 `RESOURCE_EXHAUSTED` is always `RateLimited` (Gemini words its per-minute limits as "exceeded your
current quota"), retrying after `Retry-After` or else the `google.rpc.RetryInfo.retryDelay` ("12s").

A refusal is a quality signal, not an outage: a prompt blocked by `promptFeedback.blockReason`, or a
candidate stopped by a safety filter (`finishReason` SAFETY and its kin), returns a `Completion` with
empty text and `finish_reason="safety"` instead of raising, so the arm is not cooled down or counted as
failing. Other finish reasons use the OpenAI vocabulary: STOP → "stop", MAX_TOKENS → "length", anything
else lower-cased ("recitation", "other").
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any
from urllib.parse import quote

import httpx

from providers.base import Adapter
from providers.errors import BadRequest, RateLimited
from providers.http import error_parts, parse_retry_after, request_json, require
from providers.llm.cost import completion_cost
from providers.text import utf8_safe
from providers.types import Completion, CompletionRequest, Usage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
_SAFETY = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"}
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)s\s*$")


def retry_delay(body: Any) -> float | None:
    """Seconds of the `google.rpc.RetryInfo` detail of an error body (a JSON Duration such as "12.5s")."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind, delay = detail.get("@type"), detail.get("retryDelay")
        if isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo") and isinstance(delay, str):
            match = _DURATION.match(delay)
            if match:
                seconds = float(match.group(1))
                return seconds if math.isfinite(seconds) else None
    return None


class GeminiChat(Adapter[CompletionRequest, Completion]):
    tool = "llm_complete"
    type = "gemini"

    def url(self) -> str:
        base = (self.spec.base_url or DEFAULT_BASE_URL).rstrip("/")
        if not base.endswith(("/v1beta", "/v1", "/v1alpha")):
            base += "/v1beta"
        model = str(self.spec.model).removeprefix("models/")
        return f"{base}/models/{quote(model, safe='')}:generateContent"

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
                for m in request.messages
                if m.role != "system"
            ],
            "generationConfig": {"maxOutputTokens": request.max_tokens, "temperature": request.temperature},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        return body

    async def call(self, request: CompletionRequest) -> Completion:
        if not self.spec.model:
            raise BadRequest(self.name, "no `model` configured for this provider")
        key = self.spec.api_key.reveal() if self.spec.api_key else ""
        headers = {"Accept": "application/json"}
        if key:
            headers["x-goog-api-key"] = key
        url = self.url()
        redact = (key,) if key else ()

        def screen(response: httpx.Response) -> None:
            # Gemini's per-minute 429 says "exceeded your current quota": still a rate limit, not an outage
            if response.status_code == 429:
                detail, _ = error_parts(response, redact)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is None:
                    with contextlib.suppress(ValueError, RecursionError):
                        retry_after = retry_delay(response.json())
                raise RateLimited(self.name, "HTTP 429" + (f": {detail}" if detail else ""), retry_after)

        body = await request_json(
            self.spec,
            self.http,
            "POST",
            url,
            json=self.payload(request),
            headers=headers,
            redact=redact,
            screen=screen,
        )
        return self.parse(body)

    def parse(self, body: Any) -> Completion:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        usage = self._usage(body.get("usageMetadata"))
        model = body.get("modelVersion")
        model = model if isinstance(model, str) and model else str(self.spec.model)
        feedback = body.get("promptFeedback")
        require(
            self.name, feedback is None or isinstance(feedback, dict), "`promptFeedback` is not an object"
        )
        if feedback and feedback.get("blockReason"):
            return self._completion("", model, usage, "safety")
        candidates = body.get("candidates")
        require(self.name, isinstance(candidates, list) and len(candidates) > 0, "no `candidates`")
        candidate = candidates[0]
        require(self.name, isinstance(candidate, dict), "candidate is not an object")
        reason = candidate.get("finishReason")
        reason = reason if isinstance(reason, str) else None
        if reason in _SAFETY:
            return self._completion("", model, usage, "safety")
        content = candidate.get("content") or {}
        require(self.name, isinstance(content, dict), "candidate `content` is not an object")
        parts = content.get("parts") or []
        require(self.name, isinstance(parts, list), "`content.parts` is not a list")
        texts: list[str] = []
        for part in parts:
            require(self.name, isinstance(part, dict), "part is not an object")
            if part.get("thought") is True or "text" not in part:
                continue
            require(self.name, isinstance(part["text"], str), "part `text` is not text")
            texts.append(part["text"])
        finish = _FINISH.get(reason, reason.lower()) if reason else None
        return self._completion("".join(texts), model, usage, finish)

    def _completion(self, text: str, model: str, usage: Usage, finish: str | None) -> Completion:
        return Completion(
            text=utf8_safe(text),
            model=model,
            usage=usage,
            cost_usd=completion_cost(self.spec, usage),
            finish_reason=finish,
        )

    def _usage(self, meta: Any) -> Usage:
        meta = meta or {}
        require(self.name, isinstance(meta, dict), "`usageMetadata` is not an object")
        counts = [meta.get(k, 0) for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")]
        require(
            self.name,
            # `type() is int` rejects JSON booleans; the bound keeps the cost a finite float
            all(type(c) is int and 0 <= c < 2**52 for c in counts),
            "token counts are not non-negative integers",
        )
        return Usage(prompt_tokens=counts[0], completion_tokens=counts[1] + counts[2])

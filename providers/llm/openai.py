"""Any OpenAI-compatible `/chat/completions` endpoint.

OpenAI, OpenRouter, Groq, Together, vLLM, a llama.cpp server, Ollama `/v1`, LM Studio.

With `options.stream = true` the answer is read as SSE (`data: {chunk}` lines up to `data: [DONE]`),
asking for a final usage chunk with `stream_options.include_usage`. Servers that send none anyway
(`llama_cpp.server` 0.3.x, measured) get their usage *estimated* as ceil(characters / 4) for the prompt
(all message contents) and for the answer, and the cost is computed from that estimate; `finish_reason`
stays what the server sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import httpx

from providers.base import Adapter
from providers.errors import BadRequest, BadResponse, ProviderError, Unavailable
from providers.http import check_status, request_json, require, send, transport_error
from providers.llm.cost import completion_cost
from providers.text import utf8_safe
from providers.types import Completion, CompletionRequest, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_NOT_JSON = object()


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return math.ceil(len(text) / 4)


class OpenAIChat(Adapter[CompletionRequest, Completion]):
    tool = "llm_complete"
    type = "openai"

    async def call(self, request: CompletionRequest) -> Completion:
        if not self.spec.model:
            raise BadRequest(self.name, "no `model` configured for this provider")
        headers = {"Accept": "application/json"}
        if self.spec.api_key:
            headers["Authorization"] = f"Bearer {self.spec.api_key.reveal()}"
        payload = {
            "model": self.spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        base = (self.spec.base_url or DEFAULT_BASE_URL).rstrip("/")
        if self.spec.options.get("stream") is True:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
            headers["Accept"] = "text/event-stream"
            return await self._call_stream(f"{base}/chat/completions", payload, headers, request)
        body = await request_json(
            self.spec,
            self.http,
            "POST",
            f"{base}/chat/completions",
            json=payload,
            headers=headers,
            redact=(self.spec.api_key.reveal(),) if self.spec.api_key else (),
        )
        return self.parse(body)

    def parse(self, body: Any) -> Completion:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        choices = body.get("choices")
        require(self.name, isinstance(choices, list) and len(choices) > 0, "no `choices`")
        choice = choices[0]
        require(self.name, isinstance(choice, dict), "choice is not an object")
        message = choice.get("message")
        require(self.name, isinstance(message, dict), "choice without `message`")
        content = message.get("content")
        require(self.name, content is None or isinstance(content, str), "`message.content` is not text")
        usage = self._usage(body.get("usage") or {})
        model = body.get("model")
        return Completion(
            text=utf8_safe(content or ""),
            model=model if isinstance(model, str) and model else str(self.spec.model),
            usage=usage,
            cost_usd=completion_cost(self.spec, usage),
            finish_reason=choice.get("finish_reason")
            if isinstance(choice.get("finish_reason"), str)
            else None,
        )

    async def _call_stream(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], request: CompletionRequest
    ) -> Completion:
        redact = (self.spec.api_key.reveal(),) if self.spec.api_key else ()
        lines: list[str] = []
        failure: ProviderError | None = None
        started = False  # a 2xx stream began: the provider is generating (and billing) from here on
        try:
            response = await send(
                self.spec, self.http, "POST", url, stream=True, json=payload, headers=headers, redact=redact
            )
            try:
                if not 200 <= response.status_code < 300:
                    await response.aread()
                    check_status(self.name, response, redact=redact)
                started = True
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.strip() == "data: [DONE]":
                        break
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if started and not isinstance(exc, httpx.TimeoutException):  # reached, then cut off
                broken = f"stream broken after {len(lines)} line(s): {type(exc).__name__}"
                failure = BadResponse(self.name, broken)
            else:
                failure = transport_error(self.spec, url, exc)
        if failure is not None:  # raised outside the handler: no `__context__` holds the request
            raise failure
        return self.parse_stream(lines, request)

    def parse_stream(self, lines: Iterable[str], request: CompletionRequest) -> Completion:
        """The completion of the SSE lines of a streamed answer (see the module docstring)."""
        parts: list[str] = []
        finish: str | None = None
        model: str | None = None
        usage: Usage | None = None
        done = False
        for raw in lines:
            line = raw.strip()
            if not line.startswith("data:"):
                continue  # blank separators, `: keep-alive` comments, `event:` and `id:` fields
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except (ValueError, RecursionError):
                chunk = _NOT_JSON
            if chunk is _NOT_JSON:  # raised outside the handler: the decode error holds the line
                raise BadResponse(self.name, "stream chunk is not JSON")
            require(self.name, isinstance(chunk, dict), "stream chunk is not an object")
            if "error" in chunk:
                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else error
                text = message if isinstance(message, str) else "error in stream"
                if self.spec.api_key:
                    text = text.replace(self.spec.api_key.reveal(), "***")
                raise Unavailable(self.name, f"stream error: {text[:200]}")
            if isinstance(chunk.get("model"), str) and chunk["model"]:
                model = chunk["model"]
            if chunk.get("usage") is not None:
                usage = self._usage(chunk["usage"])
            choices = chunk.get("choices") or []
            require(self.name, isinstance(choices, list), "`choices` is not a list")
            if not choices:
                continue
            choice = choices[0]
            require(self.name, isinstance(choice, dict), "choice is not an object")
            delta = choice.get("delta") or {}
            require(self.name, isinstance(delta, dict), "choice without `delta` object")
            content = delta.get("content")
            require(self.name, content is None or isinstance(content, str), "`delta.content` is not text")
            if content:
                parts.append(content)
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
        require(self.name, done or finish is not None, "stream ended before `[DONE]`")
        text = utf8_safe("".join(parts))
        if usage is None:  # no usage chunk: estimate (see the module docstring)
            usage = Usage(
                prompt_tokens=estimate_tokens("".join(m.content for m in request.messages)),
                completion_tokens=estimate_tokens(text),
            )
        return Completion(
            text=text,
            model=model or str(self.spec.model),
            usage=usage,
            cost_usd=completion_cost(self.spec, usage),
            finish_reason=finish,
        )

    def _usage(self, usage_body: Any) -> Usage:
        require(self.name, isinstance(usage_body, dict), "`usage` is not an object")
        prompt_tokens = usage_body.get("prompt_tokens", 0)
        completion_tokens = usage_body.get("completion_tokens", 0)
        require(
            self.name,
            # `type() is int` rejects JSON booleans; the bound keeps the cost a finite float
            type(prompt_tokens) is int
            and type(completion_tokens) is int
            and 0 <= prompt_tokens < 2**53
            and 0 <= completion_tokens < 2**53,
            "token counts are not non-negative integers",
        )
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

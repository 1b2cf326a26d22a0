"""Ollama's native chat API: `POST {base}/api/chat` with `stream: true`, read as NDJSON.

Each line is one JSON object; `message.content` pieces are concatenated and the final `done: true`
object carries `prompt_eval_count`/`eval_count` (usage) and `done_reason` ("stop", "length", "load").
An `{"error": "..."}` line after a 200 means the model runner failed mid-answer: `Unavailable`.
HTTP errors (`{"error": "model 'x' not found"}` with 404, 400, 500) map as for every HTTP adapter.
Local models cost 0 unless `input_cost_per_token`/`output_cost_per_token` are configured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from providers.base import Adapter
from providers.errors import BadRequest, BadResponse, ProviderError, Unavailable
from providers.http import check_status, require, send, transport_error
from providers.llm.cost import completion_cost
from providers.text import utf8_safe
from providers.types import Completion, CompletionRequest, Usage

DEFAULT_BASE_URL = "http://localhost:11434"
_NOT_JSON = object()


class _Stream:
    """Accumulates NDJSON chat chunks until the `done` object; raises `ProviderError`s only."""

    def __init__(self, adapter: OllamaChat) -> None:
        self.adapter = adapter
        key = adapter.spec.api_key.reveal() if adapter.spec.api_key else ""
        self.redact = (key,) if key else ()
        self.parts: list[str] = []
        self.result: Completion | None = None

    def feed(self, line: str) -> bool:
        """Take one line; True once the final object has been read."""
        name = self.adapter.name
        line = line.strip()
        if not line:
            return False
        try:
            chunk = json.loads(line)
        except (ValueError, RecursionError):
            chunk = _NOT_JSON
        if chunk is _NOT_JSON:  # raised outside the handler: the decode error holds the line as `doc`
            raise BadResponse(name, "stream line is not JSON")
        self.feed_object(chunk)
        return self.result is not None

    def feed_object(self, chunk: Any) -> None:
        name = self.adapter.name
        require(name, isinstance(chunk, dict), "stream line is not a JSON object")
        if "error" in chunk:
            error = chunk["error"]
            text = error if isinstance(error, str) else "error in stream"
            for secret in self.redact:
                if secret:
                    text = text.replace(secret, "***")
            raise Unavailable(name, f"stream error: {text[:200]}")
        message = chunk.get("message")
        if message is not None:
            require(name, isinstance(message, dict), "`message` is not an object")
            content = message.get("content")
            require(name, content is None or isinstance(content, str), "`message.content` is not text")
            if content:
                self.parts.append(content)
        if chunk.get("done") is True:
            counts = [chunk.get("prompt_eval_count", 0), chunk.get("eval_count", 0)]
            require(
                name,
                # `type() is int` rejects JSON booleans; the bound keeps the cost a finite float
                all(type(c) is int and 0 <= c < 2**53 for c in counts),
                "token counts are not non-negative integers",
            )
            usage = Usage(prompt_tokens=counts[0], completion_tokens=counts[1])
            model = chunk.get("model")
            reason = chunk.get("done_reason")
            self.result = Completion(
                text=utf8_safe("".join(self.parts)),
                model=model if isinstance(model, str) and model else str(self.adapter.spec.model),
                usage=usage,
                cost_usd=completion_cost(self.adapter.spec, usage),
                finish_reason=reason if isinstance(reason, str) else None,
            )

    def finish(self) -> Completion:
        if self.result is None:
            raise BadResponse(self.adapter.name, "unexpected response: stream ended before `done`")
        return self.result


class OllamaChat(Adapter[CompletionRequest, Completion]):
    tool = "llm_complete"
    type = "ollama"

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        return {
            "model": self.spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "options": {"temperature": request.temperature, "num_predict": request.max_tokens},
        }

    async def call(self, request: CompletionRequest) -> Completion:
        if not self.spec.model:
            raise BadRequest(self.name, "no `model` configured for this provider")
        key = self.spec.api_key.reveal() if self.spec.api_key else ""
        redact = (key,) if key else ()
        headers = {"Accept": "application/x-ndjson"}
        if key:  # Ollama itself needs none; a proxy in front of it may
            headers["Authorization"] = f"Bearer {key}"
        base = (self.spec.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/api")
        url = f"{base}/api/chat"
        stream = _Stream(self)
        failure: ProviderError | None = None
        try:
            response = await send(
                self.spec,
                self.http,
                "POST",
                url,
                stream=True,
                json=self.payload(request),
                headers=headers,
                redact=redact,
            )
            try:
                if not 200 <= response.status_code < 300:
                    await response.aread()
                    check_status(self.name, response, redact=redact)
                async for line in response.aiter_lines():
                    if stream.feed(line):
                        break
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            failure = transport_error(self.spec, url, exc)
        if failure is not None:  # raised outside the handler: no `__context__` holds the request
            raise failure
        return stream.finish()

    def parse(self, chunks: Iterable[Any]) -> Completion:
        """The completion of already-decoded stream objects (a non-streamed answer is one object)."""
        stream = _Stream(self)
        for chunk in chunks:
            stream.feed_object(chunk)
            if stream.result is not None:
                break
        return stream.finish()

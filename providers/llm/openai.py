"""Any OpenAI-compatible `/chat/completions` endpoint.

OpenAI, OpenRouter, Groq, Together, vLLM, a llama.cpp server, Ollama `/v1`, LM Studio.
"""

from __future__ import annotations

from typing import Any

from providers.base import Adapter
from providers.errors import BadRequest
from providers.http import request_json, require
from providers.llm.cost import completion_cost
from providers.text import utf8_safe
from providers.types import Completion, CompletionRequest, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"


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
        body = await request_json(
            self.name,
            self.env.http,
            "POST",
            f"{base}/chat/completions",
            json=payload,
            headers=headers,
            timeout=self.spec.timeout_s,
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
        usage_body = body.get("usage") or {}
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
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
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

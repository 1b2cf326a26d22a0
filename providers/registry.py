"""Config `type` → adapter class. Adapters register by being listed here, so the table is the index."""

from __future__ import annotations

import importlib

from providers.base import Adapter, ProviderEnv, ProviderSpec

# type -> "module:Class"; imported on first use so a missing optional dependency only affects its arm.
_ADAPTERS: dict[str, str] = {
    "wikipedia": "providers.search.wikipedia:WikipediaSearch",
    "ddgs": "providers.search.ddgs:DuckDuckGoSearch",
    "bm25": "providers.retrieve.local:BM25Retriever",
    "dense": "providers.retrieve.local:DenseRetriever",
    "hybrid": "providers.retrieve.local:HybridRetriever",
    "openai": "providers.llm.openai:OpenAIChat",
    "llamacpp": "providers.llm.llamacpp:LlamaCppChat",
    # hosted web search APIs
    "brave": "providers.search.brave:BraveSearch",
    "tavily": "providers.search.tavily:TavilySearch",
    "exa": "providers.search.exa:ExaSearch",
    "serper": "providers.search.serper:SerperSearch",
    "serpapi": "providers.search.serpapi:SerpApiSearch",
    "searxng": "providers.search.searxng:SearxngSearch",
    "jina": "providers.search.jina:JinaSearch",
    "kagi": "providers.search.kagi:KagiSearch",
    # hosted and local LLM APIs
    "anthropic": "providers.llm.anthropic:AnthropicChat",
    "gemini": "providers.llm.gemini:GeminiChat",
    "ollama": "providers.llm.ollama:OllamaChat",
    # remote retrieval stores
    "chroma": "providers.retrieve.chroma:ChromaRetriever",
    "qdrant": "providers.retrieve.qdrant:QdrantRetriever",
    "elasticsearch": "providers.retrieve.elasticsearch:ElasticsearchRetriever",
    "opensearch": "providers.retrieve.elasticsearch:OpenSearchRetriever",
    "pgvector": "providers.retrieve.pgvector:PgvectorRetriever",
}


def known_types() -> list[str]:
    return sorted(_ADAPTERS)


def adapter_class(type_: str) -> type[Adapter]:
    try:
        target = _ADAPTERS[type_]
    except KeyError:
        raise KeyError(f"unknown provider type {type_!r}; known types: {', '.join(known_types())}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def create_adapter(spec: ProviderSpec, env: ProviderEnv) -> Adapter:
    return adapter_class(spec.type)(spec, env)

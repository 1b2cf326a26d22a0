"""Hosted web-search adapters on the wire: recorded answers, in each provider's documented JSON, served by
respx to the real adapters (Brave, Tavily, Exa, Serper, SerpAPI, SearXNG, Jina, Kagi).

Every adapter gets the same battery (request built, success with HTML snippets, empty answer, 401, 429
with `Retry-After`, 5xx, malformed and HTML bodies, a missing key, a 401 that echoes the key); the specific
signals (Tavily 432/433, SerpAPI's `error` on 200, SearXNG's `unresponsive_engines`, Kagi's auth schemes and
v1, freshness filters) have their own tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from providers import Adapter, BadRequest, BadResponse, ProviderEnv, RateLimited, Unavailable
from providers.types import SearchHit, SearchRequest
from tests.providers_support import FAKE_KEY, USER_AGENT, adapter, all_text

SEARXNG_BASE = "http://127.0.0.1:8888"


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


# ------------------------------------------------------------------------------------ recorded answers

# GET https://api.search.brave.com/res/v1/web/search?q=python+asyncio&count=3 (decorations on)
BRAVE_OK = {
    "query": {
        "original": "python asyncio",
        "show_strict_warning": False,
        "is_navigational": False,
        "spellcheck_off": True,
        "country": "us",
        "more_results_available": True,
    },
    "mixed": {
        "type": "mixed",
        "main": [{"type": "web", "index": 0, "all": False}, {"type": "web", "index": 1, "all": False}],
        "top": [],
        "side": [],
    },
    "type": "search",
    "web": {
        "type": "search",
        "results": [
            {
                "title": "asyncio — Asynchronous I/O — Python 3.13.1 documentation",
                "url": "https://docs.python.org/3/library/asyncio.html",
                "is_source_local": False,
                "is_source_both": False,
                "description": "<strong>asyncio</strong> is a library to write concurrent code using the "
                "<strong>async</strong>/await syntax. <strong>asyncio</strong> is used as a foundation for "
                "multiple <strong>Python</strong> asynchronous frameworks &amp; libraries.",
                "page_age": "2024-12-03T08:12:45",
                "profile": {
                    "name": "Python documentation",
                    "url": "https://docs.python.org/3/library/asyncio.html",
                    "long_name": "docs.python.org",
                    "img": "https://imgs.search.brave.com/abc/docs.python.org/",
                },
                "language": "en",
                "family_friendly": True,
                "type": "search_result",
                "subtype": "generic",
                "is_live": False,
                "meta_url": {
                    "scheme": "https",
                    "netloc": "docs.python.org",
                    "hostname": "docs.python.org",
                    "favicon": "https://imgs.search.brave.com/fav/",
                    "path": "› 3  › library  › asyncio.html",
                },
                "age": "December 3, 2024",
                "extra_snippets": ["Hello World!", "asyncio provides a set of high-level APIs"],
            },
            {
                "title": "Real Python: Async IO in <strong>Python</strong>",
                "url": "https://realpython.com/async-io-python/",
                "is_source_local": False,
                "is_source_both": False,
                "description": "This tutorial will give you a firm grasp of <strong>Python</strong>&#x27;s "
                "approach to async IO.",
                "language": "en",
                "family_friendly": True,
                "type": "search_result",
                "subtype": "generic",
                "meta_url": {
                    "scheme": "https",
                    "netloc": "realpython.com",
                    "hostname": "realpython.com",
                    "favicon": "https://imgs.search.brave.com/fav2/",
                    "path": "› async-io-python",
                },
            },
        ],
        "family_friendly": True,
    },
}
BRAVE_EMPTY = {
    "query": {
        "original": "qwxzjvkq zzzq",
        "show_strict_warning": False,
        "is_navigational": False,
        "spellcheck_off": True,
        "country": "us",
        "more_results_available": False,
    },
    "mixed": {"type": "mixed", "main": [], "top": [], "side": []},
    "type": "search",
}
BRAVE_HITS = [
    SearchHit(
        "asyncio — Asynchronous I/O — Python 3.13.1 documentation",
        "https://docs.python.org/3/library/asyncio.html",
        "asyncio is a library to write concurrent code using the async/await syntax. asyncio is used as a "
        "foundation for multiple Python asynchronous frameworks & libraries.",
        "brave",
    ),
    SearchHit(
        "Real Python: Async IO in Python",
        "https://realpython.com/async-io-python/",
        "This tutorial will give you a firm grasp of Python's approach to async IO.",
        "brave",
    ),
]

# POST https://api.tavily.com/search {"query": "who won the 2022 world cup", "max_results": 3, ...}
TAVILY_OK = {
    "query": "who won the 2022 world cup",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {
            "title": "2022 FIFA World Cup final - Wikipedia",
            "url": "https://en.wikipedia.org/wiki/2022_FIFA_World_Cup_final",
            "content": "The <b>2022 FIFA World Cup final</b> was played on 18 December 2022 at Lusail "
            "Stadium. Argentina beat France 4&ndash;2 on penalties.",
            "score": 0.98507,
            "raw_content": None,
        },
        {
            "title": "Argentina win World Cup: Messi lifts trophy",
            "url": "https://www.bbc.com/sport/football/64062553",
            "content": "Lionel Messi&#39;s Argentina are world champions.",
            "score": 0.9621,
            "raw_content": None,
            "published_date": "Sun, 18 Dec 2022 18:44:00 GMT",
        },
    ],
    "response_time": 1.67,
}
TAVILY_EMPTY = {
    "query": "qwxzjvkq zzzq",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [],
    "response_time": 0.52,
}
TAVILY_HITS = [
    SearchHit(
        "2022 FIFA World Cup final - Wikipedia",
        "https://en.wikipedia.org/wiki/2022_FIFA_World_Cup_final",
        "The 2022 FIFA World Cup final was played on 18 December 2022 at Lusail Stadium. Argentina beat "
        "France 4–2 on penalties.",
        "tavily",
    ),
    SearchHit(
        "Argentina win World Cup: Messi lifts trophy",
        "https://www.bbc.com/sport/football/64062553",
        "Lionel Messi's Argentina are world champions.",
        "tavily",
    ),
]

# POST https://api.exa.ai/search {"query": ..., "numResults": 3, "contents": {"text": {...}}}
EXA_OK = {
    "requestId": "b5947044c4b78efa9552a7c89b306d95",
    "resolvedSearchType": "neural",
    "results": [
        {
            "title": "A Comprehensive Overview of Large Language Models",
            "url": "https://arxiv.org/pdf/2307.06435.pdf",
            "publishedDate": "2023-11-16T01:36:32.547Z",
            "author": "Humza  Naveed, University of Engineering and Technology (UET), Lahore, Pakistan",
            "score": 0.4600165784358978,
            "id": "https://arxiv.org/abs/2307.06435",
            "image": "https://arxiv.org/pdf/2307.06435.pdf/page_1.png",
            "favicon": "https://arxiv.org/favicon.ico",
            "text": "Abstract <p>Large Language Models (LLMs) have recently demonstrated remarkable "
            "capabilities&hellip;</p>",
        },
        {
            "title": "Scaling Laws for Neural Language Models",
            "url": "https://arxiv.org/abs/2001.08361",
            "publishedDate": "2020-01-23T00:00:00.000Z",
            "author": "Jared Kaplan",
            "score": 0.41,
            "id": "https://arxiv.org/abs/2001.08361",
            "highlights": ["We study empirical <em>scaling laws</em>", "for language model performance."],
            "highlightScores": [0.52, 0.31],
        },
    ],
    "searchType": "neural",
    "costDollars": {"total": 0.005, "search": {"neural": 0.005}},
}
EXA_EMPTY = {
    "requestId": "1e8f2f6a0c9d4a3b",
    "resolvedSearchType": "neural",
    "results": [],
    "costDollars": {"total": 0.005, "search": {"neural": 0.005}},
}
EXA_HITS = [
    SearchHit(
        "A Comprehensive Overview of Large Language Models",
        "https://arxiv.org/pdf/2307.06435.pdf",
        "Abstract Large Language Models (LLMs) have recently demonstrated remarkable capabilities…",
        "exa",
    ),
    SearchHit(
        "Scaling Laws for Neural Language Models",
        "https://arxiv.org/abs/2001.08361",
        "We study empirical scaling laws for language model performance.",
        "exa",
    ),
]

# POST https://google.serper.dev/search {"q": "apple inc", "num": 3}
SERPER_OK = {
    "searchParameters": {
        "q": "apple inc",
        "gl": "us",
        "hl": "en",
        "type": "search",
        "num": 3,
        "engine": "google",
    },
    "knowledgeGraph": {"title": "Apple", "type": "Technology company", "website": "http://www.apple.com/"},
    "organic": [
        {
            "title": "Apple",
            "link": "https://www.apple.com/",
            "snippet": "Discover the innovative world of <b>Apple</b> and shop everything iPhone, iPad, "
            "Apple Watch, Mac, and Apple TV, plus explore accessories, entertainment &amp; more.",
            "sitelinks": [{"title": "Support", "link": "https://support.apple.com/"}],
            "position": 1,
        },
        {
            "title": "Apple Inc. - Wikipedia",
            "link": "https://en.wikipedia.org/wiki/Apple_Inc.",
            "snippet": "Apple Inc. is an American multinational technology company headquartered in "
            "Cupertino, California.",
            "date": "Nov 2, 2026",
            "position": 2,
        },
    ],
    "peopleAlsoAsk": [{"question": "What does Apple Inc do?", "snippet": "…", "title": "…", "link": "…"}],
    "relatedSearches": [{"query": "Apple Inc full form"}],
    "credits": 1,
}
SERPER_EMPTY = {
    "searchParameters": {
        "q": "qwxzjvkq zzzq",
        "gl": "us",
        "hl": "en",
        "type": "search",
        "num": 3,
        "engine": "google",
    },
    "organic": [],
    "credits": 1,
}
SERPER_HITS = [
    SearchHit(
        "Apple",
        "https://www.apple.com/",
        "Discover the innovative world of Apple and shop everything iPhone, iPad, Apple Watch, Mac, and "
        "Apple TV, plus explore accessories, entertainment & more.",
        "serper",
    ),
    SearchHit(
        "Apple Inc. - Wikipedia",
        "https://en.wikipedia.org/wiki/Apple_Inc.",
        "Apple Inc. is an American multinational technology company headquartered in Cupertino, California.",
        "serper",
    ),
]

SERPAPI_METADATA = {
    "id": "64a1b2c3d4e5f6a7b8c9d0e1",
    "status": "Success",
    "json_endpoint": "https://serpapi.com/searches/0f1e2d3c/64a1b2c3d4e5f6a7b8c9d0e1.json",
    "created_at": "2026-11-02 10:00:00 UTC",
    "processed_at": "2026-11-02 10:00:00 UTC",
    "google_url": "https://www.google.com/search?q=coffee&oq=coffee&num=3&sourceid=chrome&ie=UTF-8",
    "raw_html_file": "https://serpapi.com/searches/0f1e2d3c/64a1b2c3d4e5f6a7b8c9d0e1.html",
    "total_time_taken": 1.12,
}
# GET https://serpapi.com/search.json?engine=google&q=coffee&num=3&api_key=...
SERPAPI_OK = {
    "search_metadata": SERPAPI_METADATA,
    "search_parameters": {
        "engine": "google",
        "q": "coffee",
        "google_domain": "google.com",
        "num": "3",
        "device": "desktop",
    },
    "search_information": {
        "query_displayed": "coffee",
        "total_results": 4270000000,
        "time_taken_displayed": 0.48,
        "organic_results_state": "Results for exact spelling",
    },
    "organic_results": [
        {
            "position": 1,
            "title": "Coffee - Wikipedia",
            "link": "https://en.wikipedia.org/wiki/Coffee",
            "redirect_link": "https://www.google.com/url?sa=t&url=https://en.wikipedia.org/wiki/Coffee",
            "displayed_link": "https://en.wikipedia.org › wiki › Coffee",
            "snippet": "<b>Coffee</b> is a beverage brewed from roasted, ground coffee beans. Darkly "
            "colored, bitter, and slightly acidic, coffee has a stimulating effect on humans.",
            "snippet_highlighted_words": ["Coffee"],
            "source": "Wikipedia",
        },
        {
            "position": 2,
            "title": "The Coffee Bean &amp; Tea Leaf",
            "link": "https://www.coffeebean.com/",
            "displayed_link": "https://www.coffeebean.com",
            "snippet": "Born and brewed in Southern California since 1963.",
            "source": "The Coffee Bean",
        },
    ],
    "pagination": {"current": 1, "next": "https://www.google.com/search?q=coffee&start=10"},
}
SERPAPI_EMPTY = {
    "search_metadata": SERPAPI_METADATA,
    "search_parameters": {
        "engine": "google",
        "q": "qwxzjvkq zzzq",
        "google_domain": "google.com",
        "device": "desktop",
    },
    "search_information": {"query_displayed": "qwxzjvkq zzzq", "organic_results_state": "Fully empty"},
    "error": "Google hasn't returned any results for this query.",
}
SERPAPI_HITS = [
    SearchHit(
        "Coffee - Wikipedia",
        "https://en.wikipedia.org/wiki/Coffee",
        "Coffee is a beverage brewed from roasted, ground coffee beans. Darkly colored, bitter, and slightly "
        "acidic, coffee has a stimulating effect on humans.",
        "serpapi",
    ),
    SearchHit(
        "The Coffee Bean & Tea Leaf",
        "https://www.coffeebean.com/",
        "Born and brewed in Southern California since 1963.",
        "serpapi",
    ),
]

# GET http://127.0.0.1:8888/search?q=searx&format=json
SEARXNG_OK = {
    "query": "searx",
    "number_of_results": 0,
    "results": [
        {
            "url": "https://github.com/searxng/searxng",
            "title": "searxng/searxng: SearXNG is a free internet metasearch engine",
            "content": "<b>SearXNG</b> is a free internet metasearch engine which aggregates results from "
            "more than 70 search services.",
            "engine": "duckduckgo",
            "parsed_url": ["https", "github.com", "/searxng/searxng", "", "", ""],
            "template": "default.html",
            "engines": ["duckduckgo", "brave"],
            "positions": [1, 2],
            "score": 4.0,
            "category": "general",
        },
        {
            "url": "https://docs.searxng.org/",
            "title": "Welcome to SearXNG — SearXNG Documentation",
            "content": "Privacy-respecting, hackable &lt;metasearch engine&gt;",
            "engine": "brave",
            "parsed_url": ["https", "docs.searxng.org", "/", "", "", ""],
            "template": "default.html",
            "engines": ["brave"],
            "positions": [1],
            "score": 1.0,
            "category": "general",
            "publishedDate": None,
        },
    ],
    "answers": [],
    "corrections": [],
    "infoboxes": [],
    "suggestions": ["searx instances"],
    "unresponsive_engines": [],
}
SEARXNG_EMPTY = {
    "query": "qwxzjvkq zzzq",
    "number_of_results": 0,
    "results": [],
    "answers": [],
    "corrections": [],
    "infoboxes": [],
    "suggestions": [],
    "unresponsive_engines": [],
}
SEARXNG_HITS = [
    SearchHit(
        "searxng/searxng: SearXNG is a free internet metasearch engine",
        "https://github.com/searxng/searxng",
        "SearXNG is a free internet metasearch engine which aggregates results from more than 70 search "
        "services.",
        "searxng",
    ),
    SearchHit(
        "Welcome to SearXNG — SearXNG Documentation",
        "https://docs.searxng.org/",
        "Privacy-respecting, hackable <metasearch engine>",
        "searxng",
    ),
]

# GET https://s.jina.ai/?q=jina+ai with Accept: application/json, X-Respond-With: no-content
JINA_OK = {
    "code": 200,
    "status": 20000,
    "data": [
        {
            "title": "Jina AI - Your Search Foundation, Supercharged.",
            "url": "https://jina.ai/",
            "description": "Best-in-class <em>embeddings</em>, rerankers, web reader &amp; deepsearch.",
            "date": "Nov 1, 2026",
            "usage": {"tokens": 1000},
        },
        {
            "title": "Reader API",
            "url": "https://jina.ai/reader/",
            "description": "Convert a URL to LLM-friendly input, by simply adding r.jina.ai in front.",
            "usage": {"tokens": 1000},
        },
    ],
    "meta": {"usage": {"tokens": 10000}},
}
JINA_EMPTY = {"code": 200, "status": 20000, "data": [], "meta": {"usage": {"tokens": 0}}}
JINA_HITS = [
    SearchHit(
        "Jina AI - Your Search Foundation, Supercharged.",
        "https://jina.ai/",
        "Best-in-class embeddings, rerankers, web reader & deepsearch.",
        "jina",
    ),
    SearchHit(
        "Reader API",
        "https://jina.ai/reader/",
        "Convert a URL to LLM-friendly input, by simply adding r.jina.ai in front.",
        "jina",
    ),
]

# GET https://kagi.com/api/v0/search?q=steve+jobs&limit=3 with Authorization: Bot <token>
KAGI_OK = {
    "meta": {
        "id": "120145a3-6a4d-41c4-9d8f-6b2e1c6c5e1e",
        "node": "us-east",
        "ms": 341,
        "api_balance": 9.975,
    },
    "data": [
        {
            "t": 0,
            "rank": 1,
            "url": "https://en.wikipedia.org/wiki/Steve_Jobs",
            "title": "Steve Jobs - Wikipedia",
            "snippet": "<b>Steven Paul Jobs</b> (February 24, 1955 – October 5, 2011) was an American "
            "businessman, inventor, and investor best known for co-founding Apple.",
            "published": "2024-01-12T00:00:00Z",
            "thumbnail": {"url": "/proxy/jobs.jpg", "width": 200, "height": 300},
        },
        {
            "t": 0,
            "rank": 2,
            "url": "https://www.apple.com/stevejobs/",
            "title": "Remembering Steve Jobs - Apple",
            "snippet": "Over a million people from all over the world have shared their memories&#8230;",
        },
        {"t": 1, "list": ["steve jobs death", "steve jobs stanford speech", "steve jobs children"]},
    ],
}
KAGI_EMPTY = {
    "meta": {"id": "b8c9d0e1-0000-4000-8000-000000000000", "node": "us-east", "ms": 122, "api_balance": 9.95},
    "data": [],
}
KAGI_HITS = [
    SearchHit(
        "Steve Jobs - Wikipedia",
        "https://en.wikipedia.org/wiki/Steve_Jobs",
        "Steven Paul Jobs (February 24, 1955 – October 5, 2011) was an American businessman, inventor, and "
        "investor best known for co-founding Apple.",
        "kagi",
    ),
    SearchHit(
        "Remembering Steve Jobs - Apple",
        "https://www.apple.com/stevejobs/",
        "Over a million people from all over the world have shared their memories…",
        "kagi",
    ),
]


# ---------------------------------------------------------------------------------------------- cases


def check_brave(request: httpx.Request) -> None:
    assert request.method == "GET"
    assert request.headers["X-Subscription-Token"] == FAKE_KEY
    assert request.headers["Accept"] == "application/json"
    assert dict(request.url.params) == {"q": "python asyncio", "count": "3"}


def check_tavily(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    body = sent_json(request)
    assert body["query"] == "python asyncio" and body["max_results"] == 3
    assert body["search_depth"] == "basic" and "time_range" not in body and "api_key" not in body


def check_exa(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert request.headers["x-api-key"] == FAKE_KEY
    body = sent_json(request)
    assert body["query"] == "python asyncio" and body["numResults"] == 3 and body["type"] == "auto"
    assert body["contents"] == {"text": {"maxCharacters": 300}}
    assert "startPublishedDate" not in body


def check_serper(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert request.headers["X-API-KEY"] == FAKE_KEY
    assert sent_json(request) == {"q": "python asyncio", "num": 3}


def check_serpapi(request: httpx.Request) -> None:
    assert request.method == "GET"
    assert dict(request.url.params) == {
        "engine": "google",
        "q": "python asyncio",
        "num": "3",
        "api_key": FAKE_KEY,
    }
    assert "Authorization" not in request.headers


def check_searxng(request: httpx.Request) -> None:
    assert request.method == "GET"
    assert dict(request.url.params) == {"q": "python asyncio", "format": "json"}
    assert request.headers["User-Agent"] == USER_AGENT
    assert "Authorization" not in request.headers


def check_jina(request: httpx.Request) -> None:
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["X-Respond-With"] == "no-content"
    assert dict(request.url.params) == {"q": "python asyncio"}


def check_kagi(request: httpx.Request) -> None:
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bot {FAKE_KEY}"
    assert dict(request.url.params) == {"q": "python asyncio", "limit": "3"}


@dataclass(frozen=True)
class Case:
    type: str
    method: str
    url: str
    ok: dict[str, Any]
    empty: dict[str, Any]
    hits: list[SearchHit]
    check: Callable[[httpx.Request], None]
    env_var: str | None
    fields: dict[str, Any] = field(default_factory=dict)

    def make(self, env: ProviderEnv, **fields: Any) -> Adapter:
        merged = {"api_key": FAKE_KEY, "timeout_s": 5.0, **self.fields, **fields}
        if self.env_var is None:
            merged.pop("api_key")
        return adapter(env, self.type, f"{self.type}-arm", **merged)

    def route(self, router: respx.MockRouter) -> respx.Route:
        return router.route(method=self.method, url__startswith=self.url)


CASES = [
    Case(
        "brave",
        "GET",
        "https://api.search.brave.com/res/v1/web/search",
        BRAVE_OK,
        BRAVE_EMPTY,
        BRAVE_HITS,
        check_brave,
        "BRAVE_API_KEY",
    ),
    Case(
        "tavily",
        "POST",
        "https://api.tavily.com/search",
        TAVILY_OK,
        TAVILY_EMPTY,
        TAVILY_HITS,
        check_tavily,
        "TAVILY_API_KEY",
    ),
    Case("exa", "POST", "https://api.exa.ai/search", EXA_OK, EXA_EMPTY, EXA_HITS, check_exa, "EXA_API_KEY"),
    Case(
        "serper",
        "POST",
        "https://google.serper.dev/search",
        SERPER_OK,
        SERPER_EMPTY,
        SERPER_HITS,
        check_serper,
        "SERPER_API_KEY",
    ),
    Case(
        "serpapi",
        "GET",
        "https://serpapi.com/search.json",
        SERPAPI_OK,
        SERPAPI_EMPTY,
        SERPAPI_HITS,
        check_serpapi,
        "SERPAPI_API_KEY",
    ),
    Case(
        "searxng",
        "GET",
        f"{SEARXNG_BASE}/search",
        SEARXNG_OK,
        SEARXNG_EMPTY,
        SEARXNG_HITS,
        check_searxng,
        None,
        {"base_url": SEARXNG_BASE},
    ),
    Case("jina", "GET", "https://s.jina.ai/", JINA_OK, JINA_EMPTY, JINA_HITS, check_jina, "JINA_API_KEY"),
    Case(
        "kagi",
        "GET",
        "https://kagi.com/api/v0/search",
        KAGI_OK,
        KAGI_EMPTY,
        KAGI_HITS,
        check_kagi,
        "KAGI_API_KEY",
    ),
]
KEYED = [case for case in CASES if case.env_var]
by_type = {case.type: case for case in CASES}
ids = [case.type for case in CASES]
all_cases = pytest.mark.parametrize("case", CASES, ids=ids)
keyed_cases = pytest.mark.parametrize("case", KEYED, ids=[case.type for case in KEYED])

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)

# The error bodies each provider documents (or is known to send) for a rejected key, with the key echoed
# into every text field, as some servers do.
UNAUTHORIZED = {
    "brave": {
        "type": "ErrorResponse",
        "error": {
            "id": "c0ffee00-1111-2222-3333-444455556666",
            "status": 401,
            "code": "SUBSCRIPTION_TOKEN_INVALID",
            "detail": f"The provided subscription token {FAKE_KEY} is invalid.",
            "meta": {"component": "authentication", "token": FAKE_KEY},
        },
        "time": 1762070400,
    },
    "tavily": {"detail": {"error": f"Unauthorized: missing or invalid API key {FAKE_KEY}."}},
    "exa": {"requestId": "0d1e2f", "error": f"Invalid API key: {FAKE_KEY}", "tag": "INVALID_API_KEY"},
    "serper": {"message": f"Unauthorized. Key {FAKE_KEY} is not valid.", "statusCode": 401},
    "serpapi": {
        "error": f"Invalid API key {FAKE_KEY}. Your API key should be here: "
        "https://serpapi.com/manage-api-key"
    },
    "searxng": {"error": "Unauthorized"},
    "jina": {
        "data": None,
        "code": 401,
        "name": "AuthenticationRequiredError",
        "status": 40103,
        "message": f"Invalid API key {FAKE_KEY}",
        "readableMessage": f"AuthenticationRequiredError: Invalid API key {FAKE_KEY}",
    },
    "kagi": {
        "meta": {"id": "5a6b7c8d", "node": "us-east", "ms": 2},
        "data": None,
        "error": [{"code": 1, "msg": f"Unauthorized: token {FAKE_KEY} is not valid", "ref": None}],
    },
}
RATE_LIMITED = {
    "brave": {
        "type": "ErrorResponse",
        "error": {
            "id": "9f8e7d6c-0000-4000-8000-000000000000",
            "status": 429,
            "code": "RATE_LIMITED",
            "detail": "Request rate limit exceeded for plan.",
            "meta": {"plan": "Free", "rate_limit": 1, "rate_current": 2, "component": "rate_limiter"},
        },
        "time": 1762070400,
    },
    "tavily": {"detail": {"error": "Rate limit exceeded. Please slow down your requests."}},
    "exa": {"requestId": "7a8b9c", "error": "Rate limit exceeded: 10 requests per second"},
    "serper": {"message": "Too many requests", "statusCode": 429},
    "serpapi": {"error": "You have exceeded the hourly throughput limit for your plan."},
    "searxng": None,  # the limiter answers with a plain-text body
    "jina": {
        "data": None,
        "code": 429,
        "name": "RateLimitTriggeredError",
        "status": 42903,
        "message": "Per IP rate limit exceeded",
        "readableMessage": "RateLimitTriggeredError",
    },
    "kagi": {
        "meta": {"id": "1a2b", "node": "us-east", "ms": 1},
        "data": None,
        "error": [{"code": 429, "msg": "Too many requests", "ref": None}],
    },
}


# ------------------------------------------------------------------------------------- the battery


@pytest.mark.anyio
@all_cases
async def test_success_builds_the_request_and_parses_hits(case: Case, env: ProviderEnv) -> None:
    arm = case.make(env)
    with respx.mock(assert_all_called=True) as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=case.ok))
        hits = await arm.call(SearchRequest("python asyncio", k=3))
    assert hits == case.hits
    assert route.call_count == 1
    sent = route.calls.last.request
    assert str(sent.url).startswith(case.url)
    case.check(sent)
    for hit in hits:
        assert "<" not in hit.title and "&amp;" not in hit.snippet and "<strong>" not in hit.snippet


@pytest.mark.anyio
@all_cases
async def test_k_truncates_the_hits(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=case.ok))
        hits = await case.make(env).call(SearchRequest("python asyncio", k=1))
    assert hits == case.hits[:1]


@pytest.mark.anyio
@all_cases
async def test_empty_result(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=case.empty))
        assert await case.make(env).call(SearchRequest("qwxzjvkq zzzq", k=3)) == []


@pytest.mark.anyio
@all_cases
async def test_401_is_bad_request_about_the_key_without_the_key(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(401, json=UNAUTHORIZED[case.type]))
        with pytest.raises(BadRequest) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert "HTTP 401" in caught.value.message
    assert "API key" in caught.value.message
    assert caught.value.provider == f"{case.type}-arm"
    assert FAKE_KEY not in all_text(caught.value)


@pytest.mark.anyio
@keyed_cases
@pytest.mark.parametrize("status", [401, 403, 400, 429, 500])
async def test_the_key_never_appears_in_an_error_even_when_echoed(
    case: Case, status: int, env: ProviderEnv
) -> None:
    echoing = json.loads(json.dumps(UNAUTHORIZED[case.type]))
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(status, json=echoing))
        with pytest.raises((BadRequest, RateLimited, Unavailable)) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert FAKE_KEY not in all_text(caught.value)
    assert FAKE_KEY[4:] not in all_text(caught.value)


@pytest.mark.anyio
@keyed_cases
async def test_the_key_never_appears_in_a_200_body_error(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=UNAUTHORIZED[case.type]))
        with pytest.raises((BadRequest, BadResponse, Unavailable)) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert FAKE_KEY not in all_text(caught.value)


@pytest.mark.anyio
@all_cases
async def test_429_is_rate_limited_with_retry_after(case: Case, env: ProviderEnv) -> None:
    body = RATE_LIMITED[case.type]
    response = (
        httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "30"})
        if body is None
        else httpx.Response(429, json=body, headers={"Retry-After": "30"})
    )
    with respx.mock() as router:
        case.route(router).mock(return_value=response)
        with pytest.raises(RateLimited) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert caught.value.retry_after == 30.0
    assert "HTTP 429" in caught.value.message


@pytest.mark.anyio
@all_cases
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(case: Case, status: int, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(status, json={"error": "internal"}))
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert f"HTTP {status}" in caught.value.message


@pytest.mark.anyio
@all_cases
async def test_html_error_page_is_unavailable_and_not_copied(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(
            return_value=httpx.Response(502, text=HTML_502, headers={"Content-Type": "text/html"})
        )
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert caught.value.message == "HTTP 502"


@pytest.mark.anyio
@all_cases
@pytest.mark.parametrize(
    "content",
    [b'{"results": [{"title": "cut', b"<html><body>Sign in to the Wi-Fi</body></html>", b"", b"\xff\xfe\x00"],
    ids=["truncated", "html-200", "empty", "binary"],
)
async def test_malformed_200_body_is_bad_response(case: Case, content: bytes, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(
            return_value=httpx.Response(200, content=content, headers={"Content-Type": "application/json"})
        )
        with pytest.raises(BadResponse) as caught:
            await case.make(env).call(SearchRequest("x", k=3))
    assert "not JSON" in caught.value.message


WRONG_SHAPES = [[], "results", None, {"unexpected": True}]


@pytest.mark.anyio
@all_cases
@pytest.mark.parametrize("body", WRONG_SHAPES, ids=["list", "string", "null", "other-object"])
async def test_wrong_shape_is_bad_response(case: Case, body: Any, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, content=json.dumps(body).encode()))
        with pytest.raises(BadResponse):
            await case.make(env).call(SearchRequest("x", k=3))


@pytest.mark.anyio
@all_cases
async def test_result_without_url_is_bad_response(case: Case, env: ProviderEnv) -> None:
    body = json.loads(json.dumps(case.ok))
    url_key = "link" if case.type in ("serper", "serpapi") else "url"
    items = {
        "brave": lambda b: b["web"]["results"],
        "tavily": lambda b: b["results"],
        "exa": lambda b: b["results"],
        "serper": lambda b: b["organic"],
        "serpapi": lambda b: b["organic_results"],
        "searxng": lambda b: b["results"],
        "jina": lambda b: b["data"],
        "kagi": lambda b: b["data"],
    }[case.type](body)
    items[0][url_key] = None
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(BadResponse):
            await case.make(env).call(SearchRequest("x", k=3))


@pytest.mark.anyio
@keyed_cases
async def test_missing_key_is_bad_request_naming_the_variable(case: Case, env: ProviderEnv) -> None:
    arm = adapter(env, case.type, case.type)
    with respx.mock(assert_all_called=False) as router:
        route = case.route(router)
        with pytest.raises(BadRequest) as caught:
            await arm.call(SearchRequest("x"))
    assert caught.value.message == f"no API key: set {case.env_var}"
    assert not route.called


@pytest.mark.anyio
@all_cases
async def test_base_url_overrides_the_endpoint(case: Case, env: ProviderEnv) -> None:
    mirror = "http://127.0.0.1:9999/custom/search"
    with respx.mock(assert_all_called=True) as router:
        route = router.route(method=case.method, url__startswith=mirror).mock(
            return_value=httpx.Response(200, json=case.ok)
        )
        hits = await case.make(env, base_url=mirror).call(SearchRequest("python asyncio", k=3))
    assert hits == case.hits
    assert route.call_count == 1


@pytest.mark.anyio
@all_cases
async def test_network_failures_are_unavailable(case: Case, env: ProviderEnv) -> None:
    with respx.mock() as router:
        case.route(router).mock(
            side_effect=[httpx.ConnectError("Temporary failure in name resolution"), httpx.ReadTimeout("t")]
        )
        with pytest.raises(Unavailable) as refused:
            await case.make(env).call(SearchRequest("x", k=3))
        with pytest.raises(Unavailable) as slow:
            await case.make(env).call(SearchRequest("x", k=3))
    assert refused.value.message.startswith("cannot reach ") and refused.value.message.endswith(
        "ConnectError"
    )
    assert slow.value.message == "timed out after 5 s"
    assert FAKE_KEY not in all_text(refused.value) and FAKE_KEY not in all_text(slow.value)


# -------------------------------------------------------------------------------------- freshness


def sent_filter(type_: str, request: httpx.Request) -> Any:
    if type_ == "brave":
        return request.url.params.get("freshness")
    if type_ == "tavily":
        return sent_json(request).get("time_range")
    if type_ == "serper":
        return sent_json(request).get("tbs")
    if type_ == "serpapi":
        return request.url.params.get("tbs")
    if type_ == "searxng":
        return request.url.params.get("time_range")
    raise AssertionError(type_)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("type_", "freshness", "expected"),
    [
        ("brave", "day", "pd"),
        ("brave", "week", "pw"),
        ("brave", "month", "pm"),
        ("brave", "year", "py"),
        ("tavily", "week", "week"),
        ("serper", "day", "qdr:d"),
        ("serper", "year", "qdr:y"),
        ("serpapi", "month", "qdr:m"),
        ("searxng", "year", "year"),
        ("searxng", "day", "day"),
    ],
)
async def test_freshness_becomes_the_time_filter(
    type_: str, freshness: Any, expected: str, env: ProviderEnv
) -> None:
    case = by_type[type_]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=case.ok))
        await case.make(env).call(SearchRequest("x", k=3, freshness=freshness))
    assert sent_filter(type_, route.calls.last.request) == expected


@pytest.mark.anyio
async def test_exa_freshness_is_a_start_published_date(env: ProviderEnv) -> None:
    case = by_type["exa"]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=case.ok))
        await case.make(env).call(SearchRequest("x", k=3, freshness="week"))
    start = sent_json(route.calls.last.request)["startPublishedDate"]
    assert start.endswith(".000Z")
    when = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - timedelta(days=7) - when).total_seconds()) < 60


@pytest.mark.anyio
@pytest.mark.parametrize("type_", ["jina", "kagi"])
async def test_providers_without_a_time_filter_ignore_freshness(type_: str, env: ProviderEnv) -> None:
    case = by_type[type_]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=case.ok))
        hits = await case.make(env).call(SearchRequest("python asyncio", k=3, freshness="day"))
    assert hits == case.hits
    case.check(route.calls.last.request)


@pytest.mark.anyio
@pytest.mark.parametrize("k", [1, 20, 50])
async def test_brave_count_is_capped_at_20(k: int, env: ProviderEnv) -> None:
    case = by_type["brave"]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=BRAVE_EMPTY))
        await case.make(env).call(SearchRequest("x", k=k))
    assert route.calls.last.request.url.params["count"] == str(min(k, 20))


# ----------------------------------------------------------------------------------- per provider


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "limit"), [(432, "plan"), (433, "pay-as-you-go")])
async def test_tavily_432_433_are_quota_unavailable(status: int, limit: str, env: ProviderEnv) -> None:
    case = by_type["tavily"]
    body = {
        "detail": {
            "error": "This request exceeds your plan's set usage limit. Please upgrade your plan "
            "or contact support@tavily.com"
        }
    }
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(status, json=body))
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.message.startswith(f"HTTP {status}: This request exceeds your plan")
    assert caught.value.message.endswith(f"({limit} limit reached)")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message", "error_type"),
    [
        ("Your account has run out of searches.", Unavailable),
        (
            "Your searches for the month are exhausted. You can upgrade plans on SerpApi.com website.",
            Unavailable,
        ),
        ("Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key", BadRequest),
        ("You have exceeded the hourly throughput limit for your plan.", RateLimited),
        ("Google hasn't returned any results for this query.", None),
        ("Missing query `q` parameter.", Unavailable),
        ("Unsupported `xx` location - location parameter.", Unavailable),
    ],
)
async def test_serpapi_error_in_a_200_body(message: str, error_type: type | None, env: ProviderEnv) -> None:
    case = by_type["serpapi"]
    body = {"search_metadata": {**SERPAPI_METADATA, "status": "Error"}, "error": message}
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=body))
        if error_type is None:
            assert await case.make(env).call(SearchRequest("x")) == []
            return
        with pytest.raises(error_type) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert type(caught.value) is error_type
    assert message[:40] in caught.value.message


@pytest.mark.anyio
async def test_serpapi_429_out_of_searches_is_unavailable_not_rate_limited(env: ProviderEnv) -> None:
    case = by_type["serpapi"]
    with respx.mock() as router:
        case.route(router).mock(
            return_value=httpx.Response(429, json={"error": "Your account has run out of searches."})
        )
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert caught.value.message == "HTTP 429: Your account has run out of searches. (searches exhausted)"


@pytest.mark.anyio
async def test_serpapi_engine_option_and_no_tbs_outside_google(env: ProviderEnv) -> None:
    case = by_type["serpapi"]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=SERPAPI_OK))
        await case.make(env, options={"engine": "bing", "gl": "de"}).call(SearchRequest("x", freshness="day"))
    params = route.calls.last.request.url.params
    assert params["engine"] == "bing" and params["gl"] == "de" and "tbs" not in params


@pytest.mark.anyio
async def test_searxng_unresponsive_engines_with_no_results_is_unavailable(env: ProviderEnv) -> None:
    case = by_type["searxng"]
    body = {**SEARXNG_EMPTY, "unresponsive_engines": [["duckduckgo", "timeout"], ["brave", "CAPTCHA"]]}
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert caught.value.message == "no results; upstream engines failed: duckduckgo timeout, brave CAPTCHA"


@pytest.mark.anyio
async def test_searxng_unresponsive_engines_with_results_still_answers(env: ProviderEnv) -> None:
    case = by_type["searxng"]
    body = {**SEARXNG_OK, "unresponsive_engines": [["google", "Suspended: too many requests"]]}
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(200, json=body))
        assert await case.make(env).call(SearchRequest("x", k=5)) == SEARXNG_HITS


@pytest.mark.anyio
async def test_searxng_403_explains_the_json_format(env: ProviderEnv) -> None:
    case = by_type["searxng"]
    with respx.mock() as router:
        case.route(router).mock(
            return_value=httpx.Response(
                403, text="<html>403 Forbidden</html>", headers={"Content-Type": "text/html"}
            )
        )
        with pytest.raises(BadRequest) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert caught.value.message.startswith("HTTP 403: the instance refuses format=json")


@pytest.mark.anyio
@pytest.mark.parametrize("base", [SEARXNG_BASE, f"{SEARXNG_BASE}/", f"{SEARXNG_BASE}/search"])
async def test_searxng_base_url_forms_and_options(base: str, env: ProviderEnv) -> None:
    case = by_type["searxng"]
    arm = case.make(env, base_url=base, options={"categories": "general", "engines": "brave,duckduckgo"})
    with respx.mock() as router:
        route = router.get(f"{SEARXNG_BASE}/search").mock(return_value=httpx.Response(200, json=SEARXNG_OK))
        await arm.call(SearchRequest("x"))
    params = route.calls.last.request.url.params
    assert params["categories"] == "general" and params["engines"] == "brave,duckduckgo"


@pytest.mark.anyio
async def test_searxng_without_base_url_is_bad_request(env: ProviderEnv) -> None:
    with pytest.raises(BadRequest) as caught:
        await adapter(env, "searxng", "searx").call(SearchRequest("x"))
    assert "SEARXNG_URL" in caught.value.message


@pytest.mark.anyio
async def test_brave_error_code_on_422_and_quota_429(env: ProviderEnv) -> None:
    case = by_type["brave"]
    invalid = {
        "type": "ErrorResponse",
        "error": {
            "id": "1",
            "status": 422,
            "code": "SUBSCRIPTION_TOKEN_INVALID",
            "detail": "The provided subscription token is invalid.",
            "meta": {},
        },
        "time": 1,
    }
    quota = {
        "type": "ErrorResponse",
        "error": {
            "id": "2",
            "status": 429,
            "code": "QUOTA_LIMITED",
            "detail": "Monthly quota exceeded.",
            "meta": {},
        },
        "time": 1,
    }
    with respx.mock() as router:
        case.route(router).mock(
            side_effect=[httpx.Response(422, json=invalid), httpx.Response(429, json=quota)]
        )
        with pytest.raises(BadRequest) as bad:
            await case.make(env).call(SearchRequest("x"))
        with pytest.raises(Unavailable) as exhausted:
            await case.make(env).call(SearchRequest("x"))
    assert bad.value.message == "HTTP 422: SUBSCRIPTION_TOKEN_INVALID"
    assert exhausted.value.message == "HTTP 429: QUOTA_LIMITED"


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 403])
async def test_serper_out_of_credits_is_unavailable(status: int, env: ProviderEnv) -> None:
    case = by_type["serper"]
    with respx.mock() as router:
        case.route(router).mock(
            return_value=httpx.Response(status, json={"message": "Not enough credits", "statusCode": status})
        )
        with pytest.raises(Unavailable) as caught:
            await case.make(env).call(SearchRequest("x"))
    assert caught.value.message == f"HTTP {status}: Not enough credits (credits exhausted)"


@pytest.mark.anyio
async def test_exa_options_and_highlights_only_results(env: ProviderEnv) -> None:
    case = by_type["exa"]
    arm = case.make(env, options={"search_type": "fast", "snippet_chars": 120})
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=EXA_OK))
        hits = await arm.call(SearchRequest("x", k=3))
    body = sent_json(route.calls.last.request)
    assert body["type"] == "fast" and body["contents"] == {"text": {"maxCharacters": 120}}
    assert hits[1].snippet == "We study empirical scaling laws for language model performance."


@pytest.mark.anyio
@pytest.mark.parametrize("status", [402, 429])
async def test_jina_balance_and_rate_limits(status: int, env: ProviderEnv) -> None:
    case = by_type["jina"]
    body = {
        "data": None,
        "code": status,
        "name": "InsufficientBalanceError",
        "status": status * 100 + 1,
        "message": "Account balance not enough to run this query, please recharge.",
        "readableMessage": "InsufficientBalanceError: Account balance not enough",
    }
    with respx.mock() as router:
        case.route(router).mock(return_value=httpx.Response(status, json=body))
        with pytest.raises(Unavailable if status == 402 else RateLimited):
            await case.make(env).call(SearchRequest("x"))


@pytest.mark.anyio
async def test_jina_fetch_content_option_drops_no_content_header(env: ProviderEnv) -> None:
    case = by_type["jina"]
    with respx.mock() as router:
        route = case.route(router).mock(return_value=httpx.Response(200, json=JINA_OK))
        await case.make(env, options={"fetch_content": True}).call(SearchRequest("x"))
    assert "X-Respond-With" not in route.calls.last.request.headers


KAGI_V1_OK = {
    "meta": {"id": "d1e2f3a4", "node": "us-central", "ms": 402},
    "data": {
        "search": [
            {
                "url": "https://www.rust-lang.org/",
                "title": "Rust Programming Language",
                "snippet": "A language empowering everyone to build <b>reliable</b> and efficient software.",
                "time": "2026-10-30T00:00:00Z",
            },
            {
                "url": "https://doc.rust-lang.org/book/",
                "title": "The Rust Programming Language - The Book",
                "snippet": "by Steve Klabnik &amp; Carol Nichols",
                "image": {"url": "https://x/y.png"},
            },
        ],
        "related": ["rust vs go"],
    },
}


@pytest.mark.anyio
@pytest.mark.parametrize(("options", "scheme"), [({}, "Bearer"), ({"auth_scheme": "Bot"}, "Bot")])
async def test_kagi_v1_posts_json_with_configurable_scheme(
    options: dict[str, str], scheme: str, env: ProviderEnv
) -> None:
    arm = by_type["kagi"].make(env, options={"api_version": "v1", **options})
    with respx.mock(assert_all_called=True) as router:
        route = router.post("https://kagi.com/api/v1/search").mock(
            return_value=httpx.Response(200, json=KAGI_V1_OK)
        )
        hits = await arm.call(SearchRequest("rust", k=5, freshness="month"))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == f"{scheme} {FAKE_KEY}"
    body = sent_json(sent)
    assert body["query"] == "rust" and body["workflow"] == "search"
    after = datetime.fromisoformat(body["filters"]["after"]).date()
    assert abs((datetime.now(UTC).date() - timedelta(days=31) - after).days) <= 1
    assert hits == [
        SearchHit(
            "Rust Programming Language",
            "https://www.rust-lang.org/",
            "A language empowering everyone to build reliable and efficient software.",
            "kagi",
        ),
        SearchHit(
            "The Rust Programming Language - The Book",
            "https://doc.rust-lang.org/book/",
            "by Steve Klabnik & Carol Nichols",
            "kagi",
        ),
    ]


@pytest.mark.anyio
async def test_kagi_v0_with_bearer_scheme(env: ProviderEnv) -> None:
    arm = by_type["kagi"].make(env, options={"auth_scheme": "Bearer"})
    with respx.mock() as router:
        route = router.get("https://kagi.com/api/v0/search").mock(
            return_value=httpx.Response(200, json=KAGI_OK)
        )
        await arm.call(SearchRequest("x"))
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {FAKE_KEY}"


@pytest.mark.anyio
@pytest.mark.parametrize("options", [{"auth_scheme": "Token"}, {"api_version": "v2"}])
async def test_kagi_bad_options_are_bad_request(options: dict[str, str], env: ProviderEnv) -> None:
    with respx.mock() as router:
        with pytest.raises(BadRequest) as caught:
            await by_type["kagi"].make(env, options=options).call(SearchRequest("x"))
        assert not router.calls
    assert "options." in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "msg", "error_type"),
    [
        (402, "Insufficient credit to perform this request.", Unavailable),
        (200, "Insufficient credit to perform this request.", Unavailable),
        (200, "Unauthorized", BadRequest),
        (200, "Internal error", Unavailable),
    ],
)
async def test_kagi_error_list(status: int, msg: str, error_type: type, env: ProviderEnv) -> None:
    body = {
        "meta": {"id": "e", "node": "us-east", "ms": 1},
        "data": None,
        "error": [{"code": 1, "msg": msg, "ref": None}],
    }
    with respx.mock() as router:
        by_type["kagi"].route(router).mock(return_value=httpx.Response(status, json=body))
        with pytest.raises(error_type) as caught:
            await by_type["kagi"].make(env).call(SearchRequest("x"))
    assert type(caught.value) is error_type
    if status == 200:
        assert msg in caught.value.message


def test_every_hosted_type_is_registered_with_its_class() -> None:
    from providers import adapter_class

    for case in CASES:
        cls = adapter_class(case.type)
        assert cls.type == case.type and cls.tool == "search"

"""Remote retrieval adapters (Chroma, Qdrant, Elasticsearch, OpenSearch) against recorded wire bodies.

The adapters and the HTTP client are real; respx stands in for the network. The only swap is the
embedder (`providers.retrieve._remote.embed_texts`), replaced by a deterministic 384-dim function so
the tests need not load MiniLM.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import BadRequest, BadResponse, ProviderEnv, ProviderError, RateLimited, Unavailable
from providers.registry import adapter_class
from providers.retrieve import _remote
from providers.types import Passage, RetrieveRequest
from tests.providers_support import FAKE_KEY, adapter, all_text, json_values_of, shape_or_anything, spec

pytestmark = pytest.mark.anyio

CHROMA = "http://chroma.test"
CHROMA_DB = f"{CHROMA}/api/v2/tenants/default_tenant/databases/default_database"
CHROMA_ID = "5c4c3a1e-8d1f-4f3b-9a64-2b0e6c1f9d77"
QDRANT = "http://qdrant.test:6333"
ES = "http://es.test:9200"
OS = "http://os.test:9200"


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Deterministic unit vectors of shape (n, 384), seeded by each text."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows) if rows else np.zeros((0, 384), dtype=np.float32)


@pytest.fixture(autouse=True)
def _embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_remote, "embed_texts", fake_embed)


# ---------------------------------------------------------------------------------------------- wire bodies


def chroma_collection_body() -> dict[str, Any]:
    return {
        "id": CHROMA_ID,
        "name": "docs",
        "configuration_json": {"hnsw": {"space": "cosine"}},
        "metadata": None,
        "dimension": 384,
        "tenant": "default_tenant",
        "database": "default_database",
        "log_position": 0,
        "version": 0,
    }


def chroma_query_body(n: int = 2) -> dict[str, Any]:
    ids = ["mars-1", "cats-1"][:n]
    return {
        "ids": [ids],
        "embeddings": None,
        "documents": [["Mars is the fourth planet from the Sun.", "The domestic cat is a small mammal."][:n]],
        "uris": None,
        "data": None,
        "metadatas": [[{"source": "space/mars.md"}, None][:n]],
        "distances": [[0.125, 0.75][:n]],
        "included": ["documents", "distances", "metadatas"],
    }


def qdrant_points(n: int = 2) -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "version": 3,
            "score": 0.875,
            "payload": {"text": "Mars is the fourth planet from the Sun.", "source": "space/mars.md"},
        },
        {"id": "9b2c6f3e-0a57-4a1f-8d7e-1b2c3d4e5f60", "version": 3, "score": 0.25, "payload": None},
    ][:n]


def qdrant_query_body(n: int = 2) -> dict[str, Any]:
    return {"result": {"points": qdrant_points(n)}, "status": "ok", "time": 0.000123}


def qdrant_search_body(n: int = 2) -> dict[str, Any]:
    return {"result": qdrant_points(n), "status": "ok", "time": 0.000123}


def es_search_body(n: int = 2) -> dict[str, Any]:
    hits = [
        {
            "_index": "docs",
            "_id": "mars-1",
            "_score": 7.5,
            "_source": {
                "title": "Mars",
                "text": "Mars is the fourth planet from the Sun.",
                "source": "mars.md",
            },
        },
        {"_index": "docs", "_id": "cats-1", "_score": 1.25, "_source": {"title": "Cats"}},
    ][:n]
    return {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": n, "relation": "eq"}, "max_score": 7.5 if n else None, "hits": hits},
    }


def es_error_body(type_: str, reason: str, status: int) -> dict[str, Any]:
    return {
        "error": {"root_cause": [{"type": type_, "reason": reason}], "type": type_, "reason": reason},
        "status": status,
    }


# ---------------------------------------------------------------------------------------------- cases

# name -> (spec fields, POST url, success body, empty body, expected passages)
EXPECTED_CHROMA = [
    Passage("mars-1", "Mars is the fourth planet from the Sun.", 0.875, {"source": "space/mars.md"}),
    Passage("cats-1", "The domestic cat is a small mammal.", 0.25, {}),
]
EXPECTED_QDRANT = [
    Passage("1", "Mars is the fourth planet from the Sun.", 0.875, {"source": "space/mars.md"}),
    Passage("9b2c6f3e-0a57-4a1f-8d7e-1b2c3d4e5f60", "", 0.25, {}),
]
EXPECTED_ES = [
    Passage("mars-1", "Mars is the fourth planet from the Sun.", 7.5, {"title": "Mars", "source": "mars.md"}),
    Passage("cats-1", "", 1.25, {"title": "Cats"}),
]

CASES: dict[str, dict[str, Any]] = {
    "chroma": {
        "type": "chroma",
        "fields": {"base_url": CHROMA, "api_key": FAKE_KEY, "options": {"collection_id": CHROMA_ID}},
        "url": f"{CHROMA_DB}/collections/{CHROMA_ID}/query",
        "ok": chroma_query_body,
        "expected": EXPECTED_CHROMA,
        "auth": ("x-chroma-token", FAKE_KEY),
    },
    "qdrant": {
        "type": "qdrant",
        "fields": {"base_url": QDRANT, "api_key": FAKE_KEY},
        "url": f"{QDRANT}/collections/docs/points/query",
        "ok": qdrant_query_body,
        "expected": EXPECTED_QDRANT,
        "auth": ("api-key", FAKE_KEY),
    },
    "qdrant-search": {
        "type": "qdrant",
        "fields": {"base_url": QDRANT, "api_key": FAKE_KEY, "options": {"api": "search"}},
        "url": f"{QDRANT}/collections/docs/points/search",
        "ok": qdrant_search_body,
        "expected": EXPECTED_QDRANT,
        "auth": ("api-key", FAKE_KEY),
    },
    "elasticsearch": {
        "type": "elasticsearch",
        "fields": {"base_url": ES, "api_key": FAKE_KEY},
        "url": f"{ES}/docs/_search",
        "ok": es_search_body,
        "expected": EXPECTED_ES,
        "auth": ("authorization", f"ApiKey {FAKE_KEY}"),
    },
    "elasticsearch-knn": {
        "type": "elasticsearch",
        "fields": {"base_url": ES, "api_key": FAKE_KEY, "options": {"mode": "knn"}},
        "url": f"{ES}/docs/_search",
        "ok": es_search_body,
        "expected": EXPECTED_ES,
        "auth": ("authorization", f"ApiKey {FAKE_KEY}"),
    },
    "opensearch": {
        "type": "opensearch",
        "fields": {"base_url": OS, "api_key": FAKE_KEY, "options": {"username": "admin"}},
        "url": f"{OS}/docs/_search",
        "ok": es_search_body,
        "expected": EXPECTED_ES,
        "auth": ("authorization", "Basic " + base64.b64encode(f"admin:{FAKE_KEY}".encode()).decode()),
    },
    "opensearch-knn": {
        "type": "opensearch",
        "fields": {"base_url": OS, "api_key": FAKE_KEY, "options": {"username": "admin", "mode": "knn"}},
        "url": f"{OS}/docs/_search",
        "ok": es_search_body,
        "expected": EXPECTED_ES,
        "auth": ("authorization", "Basic " + base64.b64encode(f"admin:{FAKE_KEY}".encode()).decode()),
    },
}


def make(env: ProviderEnv, case: dict[str, Any]):
    return adapter(env, case["type"], f"{case['type']}-arm", **case["fields"])


def sent(route: respx.Route) -> tuple[httpx.Request, dict[str, Any]]:
    request = route.calls.last.request
    return request, json.loads(request.content)


def check_body(name: str, body: dict[str, Any], k: int) -> None:
    vec = fake_embed(["where is mars"])[0].tolist()
    if name == "chroma":
        assert body["n_results"] == k
        assert body["include"] == ["documents", "distances", "metadatas"]
        assert len(body["query_embeddings"]) == 1 and len(body["query_embeddings"][0]) == 384
        assert body["query_embeddings"][0] == pytest.approx(vec)
    elif name == "qdrant":
        assert body == {"query": pytest.approx(vec), "limit": k, "with_payload": True}
    elif name == "qdrant-search":
        assert body == {"vector": pytest.approx(vec), "limit": k, "with_payload": True}
    elif name in ("elasticsearch", "opensearch"):
        assert body["size"] == k
        assert body["_source"] == {"excludes": ["embedding"]}
        assert body["query"] == {"multi_match": {"query": "where is mars", "fields": ["title^2", "text"]}}
    elif name == "elasticsearch-knn":
        knn = body["knn"]
        assert (knn["field"], knn["k"], knn["num_candidates"]) == ("embedding", k, 100)
        assert len(knn["query_vector"]) == 384 and knn["query_vector"] == pytest.approx(vec)
        assert body["size"] == k and "query" not in body
    elif name == "opensearch-knn":
        knn = body["query"]["knn"]["embedding"]
        assert knn["k"] == k and len(knn["vector"]) == 384 and knn["vector"] == pytest.approx(vec)
        assert body["size"] == k and "knn" not in body
    else:  # pragma: no cover
        raise AssertionError(name)


# ---------------------------------------------------------------------------------------------- success


@pytest.mark.parametrize("name", list(CASES))
@respx.mock
async def test_success_maps_passages_and_sends_the_documented_request(env: ProviderEnv, name: str) -> None:
    case = CASES[name]
    route = respx.post(case["url"]).mock(return_value=httpx.Response(200, json=case["ok"]()))
    passages = await make(env, case).call(RetrieveRequest("where is mars", "docs", k=2))
    assert passages == case["expected"]
    request, body = sent(route)
    header, value = case["auth"]
    assert request.headers[header] == value
    assert request.headers["content-type"] == "application/json"
    check_body(name, body, 2)


@pytest.mark.parametrize("name", list(CASES))
@respx.mock
async def test_empty_result_is_an_empty_list(env: ProviderEnv, name: str) -> None:
    case = CASES[name]
    respx.post(case["url"]).mock(return_value=httpx.Response(200, json=case["ok"](0)))
    assert await make(env, case).call(RetrieveRequest("where is mars", "docs", k=3)) == []


@pytest.mark.parametrize("name", list(CASES))
@respx.mock
async def test_k_truncates_a_longer_answer(env: ProviderEnv, name: str) -> None:
    case = CASES[name]
    route = respx.post(case["url"]).mock(return_value=httpx.Response(200, json=case["ok"]()))
    passages = await make(env, case).call(RetrieveRequest("where is mars", "docs", k=1))
    assert passages == case["expected"][:1]
    check_body(name, sent(route)[1], 1)


@respx.mock
async def test_chroma_resolves_the_collection_id_by_name_once(env: ProviderEnv) -> None:
    lookup = respx.get(f"{CHROMA_DB}/collections/docs").mock(
        return_value=httpx.Response(200, json=chroma_collection_body())
    )
    query = respx.post(f"{CHROMA_DB}/collections/{CHROMA_ID}/query").mock(
        return_value=httpx.Response(200, json=chroma_query_body())
    )
    arm = adapter(env, "chroma", base_url=CHROMA)
    for _ in range(2):
        assert await arm.call(RetrieveRequest("where is mars", "docs", k=2)) == EXPECTED_CHROMA
    assert lookup.call_count == 1 and query.call_count == 2
    assert "x-chroma-token" not in query.calls.last.request.headers  # no key configured: no header


@respx.mock
async def test_chroma_tenant_database_and_l2_space_options(env: ProviderEnv) -> None:
    base = f"{CHROMA}/api/v2/tenants/acme/databases/kb"
    respx.get(f"{base}/collections/notes").mock(return_value=httpx.Response(200, json={"id": "c-1"}))
    respx.post(f"{base}/collections/c-1/query").mock(
        return_value=httpx.Response(200, json=chroma_query_body())
    )
    arm = adapter(
        env, "chroma", base_url=CHROMA, options={"tenant": "acme", "database": "kb", "collection": "notes"}
    )
    passages = await arm.call(RetrieveRequest("q", "ignored", k=2))
    assert [p.score for p in passages] == [0.875, 0.25]
    arm_l2 = adapter(
        env, "chroma", base_url=CHROMA, options={"tenant": "acme", "database": "kb", "space": "l2"}
    )
    respx.get(f"{base}/collections/docs").mock(return_value=httpx.Response(200, json={"id": "c-1"}))
    assert [p.score for p in await arm_l2.call(RetrieveRequest("q", "docs", k=2))] == [-0.125, -0.75]


@respx.mock
async def test_chroma_resolves_again_after_a_rejected_query(env: ProviderEnv) -> None:
    lookup = respx.get(f"{CHROMA_DB}/collections/docs").mock(
        side_effect=[httpx.Response(200, json={"id": "old"}), httpx.Response(200, json={"id": CHROMA_ID})]
    )
    respx.post(f"{CHROMA_DB}/collections/old/query").mock(
        return_value=httpx.Response(404, json={"error": "NotFoundError", "message": "Collection not found"})
    )
    respx.post(f"{CHROMA_DB}/collections/{CHROMA_ID}/query").mock(
        return_value=httpx.Response(200, json=chroma_query_body())
    )
    arm = adapter(env, "chroma", base_url=CHROMA)
    with pytest.raises(BadRequest):
        await arm.call(RetrieveRequest("q", "docs", k=2))
    assert await arm.call(RetrieveRequest("q", "docs", k=2)) == EXPECTED_CHROMA
    assert lookup.call_count == 2


@respx.mock
async def test_chroma_unknown_collection_is_a_bad_request(env: ProviderEnv) -> None:
    respx.get(f"{CHROMA_DB}/collections/nope").mock(
        return_value=httpx.Response(
            404, json={"error": "NotFoundError", "message": "Collection [nope] does not exist"}
        )
    )
    with pytest.raises(BadRequest, match="404"):
        await adapter(env, "chroma", base_url=CHROMA).call(RetrieveRequest("q", "nope"))


@respx.mock
async def test_pinned_collection_and_index_and_text_field_options(env: ProviderEnv) -> None:
    respx.post(f"{QDRANT}/collections/kb%2Fv2/points/query").mock(
        return_value=httpx.Response(
            200, json={"result": {"points": [{"id": 5, "score": 0.5, "payload": {"body": "b", "x": 1}}]}}
        )
    )
    qdrant = adapter(env, "qdrant", base_url=QDRANT, options={"collection": "kb/v2", "text_field": "body"})
    assert await qdrant.call(RetrieveRequest("q", "docs")) == [Passage("5", "b", 0.5, {"x": 1})]
    route = respx.post(f"{ES}/wiki/_search").mock(return_value=httpx.Response(200, json=es_search_body(1)))
    es = adapter(env, "elasticsearch", base_url=ES, options={"index": "wiki", "fields": ["body"]})
    await es.call(RetrieveRequest("q", "docs"))
    assert sent(route)[1]["query"]["multi_match"]["fields"] == ["body"]
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_a_collection_is_searched_under_its_remote_name_unless_an_option_pins_one(
    env: ProviderEnv,
) -> None:
    mapped = respx.post(f"{QDRANT}/collections/scifact_v2/points/query").mock(
        return_value=httpx.Response(200, json=qdrant_query_body(1))
    )
    qdrant = adapter(env, "qdrant", base_url=QDRANT, collections={"papers": "scifact_v2"})
    assert [p.id for p in await qdrant.call(RetrieveRequest("q", "papers"))] == ["1"]
    assert mapped.call_count == 1
    index = respx.post(f"{ES}/wiki-2025/_search").mock(
        return_value=httpx.Response(200, json=es_search_body(1))
    )
    es = adapter(env, "elasticsearch", base_url=ES, collections={"wiki": "wiki-2025"})
    await es.call(RetrieveRequest("q", "wiki"))
    lookup = respx.get(f"{CHROMA_DB}/collections/kb_prod").mock(
        return_value=httpx.Response(200, json={"id": "c-9"})
    )
    respx.post(f"{CHROMA_DB}/collections/c-9/query").mock(
        return_value=httpx.Response(200, json=chroma_query_body(1))
    )
    chroma = adapter(env, "chroma", base_url=CHROMA, collections={"kb": "kb_prod"})
    await chroma.call(RetrieveRequest("q", "kb"))
    assert index.call_count == 1 and lookup.call_count == 1
    pinned = respx.post(f"{QDRANT}/collections/pinned/points/query").mock(
        return_value=httpx.Response(200, json=qdrant_query_body(1))
    )
    both = adapter(
        env, "qdrant", base_url=QDRANT, collections={"papers": "scifact_v2"}, options={"collection": "pinned"}
    )
    await both.call(RetrieveRequest("q", "papers"))
    assert pinned.call_count == 1 and mapped.call_count == 1


async def test_bad_options_are_bad_requests(env: ProviderEnv) -> None:
    with pytest.raises(BadRequest, match="mode"):
        await adapter(env, "elasticsearch", base_url=ES, options={"mode": "hybrid"}).call(
            RetrieveRequest("q", "d")
        )
    with pytest.raises(BadRequest, match="api"):
        await adapter(env, "qdrant", base_url=QDRANT, options={"api": "scroll"}).call(
            RetrieveRequest("q", "d")
        )


async def test_missing_embedder_is_unavailable(env: ProviderEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(texts: Sequence[str]) -> np.ndarray:
        raise ModuleNotFoundError("No module named 'sentence_transformers'")

    monkeypatch.setattr(_remote, "embed_texts", broken)
    with pytest.raises(Unavailable, match="embedder"):
        await adapter(env, "qdrant", base_url=QDRANT).call(RetrieveRequest("q", "docs"))


def test_registry_lists_the_remote_types() -> None:
    for type_ in ("chroma", "qdrant", "elasticsearch", "opensearch"):
        assert adapter_class(type_).type == type_


# ---------------------------------------------------------------------------------------------- failures

HTML_PAGE = f"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1>{FAKE_KEY}</body></html>"
ERROR_BODIES = {
    "chroma": {"error": "AuthError", "message": f"Invalid token {FAKE_KEY}"},
    "qdrant": {"status": {"error": f"Invalid api-key {FAKE_KEY}"}, "time": 0.0},
    "elasticsearch": es_error_body("security_exception", f"unable to authenticate with {FAKE_KEY}", 401),
    "opensearch": es_error_body("security_exception", f"unable to authenticate with {FAKE_KEY}", 401),
}
FAILURES = [
    ("401", lambda t: httpx.Response(401, json=ERROR_BODIES[t]), BadRequest),
    ("403", lambda t: httpx.Response(403, json=ERROR_BODIES[t]), BadRequest),
    ("400", lambda t: httpx.Response(400, json=ERROR_BODIES[t]), BadRequest),
    (
        "429",
        lambda t: httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json=es_error_body(
                "es_rejected_execution_exception", "rejected execution of coordinating operation", 429
            )
            if t in ("elasticsearch", "opensearch")
            else {"status": {"error": "Too many requests"}},
        ),
        RateLimited,
    ),
    ("500", lambda t: httpx.Response(500, json=ERROR_BODIES[t]), Unavailable),
    ("503", lambda t: httpx.Response(503, text="Service Unavailable"), Unavailable),
    ("502-html", lambda t: httpx.Response(502, html=HTML_PAGE), Unavailable),
    ("200-html", lambda t: httpx.Response(200, html=HTML_PAGE), BadResponse),
    ("malformed", lambda t: httpx.Response(200, json={"unexpected": [FAKE_KEY]}), BadResponse),
    ("truncated", lambda t: httpx.Response(200, text='{"result": {"points": ['), BadResponse),
    ("connect", lambda t: httpx.ConnectError(f"refused {FAKE_KEY}"), Unavailable),
    ("timeout", lambda t: httpx.ReadTimeout("slow"), Unavailable),
]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("label", "answer", "error"), FAILURES, ids=[f[0] for f in FAILURES])
@respx.mock
async def test_failures_map_to_provider_errors_without_the_key(
    env: ProviderEnv, name: str, label: str, answer: Any, error: type[ProviderError]
) -> None:
    case = CASES[name]
    outcome = answer(case["type"])
    route = respx.post(case["url"])
    if isinstance(outcome, Exception):
        route.mock(side_effect=outcome)
    else:
        route.mock(return_value=outcome)
    with pytest.raises(error) as info:
        await make(env, case).call(RetrieveRequest("where is mars", "docs", k=2))
    assert info.value.provider == f"{case['type']}-arm"
    if label == "429":
        assert info.value.retry_after == 7.0
    assert FAKE_KEY not in all_text(info.value)


@respx.mock
async def test_es_circuit_breaker_429_is_rate_limited(env: ProviderEnv) -> None:
    respx.post(f"{ES}/docs/_search").mock(
        return_value=httpx.Response(
            429, json=es_error_body("circuit_breaking_exception", "[parent] Data too large", 429)
        )
    )
    with pytest.raises(RateLimited) as info:
        await adapter(env, "elasticsearch", base_url=ES).call(RetrieveRequest("q", "docs"))
    assert info.value.retry_after is None


# ---------------------------------------------------------------------------------------------- parsers

json_text = st.text(max_size=20) | st.sampled_from(["", "text", "id", FAKE_KEY])
json_values = json_values_of(json_text)
maybe = shape_or_anything(json_values, weight=2)


def nested(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return maybe(st.lists(maybe(st.lists(maybe(strategy), max_size=3)), max_size=2))


ids = st.integers() | json_text
scores = st.floats(allow_nan=True, allow_infinity=True) | st.integers()
payloads = maybe(st.dictionaries(json_text, json_values, max_size=3))
point = maybe(st.fixed_dictionaries({"id": maybe(ids), "score": maybe(scores), "payload": payloads}))
hit = maybe(st.fixed_dictionaries({"_id": maybe(ids), "_score": maybe(scores), "_source": payloads}))


def chroma_column(n: int, item: st.SearchStrategy) -> st.SearchStrategy:
    """`[[item × n]]` most of the time (one query, columns of equal length), anything otherwise."""
    return maybe(st.lists(maybe(st.lists(item, min_size=n, max_size=n)), min_size=1, max_size=2))


chroma_bodies = st.integers(min_value=0, max_value=3).flatmap(
    lambda n: st.fixed_dictionaries(
        {"ids": chroma_column(n, maybe(ids)), "distances": chroma_column(n, maybe(scores))},
        optional={
            "documents": st.none() | chroma_column(n, st.none() | maybe(json_text)),
            "metadatas": st.none() | chroma_column(n, payloads),
        },
    )
)
BODIES = {
    "chroma": maybe(chroma_bodies),
    "qdrant": maybe(
        st.fixed_dictionaries(
            {"result": maybe(st.fixed_dictionaries({"points": maybe(st.lists(point, max_size=3))}))},
            optional={"status": json_values},
        )
    )
    | maybe(st.fixed_dictionaries({"result": maybe(st.lists(point, max_size=3))})),
    "elasticsearch": maybe(
        st.fixed_dictionaries(
            {"hits": maybe(st.fixed_dictionaries({"hits": maybe(st.lists(hit, max_size=3))}))}
        )
    ),
}
BODIES["opensearch"] = BODIES["elasticsearch"]
PARSE_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_only(type_: str):
    return adapter_class(type_)(spec(type_, f"{type_}-arm"), None)  # type: ignore[arg-type]  # parse needs no env


@pytest.mark.parametrize("type_", list(BODIES))
def test_parse_raises_only_provider_errors(type_: str) -> None:
    arm = parse_only(type_)

    @PARSE_SETTINGS
    @given(body=BODIES[type_], k=st.integers(min_value=0, max_value=5))
    def run(body: Any, k: int) -> None:
        try:
            passages = arm.parse(body, k)
        except ProviderError as exc:
            assert exc.provider == f"{type_}-arm"
            return
        assert len(passages) <= k
        for p in passages:
            assert isinstance(p, Passage)
            assert isinstance(p.id, str) and isinstance(p.text, str) and isinstance(p.metadata, dict)
            assert isinstance(p.score, float) and np.isfinite(p.score)

    run()

"""Search adapters on the wire: Wikipedia against recorded MediaWiki action API answers, ddgs offline."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest
import respx

from providers import BadRequest, BadResponse, ProviderEnv, RateLimited, Unavailable
from providers.search.ddgs import DuckDuckGoSearch
from providers.search.wikipedia import WikipediaSearch
from providers.types import SearchHit, SearchRequest
from tests.providers_support import (
    USER_AGENT,
    adapter,
    free_port,
    spec,
    wiki_error_body,
    wiki_result,
    wiki_search_body,
)

API = "https://en.wikipedia.org/w/api.php"

# Recorded from the shape of https://en.wikipedia.org/w/api.php?action=query&list=search&srsearch=
# nelson%20mandela&srlimit=3&srprop=snippet&format=json&formatversion=2 (snippets as served: searchmatch
# spans and HTML entities).
MANDELA = wiki_search_body(
    [
        wiki_result(
            "Nelson Mandela",
            21492751,
            '<span class="searchmatch">Nelson</span> Rolihlahla <span class="searchmatch">Mandela</span>'
            " (18 July 1918 – 5 December 2013) was a South African anti-apartheid activist &amp; "
            "politician who served as the first president of South Africa",
        ),
        wiki_result(
            "Winnie Madikizela-Mandela",
            158581,
            'Winnie Madikizela-<span class="searchmatch">Mandela</span> was a South African &quot;Mother '
            'of the Nation&quot;, the second wife of <span class="searchmatch">Nelson</span> ',
        ),
        wiki_result(
            "Death of Nelson Mandela",
            41284488,
            'On 5 December 2013, <span class="searchmatch">Nelson</span> '
            '<span class="searchmatch">Mandela</span>, the first President of South Africa&#039;s '
            "democratic era, died",
        ),
    ],
    totalhits=5060,
)


@pytest.fixture
def wiki(env: ProviderEnv) -> WikipediaSearch:
    return adapter(env, "wikipedia", "wiki", timeout_s=5.0)


# ------------------------------------------------------------------------------------------- Wikipedia


@pytest.mark.anyio
async def test_wikipedia_success_strips_html_and_builds_urls(wiki: WikipediaSearch) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.get(API).mock(return_value=httpx.Response(200, json=MANDELA))
        hits = await wiki.call(SearchRequest("nelson mandela", k=3))

    assert hits == [
        SearchHit(
            title="Nelson Mandela",
            url="https://en.wikipedia.org/wiki/Nelson_Mandela",
            snippet="Nelson Rolihlahla Mandela (18 July 1918 – 5 December 2013) was a South African "
            "anti-apartheid activist & politician who served as the first president of South Africa",
            source="wikipedia",
        ),
        SearchHit(
            title="Winnie Madikizela-Mandela",
            url="https://en.wikipedia.org/wiki/Winnie_Madikizela-Mandela",
            snippet='Winnie Madikizela-Mandela was a South African "Mother of the Nation", the second '
            "wife of Nelson",
            source="wikipedia",
        ),
        SearchHit(
            title="Death of Nelson Mandela",
            url="https://en.wikipedia.org/wiki/Death_of_Nelson_Mandela",
            snippet="On 5 December 2013, Nelson Mandela, the first President of South Africa's democratic "
            "era, died",
            source="wikipedia",
        ),
    ]
    for hit in hits:
        assert "<" not in hit.snippet and "&quot;" not in hit.snippet and "&#039;" not in hit.snippet

    assert route.call_count == 1
    sent = route.calls.last.request
    assert sent.method == "GET"
    assert sent.headers["User-Agent"] == USER_AGENT
    params = dict(sent.url.params)
    assert params["srlimit"] == "3"
    assert params["srsearch"] == "nelson mandela"
    assert params["action"] == "query"
    assert params["list"] == "search"
    assert params["format"] == "json"
    assert params["formatversion"] == "2"


@pytest.mark.anyio
@pytest.mark.parametrize("k", [1, 7, 20])
async def test_wikipedia_sends_k_as_srlimit(wiki: WikipediaSearch, k: int) -> None:
    with respx.mock() as router:
        route = router.get(API).mock(return_value=httpx.Response(200, json=wiki_search_body([])))
        await wiki.call(SearchRequest("anything", k=k))
    assert route.calls.last.request.url.params["srlimit"] == str(k)


@pytest.mark.anyio
async def test_wikipedia_url_quotes_special_titles_and_follows_language(env: ProviderEnv) -> None:
    german = adapter(env, "wikipedia", "wiki-de", options={"language": "de"})
    body = wiki_search_body(
        [
            wiki_result("C++", 72038, '<span class="searchmatch">C++</span> ist eine Programmiersprache'),
            wiki_result("Café de Flore", 3047718, 'Das <span class="searchmatch">Café</span>'),
            wiki_result("AC/DC", 1134, "Rockband"),
        ]
    )
    with respx.mock() as router:
        route = router.get("https://de.wikipedia.org/w/api.php").mock(
            return_value=httpx.Response(200, json=body)
        )
        hits = await german.call(SearchRequest("c++", k=3))
    assert route.called
    assert [h.url for h in hits] == [
        "https://de.wikipedia.org/wiki/C%2B%2B",
        "https://de.wikipedia.org/wiki/Caf%C3%A9_de_Flore",
        "https://de.wikipedia.org/wiki/AC/DC",
    ]
    assert hits[0].snippet == "C++ ist eine Programmiersprache"


@pytest.mark.anyio
async def test_wikipedia_base_url_overrides_endpoint(env: ProviderEnv) -> None:
    mirror = adapter(env, "wikipedia", "wiki-mirror", base_url="https://wiki.example.org/w/api.php")
    with respx.mock() as router:
        route = router.get("https://wiki.example.org/w/api.php").mock(
            return_value=httpx.Response(200, json=wiki_search_body([wiki_result("Mirror", 1, "x")]))
        )
        hits = await mirror.call(SearchRequest("mirror", k=1))
    assert route.called
    assert hits[0].title == "Mirror"


@pytest.mark.anyio
async def test_wikipedia_empty_result(wiki: WikipediaSearch) -> None:
    body = {"batchcomplete": True, "query": {"searchinfo": {"totalhits": 0}, "search": []}}
    with respx.mock() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=body))
        assert await wiki.call(SearchRequest("qwxzjvkq nonexistent term", k=5)) == []


@pytest.mark.anyio
async def test_wikipedia_snippet_missing_or_not_text_gives_empty_snippet(wiki: WikipediaSearch) -> None:
    body = wiki_search_body([{"ns": 0, "title": "No snippet", "pageid": 1}, wiki_result("Odd", 2, None)])
    with respx.mock() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=body))
        hits = await wiki.call(SearchRequest("x", k=2))
    assert [(h.title, h.snippet) for h in hits] == [("No snippet", ""), ("Odd", "")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "info"),
    [
        (
            "ratelimited",
            "As an anti-abuse measure, you are limited from performing this action too many times in a "
            "short space of time, and you have exceeded this limit. Please try again in a few minutes.",
        ),
        ("maxlag", "Waiting for 10.64.48.109: 6 seconds lagged."),
    ],
)
async def test_wikipedia_rate_limit_error_in_200_body(wiki: WikipediaSearch, code: str, info: str) -> None:
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(
                200, json=wiki_error_body(code, info), headers={"MediaWiki-API-Error": code}
            )
        )
        with pytest.raises(RateLimited) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.provider == "wiki"
    assert code in caught.value.message


@pytest.mark.anyio
async def test_wikipedia_other_error_in_200_body_is_bad_request(wiki: WikipediaSearch) -> None:
    info = 'Unrecognized value for parameter "srwhat": bogus.'
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(
                200, json=wiki_error_body("badvalue", info), headers={"MediaWiki-API-Error": "badvalue"}
            )
        )
        with pytest.raises(BadRequest) as caught:
            await wiki.call(SearchRequest("x"))
    assert not isinstance(caught.value, RateLimited)
    assert "badvalue" in caught.value.message
    assert "srwhat" in caught.value.message
    assert str(caught.value).startswith("wiki: ")


@pytest.mark.anyio
async def test_wikipedia_429_retry_after_seconds(wiki: WikipediaSearch) -> None:
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(
                429,
                headers={"Retry-After": "120", "Content-Type": "text/html; charset=utf-8"},
                text="<html><body><h1>Too Many Requests</h1></body></html>",
            )
        )
        with pytest.raises(RateLimited) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.retry_after == 120.0
    assert "429" in caught.value.message


@pytest.mark.anyio
async def test_wikipedia_429_retry_after_http_date(wiki: WikipediaSearch) -> None:
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    with respx.mock() as router:
        router.get(API).mock(return_value=httpx.Response(429, headers={"Retry-After": when}))
        with pytest.raises(RateLimited) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.retry_after is not None
    assert 80.0 <= caught.value.retry_after <= 91.0


@pytest.mark.anyio
async def test_wikipedia_429_retry_after_in_the_past_or_absent(wiki: WikipediaSearch) -> None:
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    with respx.mock() as router:
        router.get(API).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": past}),
                httpx.Response(429),
                httpx.Response(429, headers={"Retry-After": "soon"}),
            ]
        )
        retry_afters = []
        for _ in range(3):
            with pytest.raises(RateLimited) as caught:
                await wiki.call(SearchRequest("x"))
            retry_afters.append(caught.value.retry_after)
    assert retry_afters == [0.0, None, None]


@pytest.mark.anyio
async def test_wikipedia_503_is_unavailable(wiki: WikipediaSearch) -> None:
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(
                503, text="upstream connect error", headers={"Content-Type": "text/plain"}
            )
        )
        with pytest.raises(Unavailable) as caught:
            await wiki.call(SearchRequest("x"))
    assert "503" in caught.value.message


@pytest.mark.anyio
async def test_wikipedia_html_error_page_is_unavailable(wiki: WikipediaSearch) -> None:
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Wikimedia Error</title>'
        '</head><body><div class="content"><h1>Error</h1><p>Our servers are currently under '
        "maintenance or experiencing a technical issue. Please try again in a few minutes.</p>"
        "<p>Request from 203.0.113.7 via cp3066 cp3066, Varnish XID 123456789<br>Upstream caches: "
        "cp3066 int<br>Error: 502, Next Hop Connection Failed at 2026-01-01 00:00:00 GMT</p></div>"
        "</body></html>"
    )
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(502, text=page, headers={"Content-Type": "text/html; charset=utf-8"})
        )
        with pytest.raises(Unavailable) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.message == "HTTP 502"  # the HTML page is not copied into the message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b'{"batchcomplete": true, "query": {"search": [',  # truncated
        b"<html><body>OK</body></html>",  # 200 HTML (captive portal, proxy)
        b"",
        b"\xff\xfe\x00garbage",
    ],
)
async def test_wikipedia_malformed_200_body_is_bad_response(wiki: WikipediaSearch, content: bytes) -> None:
    with respx.mock() as router:
        router.get(API).mock(
            return_value=httpx.Response(200, content=content, headers={"Content-Type": "application/json"})
        )
        with pytest.raises(BadResponse) as caught:
            await wiki.call(SearchRequest("x"))
    assert "not JSON" in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        [],
        "search",
        {"batchcomplete": True},
        {"query": {"searchinfo": {"totalhits": 1}}},
        {"query": {"search": {"title": "not a list"}}},
        {"query": {"search": [{"ns": 0, "pageid": 1, "snippet": "no title"}]}},
        {"query": {"search": [{"ns": 0, "title": 42, "pageid": 1}]}},
        {"query": {"search": ["Nelson Mandela"]}},
    ],
)
async def test_wikipedia_wrong_shape_is_bad_response(wiki: WikipediaSearch, body: object) -> None:
    with respx.mock() as router:
        router.get(API).mock(return_value=httpx.Response(200, content=json.dumps(body).encode()))
        with pytest.raises(BadResponse):
            await wiki.call(SearchRequest("x"))


@pytest.mark.anyio
async def test_wikipedia_connection_error_is_unavailable(wiki: WikipediaSearch) -> None:
    with respx.mock() as router:
        router.get(API).mock(
            side_effect=httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
        )
        with pytest.raises(Unavailable) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.message == "cannot reach en.wikipedia.org: ConnectError"


@pytest.mark.anyio
async def test_wikipedia_timeout_is_unavailable(wiki: WikipediaSearch) -> None:
    with respx.mock() as router:
        router.get(API).mock(side_effect=httpx.ReadTimeout("timed out"))
        with pytest.raises(Unavailable) as caught:
            await wiki.call(SearchRequest("x"))
    assert caught.value.message == "timed out after 5 s"


@pytest.mark.anyio
async def test_wikipedia_refused_connection_on_loopback_is_unavailable(env: ProviderEnv) -> None:
    closed = adapter(env, "wikipedia", "wiki-local", base_url=f"http://127.0.0.1:{free_port()}/w/api.php")
    with pytest.raises(Unavailable) as caught:
        await closed.call(SearchRequest("x"))
    assert "cannot reach 127.0.0.1" in caught.value.message


# ------------------------------------------------------------------------------------------------ ddgs


@pytest.mark.anyio
async def test_ddgs_offline_is_unavailable_with_a_short_message(env: ProviderEnv) -> None:
    ddgs = adapter(env, "ddgs", "ddg", timeout_s=5.0)
    try:
        hits = await ddgs.call(SearchRequest("python programming language", k=3))
    except Unavailable as exc:
        assert exc.provider == "ddg"
        assert len(str(exc)) < 200
        assert "DNS" not in exc.message and "Query {" not in exc.message
        assert "network" in exc.message or "reach" in exc.message
    else:  # pragma: no cover - only when this machine happens to be online
        assert all(h.source == "ddgs" for h in hits)
        pytest.skip("the network is reachable here; the offline path was not exercised")


@pytest.mark.anyio
@pytest.mark.parametrize("timeout_s", [5.0, 0.5])
async def test_ddgs_refused_proxy_is_unavailable(env: ProviderEnv, timeout_s: float) -> None:
    """A proxy on a closed loopback port fails every engine deterministically, online or not."""
    ddgs = adapter(
        env,
        "ddgs",
        "ddg",
        timeout_s=timeout_s,
        options={"proxy": f"http://127.0.0.1:{free_port()}", "backend": "duckduckgo"},
    )
    with pytest.raises(Unavailable) as caught:
        await ddgs.call(SearchRequest("python", k=3))
    assert len(str(caught.value)) < 200
    assert caught.value.message == "cannot reach any search engine (network error; is this machine offline?)"


def test_ddgs_parse_good_rows() -> None:
    ddgs = DuckDuckGoSearch(spec("ddgs"), None)  # type: ignore[arg-type]  # parse needs no environment
    rows = [
        {
            "title": "Welcome to <b>Python</b>.org",
            "href": "https://www.python.org/",
            "body": "The official home of the <b>Python</b> Programming Language &amp; community",
        },
        {"title": "Python (programming language)", "href": "https://en.wikipedia.org/wiki/Python"},
        {"href": "https://docs.python.org/3/", "body": "  The  Python\n tutorial  "},
    ]
    assert ddgs.parse(rows) == [
        SearchHit(
            "Welcome to Python.org",
            "https://www.python.org/",
            "The official home of the Python Programming Language & community",
            "ddgs",
        ),
        SearchHit("Python (programming language)", "https://en.wikipedia.org/wiki/Python", "", "ddgs"),
        SearchHit("", "https://docs.python.org/3/", "The Python tutorial", "ddgs"),
    ]
    assert ddgs.parse([]) == []


@pytest.mark.parametrize(
    "rows",
    [
        None,
        {"title": "x", "href": "https://x"},
        "https://x",
        [{"title": "no link", "body": "b"}],
        [{"title": "t", "href": None}],
        [{"title": "t", "href": 7}],
        ["https://x"],
        [{"title": "ok", "href": "https://ok"}, None],
    ],
)
def test_ddgs_parse_bad_rows_is_bad_response(rows: object) -> None:
    ddgs = DuckDuckGoSearch(spec("ddgs"), None)  # type: ignore[arg-type]
    with pytest.raises(BadResponse) as caught:
        ddgs.parse(rows)
    assert caught.value.provider == "ddgs"

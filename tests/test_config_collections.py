"""Retrieve collections in config: which provider serves which collection under which remote name,
the default collection, the catalogue, and a clear error for every way to get it wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_router.config import ConfigError, LoadedConfig, load_config, with_docs
from providers import create_adapter
from providers.types import RetrieveRequest
from tests.providers_support import make_env

FOLDERS = """
auto_providers = false

[collections.docs]
path = "builtin:sample_docs"

[collections.notes]
path = "notes"
"""


def load(tmp_path: Path, text: str) -> LoadedConfig:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path)


def provider(name: str, type_: str, extra: str = "") -> str:
    return f'\n[[tools.retrieve.providers]]\nname = "{name}"\ntype = "{type_}"\n{extra}\n'


def served(loaded: LoadedConfig) -> dict[str, dict[str, str] | None]:
    config = loaded.config
    return {p.name: config.collections_of(p) for p in config.tool("retrieve").providers}


def test_local_arms_serve_every_folder_collection_or_the_listed_ones(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, FOLDERS + provider("bm25", "bm25") + provider("dense", "dense", 'collections = ["notes"]')
    )
    assert served(loaded) == {"bm25": {"docs": "docs", "notes": "notes"}, "dense": {"notes": "notes"}}
    catalogue = loaded.catalogue()
    assert list(catalogue) == ["docs", "notes"]
    assert (catalogue["docs"].kind, catalogue["docs"].arms) == ("folder", ("bm25",))
    assert catalogue["notes"].arms == ("bm25", "dense") and catalogue["notes"].path == tmp_path / "notes"
    assert loaded.config.default_collection() == "docs"


def test_remote_collections_by_name_by_table_and_by_pinned_option(tmp_path: Path) -> None:
    text = (
        FOLDERS
        + provider("bm25", "bm25")
        + provider("qdrant", "qdrant", 'collections = { papers = "scifact_v2" }')
        + provider("chroma", "chroma", 'collections = ["kb", "faq"]')
        + provider("es", "elasticsearch", 'options = { index = "wiki" }')
        + provider("os", "opensearch", 'options = { index = "logs-2025" }')
        + provider("pg", "pgvector", 'options = { table = "public.papers" }')
        + provider("qd-pinned", "qdrant", 'options = { collection = "kb-v2" }')
        + provider("qd-both", "qdrant", 'collections = ["papers"]\noptions = { collection = "kb-v2" }')
        + provider("off", "qdrant", 'enabled = false\ncollections = ["papers", "archive"]')
    )
    loaded = load(tmp_path, text)
    assert served(loaded) == {
        "bm25": {"docs": "docs", "notes": "notes"},
        "qdrant": {"papers": "scifact_v2"},
        "chroma": {"kb": "kb", "faq": "faq"},
        "es": {"wiki": "wiki"},
        "os": {"logs-2025": "logs-2025"},
        "pg": {"public.papers": "public.papers"},
        "qd-pinned": {"kb-v2": "kb-v2"},
        "qd-both": {"papers": "kb-v2"},  # the pinned option wins over the name, as in the adapter
        "off": {"papers": "papers", "archive": "archive"},
    }
    catalogue = loaded.catalogue()
    assert list(catalogue) == [
        "docs",
        "notes",
        "papers",
        "kb",
        "faq",
        "wiki",
        "logs-2025",
        "public.papers",
        "kb-v2",
        "archive",
    ]
    papers = catalogue["papers"]
    assert (papers.kind, papers.path, papers.arms, papers.disabled_arms) == (
        "remote",
        None,
        ("qdrant", "qd-both"),
        ("off",),
    )
    assert (catalogue["archive"].arms, catalogue["archive"].disabled_arms) == ((), ("off",))
    assert catalogue["papers"].view() == {
        "kind": "remote",
        "path": None,
        "providers": ["qdrant", "qd-both"],
        "disabled_providers": ["off"],
    }


def test_the_default_collection(tmp_path: Path) -> None:
    remote_only = "auto_providers = false\n" + provider("q", "qdrant", 'collections = ["papers", "kb"]')
    assert load(tmp_path, remote_only).config.default_collection() == "papers"
    chosen = FOLDERS + '[tools.retrieve]\ndefault_collection = "papers"\n'
    chosen += provider("bm25", "bm25") + provider("q", "qdrant", 'collections = ["papers"]')
    assert load(tmp_path, chosen).config.default_collection() == "papers"
    assert load(tmp_path, "auto_providers = false\n").config.default_collection() is None


def test_the_spec_carries_the_mapping_and_search_providers_serve_anything(tmp_path: Path) -> None:
    text = (
        FOLDERS + provider("bm25", "bm25") + provider("qdrant", "qdrant", 'collections = { papers = "sf" }')
    )
    text += '\n[[tools.search.providers]]\nname = "w"\ntype = "wikipedia"\n'
    config = load(tmp_path, text).config
    qdrant, bm25 = config.tool("retrieve").providers[1], config.tool("retrieve").providers[0]
    spec = qdrant.spec(config.collections_of(qdrant))
    assert spec.collections == {"papers": "sf"} and spec.remote_name("papers") == "sf"
    env = make_env(None)  # type: ignore[arg-type]  # no call is made
    assert create_adapter(spec, env).serves(RetrieveRequest("q", "papers"))
    assert not create_adapter(spec, env).serves(RetrieveRequest("q", "docs"))
    local = create_adapter(bm25.spec(config.collections_of(bm25)), env)
    assert local.serves(RetrieveRequest("q", "notes")) and not local.serves(RetrieveRequest("q", "papers"))
    wiki = config.tool("search").providers[0]
    assert config.collections_of(wiki) is None and wiki.spec(None).collections is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[tools.search.providers]]\nname = "w"\ntype = "wikipedia"\ncollections = ["docs"]\n',
            "provider 'w': only retrieve providers serve `collections`; "
            "remove it from this `search` provider",
        ),
        (
            FOLDERS + provider("bm25", "bm25", 'collections = ["docs", "papers"]'),
            "provider 'bm25' (bm25) lists 'papers', which is not a folder collection; "
            "the folder collections are: docs, notes",
        ),
        (
            "auto_providers = false\n" + provider("bm25", "bm25", 'collections = ["docs"]'),
            "provider 'bm25' (bm25) lists 'docs', which is not a folder collection; the folder "
            'collections are: (none; add [collections.NAME] path = "FOLDER")',
        ),
        (
            FOLDERS + provider("dense", "dense", 'collections = { docs = "x" }'),
            "provider 'dense' (dense) searches folder collections under their own names: list them, "
            'e.g. collections = ["docs"]',
        ),
        (
            FOLDERS + provider("q", "qdrant"),
            "provider 'q' (qdrant) names no collection: add collections = [\"NAME\"] (NAME being the "
            'remote collection too) or collections = { NAME = "REMOTE_COLLECTION" }',
        ),
        (
            FOLDERS + provider("e", "elasticsearch"),
            "provider 'e' (elasticsearch) names no collection: add collections = [\"NAME\"] (NAME being "
            'the remote index too) or collections = { NAME = "REMOTE_INDEX" }',
        ),
        (
            FOLDERS + provider("p", "pgvector", 'base_url = "postgresql://db/x"'),
            "provider 'p' (pgvector) names no collection: add collections = [\"NAME\"] (NAME being the "
            'remote table too) or collections = { NAME = "REMOTE_TABLE" }',
        ),
        (
            FOLDERS + provider("q", "qdrant", 'options = { collection = "my docs" }'),
            "provider 'q': its collection 'my docs' cannot be a collection name "
            "(letters, digits, '.', '_' and '-'); name it: collections = { NAME = \"my docs\" }",
        ),
        (
            FOLDERS + provider("q", "qdrant", 'collections = ["notes"]'),
            "provider 'q': 'notes' is a folder collection ([collections.notes]), searched by the local "
            'providers; give the remote one its own name, e.g. collections = { notes-qdrant = "notes" }',
        ),
        (
            FOLDERS + provider("q", "qdrant", 'collections = ["a b"]'),
            "provider 'q': collection 'a b' may only hold letters, digits, '.', '_' and '-'",
        ),
        (
            FOLDERS + provider("q", "qdrant", 'collections = { papers = "" }'),
            "provider 'q': collection 'papers' maps to an empty remote name",
        ),
        (
            FOLDERS + provider("q", "qdrant", "collections = []"),
            "provider 'q': `collections` is empty; list what it serves, or set enabled = false",
        ),
        (
            FOLDERS + provider("q", "qdrant", 'collections = ["kb", "kb"]'),
            "provider 'q' lists collection 'kb' twice",
        ),
        (
            '[tools.search]\ndefault_collection = "docs"\n',
            "[tools.search] default_collection: only retrieve has collections",
        ),
        (
            FOLDERS + '[tools.retrieve]\ndefault_collection = "papers"\n' + provider("bm25", "bm25"),
            "[tools.retrieve] default_collection 'papers' is not a collection; use one of: docs, notes",
        ),
        (
            '[collections."my docs"]\npath = "x"\n',
            "collection name 'my docs' may only hold letters, digits, '.', '_' and '-'",
        ),
    ],
)
def test_collection_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert message in str(info.value)


def test_docs_folders_come_first_and_the_first_is_the_default(tmp_path: Path, notes_dir: Path) -> None:
    text = FOLDERS + '[tools.retrieve]\ndefault_collection = "papers"\n'
    text += provider("bm25", "bm25") + provider("q", "qdrant", 'collections = ["papers"]')
    loaded = with_docs(load(tmp_path, text), [str(notes_dir)])
    assert loaded.config.default_collection() == "notes"
    catalogue = loaded.catalogue()
    assert list(catalogue) == ["notes", "docs", "papers"]
    assert catalogue["notes"].path == notes_dir and catalogue["notes"].arms == ("bm25",)
    assert with_docs(load_config(), [str(notes_dir)]).config.default_collection() == "notes"


def test_a_docs_folder_named_like_a_remote_collection_is_refused(tmp_path: Path) -> None:
    papers = tmp_path / "papers"
    papers.mkdir()
    loaded = load(tmp_path, FOLDERS + provider("q", "qdrant", 'collections = ["papers"]'))
    with pytest.raises(ConfigError, match="--docs: provider 'q': 'papers' is a folder collection"):
        with_docs(loaded, [str(papers)])

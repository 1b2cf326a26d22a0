"""Configuration: the built-in default works alone; every mistake is named by key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcp_router.config import ConfigError, load_config, with_docs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_builtin_default_serves_retrieve_and_llm_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    loaded = load_config()
    assert loaded.source == "built-in default"
    config = loaded.config
    assert [p.name for p in config.tool("retrieve").enabled_providers()] == ["bm25", "dense", "hybrid"]
    assert [p.type for p in config.tool("llm_complete").enabled_providers()] == ["llamacpp", "llamacpp"]
    assert config.tool("llm_complete").providers[-1].disabled_reason() == (
        "environment variable OPENAI_API_KEY is not set"
    )
    ((name, folder),) = loaded.collection_folders()
    assert name == "docs" and any(folder.glob("*.md"))


def test_keyed_provider_turns_on_when_its_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    names = [p.name for p in load_config().config.tool("llm_complete").enabled_providers()]
    assert "openai" in names


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[collections.mine]\npath = "notes"\n')
    monkeypatch.setenv("MCP_ROUTER_CONFIG", str(path))
    loaded = load_config()
    assert loaded.source == str(path)
    assert loaded.collection_folders() == [("mine", tmp_path / "notes")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tools.search]\nmax_atempts = 3\n", "tools.search.max_atempts (line 2): unknown key"),
        (
            '[tools.search]\n\n[[tools.search.providers]]\nname = "w"\ntype = "wikipedia"\ntimeout_s = -1\n',
            "tools.search.providers.0.timeout_s (line 6): Input should be greater than 0",
        ),
        ('[[tools.search.providers]]\nname = "x"\ntype = "brave-ish"\n', "unknown provider type 'brave-ish'"),
        ('[[tools.search.providers]]\nname = "b"\ntype = "bm25"\n', "serves `retrieve`, not `search`"),
        ('[tools.web]\nrouter = "round-robin"\n', "tools.web"),
        ('[tools.search]\nrouter = "oracle"\n', "tools.search.router (line 2): unknown router 'oracle'"),
        (
            "[tools.search.lqm]\nalfa = 0.5\n",
            "unknown parameter(s) ['alfa']; known: ['additive_alpha', 'alpha'",
        ),
        ("[tools.search.guards]\nbreaker_fails = 3\n", "unknown parameter(s) ['breaker_fails']"),
        ("database = \n", "TOML syntax error"),
        (
            '[[tools.search.providers]]\nname = "a"\ntype = "wikipedia"\n[[tools.search.providers]]\n'
            'name = "a"\ntype = "ddgs"\n',
            "provider name 'a' appears twice",
        ),
    ],
)
def test_invalid_config_names_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value)
    assert str(tmp_path / "c.toml") in str(info.value)


def test_pasted_key_in_api_key_env_is_rejected_without_echo(tmp_path: Path) -> None:
    secret = "sk-proj-ABCDEF0123456789-not-a-name!"
    text = f'[[tools.llm_complete.providers]]\nname = "o"\ntype = "openai"\napi_key_env = "{secret}"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "NAME of an environment variable" in str(info.value)
    assert secret not in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")


def test_docs_folder_becomes_default_collection(tmp_path: Path, notes_dir: Path) -> None:
    loaded = with_docs(load_config(), [str(notes_dir)])
    assert [name for name, _ in loaded.collection_folders()] == ["notes", "docs"]
    with pytest.raises(ConfigError, match="not a folder"):
        with_docs(load_config(), [str(tmp_path / "missing")])


def test_cli_reports_invalid_config_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[tools.search]\ntimeout = 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "tools.search.timeout (line 2): unknown key" in done.stderr


def test_judge_is_the_strongest_provider_that_reaches_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert load_config().config.judge_provider() is None  # only the packaged models: they grade at chance
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    assert load_config().config.judge_provider().name == "openai"


def test_without_a_hosted_key_the_local_judge_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = load_config().config
    assert config.local_judge() and config.judge_provider() is None  # search/retrieve: local; llm: none
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    config = load_config().config
    assert not config.local_judge() and config.judge_provider().name == "openai"  # the LLM for every tool


def test_the_local_judge_named_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    keyed = (
        '[[tools.llm_complete.providers]]\nname = "openai"\ntype = "openai"\nmodel = "gpt-4o-mini"\n'
        'api_key_env = "OPENAI_API_KEY"\nquality_prior = 0.7\n'
    )
    config = load_config(write(tmp_path, keyed + '[judge]\nprovider = "local"\n')).config
    assert config.local_judge()  # search and retrieve, even with a hosted key
    assert config.judge_provider().name == "openai"  # llm_complete keeps its LLM judge
    config = load_config(write(tmp_path, keyed + '[judge]\nprovider = "openai"\n')).config
    assert not config.local_judge() and config.judge_provider().name == "openai"
    config = load_config(write(tmp_path, '[judge]\nprovider = "local"\nenabled = false\n')).config
    assert not config.local_judge() and config.judge_provider() is None


def test_a_named_judge_is_used_whatever_its_prior(tmp_path: Path) -> None:
    text = (
        '[[tools.llm_complete.providers]]\nname = "tiny"\ntype = "llamacpp"\nmodel = "smollm2-135m"\n'
        '[judge]\nprovider = "tiny"\n'
    )
    config = load_config(write(tmp_path, text)).config
    assert config.judge_provider().name == "tiny" and not config.local_judge()


def test_keyed_providers_join_when_their_variable_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-anything")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-anything")
    llm = load_config().config.tool("llm_complete")
    groq = next(p for p in llm.enabled_providers() if p.name == "groq")
    assert groq.spec().base_url == "https://api.groq.com/openai/v1" and groq.api_key_env == "GROQ_API_KEY"
    assert "openrouter" in [p.name for p in llm.enabled_providers()]
    # the config's own entry of that name wins, so a user can switch one off ...
    off = write(
        tmp_path, '[[tools.llm_complete.providers]]\nname = "groq"\ntype = "openai"\nenabled = false\n'
    )
    assert load_config(off).config.tool("llm_complete").providers[0].disabled_reason() == "disabled in config"
    # ... or all of them
    none = write(tmp_path, "auto_providers = false\n")
    assert load_config(none).config.tool("llm_complete").providers == []


def test_default_model_pool_is_the_local_models_plus_keyed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = load_config().config
    assert [m.name for m in config.model_pool()] == ["smollm2-135m", "gemma3-270m", "gpt-4o-mini"]
    serving = config.serving_pool()
    assert [(m.name, m.endpoints, m.context_window) for m in serving] == [
        ("smollm2-135m", ("smollm2-135m-local",), 2048),
        ("gemma3-270m", ("gemma3-270m-local",), 2048),
    ]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    keyed = load_config().config.serving_pool()[-1]
    assert (keyed.name, keyed.input_cost_per_token, keyed.context_window) == ("gpt-4o-mini", 1.5e-7, 128000)


def test_explicit_models_take_the_dearest_endpoint_price(tmp_path: Path) -> None:
    text = """
[[tools.llm_complete.providers]]
name = "a"
type = "openai"
model = "m"
input_cost_per_token = 1e-6
output_cost_per_token = 2e-6

[[tools.llm_complete.providers]]
name = "b"
type = "openai"
model = "m"
input_cost_per_token = 3e-6
output_cost_per_token = 1e-6
context_window = 8000

[[tools.llm_complete.models]]
name = "shared"
endpoints = ["a", "b"]
quality_prior = 0.6
knowledge_cutoff = "2025-01-31"
"""
    ((model,),) = [load_config(write(tmp_path, text)).config.model_pool()]
    assert model.endpoints == ("a", "b") and model.context_window == 8000
    assert (model.input_cost_per_token, model.output_cost_per_token) == (3e-6, 2e-6)
    assert model.quality_prior == 0.6 and model.knowledge_cutoff == "2025-01-31"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[tools.llm_complete.models]]\nname = "x"\nendpoints = ["nope"]\n',
            "endpoints ['nope'] are not llm_complete providers",
        ),
        (
            '[tools.llm_complete.mtrouter]\nfallback_model = "ghost"\n',
            "mtrouter.fallback_model 'ghost' is not a model of the pool",
        ),
        ("[tools.llm_complete.mtrouter]\nbeta = 1.5\n", "beta"),
        ('[[tools.search.models]]\nname = "x"\nendpoints = ["y"]\n', "only llm_complete has a model pool"),
    ],
)
def test_model_pool_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, text))

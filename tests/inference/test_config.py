"""The model registry (PARLEY_MODELS): what it accepts, and each refusal naming where and what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.config import (
    DEFAULT_CHAT_NAME,
    InferenceConfig,
    LocalModel,
    UpstreamModel,
    default_registry,
    read_registry,
)
from inference.errors import InferenceError

UPSTREAM = {"name": "team-llama", "kind": "openai", "base_url": "http://gpu:8000/v1/", "model": "llama-3.1-8b"}


def test_unset_it_is_exactly_the_one_local_model_of_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_MODELS", raising=False)
    monkeypatch.delenv("PARLEY_CHAT_MODEL", raising=False)
    registry = InferenceConfig.from_env().models
    assert registry.models == (LocalModel(name=DEFAULT_CHAT_NAME, path=""),)
    assert registry.default == DEFAULT_CHAT_NAME
    # a configured chat folder is that one model, under the folder's name
    monkeypatch.setenv("PARLEY_CHAT_MODEL", "/models/Qwen2.5-0.5B-Instruct")
    assert InferenceConfig.from_env().models == default_registry("/models/Qwen2.5-0.5B-Instruct")
    assert InferenceConfig.from_env().models.names == ("Qwen2.5-0.5B-Instruct",)


def test_json_in_the_variable_lists_models_with_their_options(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "default": "team-llama",
        "models": [
            {"name": "small", "kind": "local"},
            {**UPSTREAM, "context_length": 8192, "api_key_env": "TEAM_KEY", "max_concurrency": 16, "timeout": 20},
        ],
    }
    monkeypatch.setenv("PARLEY_MODELS", json.dumps(document))
    monkeypatch.setenv("TEAM_KEY", "sk-secret")
    registry = InferenceConfig.from_env().models
    assert registry.names == ("small", "team-llama")
    assert registry.default == "team-llama"
    upstream = registry.get("team-llama")
    assert isinstance(upstream, UpstreamModel)
    assert (upstream.base_url, upstream.model, upstream.context_length) == ("http://gpu:8000/v1", "llama-3.1-8b", 8192)
    assert (upstream.max_concurrency, upstream.timeout, upstream.retries) == (16, 20, 2)
    assert upstream.api_key() == "sk-secret"
    assert "sk-secret" not in repr(registry)  # the key is read from the environment, never kept
    assert registry.resolve("") is upstream  # a conversation naming none gets the default
    assert registry.resolve("gone") is None


def test_a_toml_file_and_the_first_model_as_default(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "small"\nkind = "local"\npath = "/models/small"\n\n'
        '[[models]]\nname = "big"\nkind = "openai"\nbase_url = "https://llm.example/v1"\nmodel = "big"\n'
        "context_length = 32768\n"
    )
    registry = read_registry(str(path))
    assert registry.default == "small"
    assert registry.get("small") == LocalModel(name="small", path="/models/small")
    assert registry.source == f"PARLEY_MODELS file {path}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"models": [{"name": "a", "kind": "local"}', "PARLEY_MODELS is not valid JSON"),
        ('{"models": []}', "PARLEY_MODELS lists no models"),
        ('[{"name": "a", "kind": "local"}]', 'PARLEY_MODELS must be an object with a "models" list'),
        ('{"models": [{"name": "a", "kind": "vllm"}]}', "PARLEY_MODELS, model 1 (a): kind 'vllm' is not one of"),
        ('{"models": [{"name": "a"}]}', "PARLEY_MODELS, model 1 (a): kind None is not one of local, openai"),
        (
            '{"models": [{"name": "a", "kind": "local"}, {"name": "a", "kind": "local", "path": "/m"}]}',
            "PARLEY_MODELS, model 2: the name 'a' is used twice",
        ),
        (
            json.dumps({"models": [{**UPSTREAM, "base_url": "", "context_length": 2048}]}),
            "PARLEY_MODELS, model 1 (team-llama): an openai model needs base_url",
        ),
        (json.dumps({"models": [UPSTREAM]}), "model 1 (team-llama): an openai model needs context_length"),
        (
            json.dumps({"models": [{**UPSTREAM, "base_url": "gpu:8000", "context_length": 2048}]}),
            "base_url 'gpu:8000' must start with http:// or https://",
        ),
        (
            json.dumps({"models": [{**UPSTREAM, "context_length": "8k"}]}),
            "model 1 (team-llama): context_length = '8k' is not a whole number",
        ),
        (
            json.dumps({"models": [{**UPSTREAM, "context_length": 2048, "timeout": 0}]}),
            "timeout = 0 must be above 0",
        ),
        ('{"models": [{"name": "a", "kind": "local", "url": "x"}]}', "model 1 (a): unknown options url"),
        ('{"models": [{"name": "", "kind": "local"}]}', "model 1: a model needs a name of 1 to 100 characters"),
        (
            '{"default": "b", "models": [{"name": "a", "kind": "local"}]}',
            "PARLEY_MODELS: the default 'b' is not one of the models listed",
        ),
        ("models.yaml", "is neither JSON nor the path of a .json or .toml file"),
        ("/nowhere/models.json", "PARLEY_MODELS file /nowhere/models.json cannot be read"),
    ],
)
def test_bad_values_are_refused_naming_the_variable_and_the_entry(value: str, message: str) -> None:
    with pytest.raises(InferenceError) as refused:
        read_registry(value)
    assert message in str(refused.value)


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text("[[models]\nname = 'a'\n")
    with pytest.raises(InferenceError, match=f"PARLEY_MODELS file {path} is not valid TOML"):
        read_registry(str(path))

"""The models' settings are read once, by inference/config.py, into PARLEY_INFERENCE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from inference.config import InferenceConfig


def test_the_web_project_loads_models_with_the_inference_packages_own_settings() -> None:
    assert isinstance(settings.PARLEY_INFERENCE, InferenceConfig)
    assert InferenceConfig.from_env() == settings.PARLEY_INFERENCE
    # no second reading of the same variables that could disagree with the first
    for name in ("PARLEY_MODELS_DIR", "PARLEY_CHAT_MODEL", "PARLEY_DEVICE", "PARLEY_DTYPE"):
        assert not hasattr(settings, name)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PARLEY_DTYPE", "fp8", "PARLEY_DTYPE='fp8' must be one of auto, float32, bfloat16, float16"),
        ("PARLEY_CHAT_QUANTIZE", "int4", "PARLEY_CHAT_QUANTIZE='int4' must be one of none, int8"),
        ("PARLEY_PREFIX_CACHE_MB", "lots", "PARLEY_PREFIX_CACHE_MB='lots' must be a whole number"),
        ("PARLEY_MODELS", '{"models": [', "PARLEY_MODELS is not valid JSON"),
        ("PARLEY_MODELS", '{"models": [{"name": "x", "kind": "tgi"}]}', "model 1 (x): kind 'tgi' is not one of"),
        (
            "PARLEY_MODELS",
            '{"models": [{"name": "x", "kind": "openai", "model": "m", "context_length": 4096}]}',
            "PARLEY_MODELS, model 1 (x): an openai model needs base_url",
        ),
        (
            "PARLEY_MODELS",
            '{"models": [{"name": "x", "kind": "local"}, {"name": "x", "kind": "local"}]}',
            "PARLEY_MODELS, model 2: the name 'x' is used twice",
        ),
        ("PARLEY_SUMMARY_MODEL", "nope", "PARLEY_SUMMARY_MODEL='nope' is no model of PARLEY_MODELS"),
        ("PARLEY_USER_DAILY_TOKENS", "-5", "PARLEY_USER_DAILY_TOKENS"),
    ],
)
def test_a_bad_model_setting_stops_the_web_project_with_the_variables_name(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), name: value}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "configuration error" in result.stderr
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra", "backend", "configured"),
    [
        ({}, "django.core.mail.backends.dummy.EmailBackend", "False"),
        ({"EMAIL_HOST": "smtp.example.com"}, "django.core.mail.backends.smtp.EmailBackend", "True"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "console.EmailBackend", "True"),
    ],
)
def test_mail_is_sent_only_through_a_backend_the_operator_configured(
    tmp_path: Path, extra: dict[str, str], backend: str, configured: str
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")}
    env.update(PARLEY_VAR_DIR=str(tmp_path), **extra)
    show = "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.PARLEY_MAIL_CONFIGURED)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show], env=env, capture_output=True, text=True, check=True
    )
    shown_backend, shown_configured = result.stdout.splitlines()[-1].split()
    assert shown_backend.endswith(backend)
    assert shown_configured == configured

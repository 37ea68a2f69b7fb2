"""A URL's password never reaches what is printed; everything else of the URL does."""

from __future__ import annotations

import pytest

from webapp.masking import masked
from webapp.redis_urls import InvalidRedisUrl, derive_redis_urls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgres://parley:s3cret@db.internal:5432/parley", "postgres://parley:***@db.internal:5432/parley"),
        ("redis://:s3cret@cache:6379", "redis://:***@cache:6379"),
        ("rediss://default:s3%40cret@cache:6380/0", "rediss://default:***@cache:6380/0"),
        ("broker redis://:s3@cret@cache:6379/1 is down", "broker redis://:***@cache:6379/1 is down"),
        (
            "postgres://parley@db/parley?sslmode=require&password=s3cret",
            "postgres://parley@db/parley?sslmode=require&password=***",
        ),
        ("REDIS_URL='redis://:s3cret@' names no host", "REDIS_URL='redis://:***@' names no host"),
    ],
)
def test_a_urls_password_is_masked_and_the_rest_kept(text: str, shown: str) -> None:
    assert masked(text) == shown


@pytest.mark.parametrize(
    "text",
    ["postgres://parley@db.internal/parley", "unix:///var/redis.sock?db=0", "open http://127.0.0.1:8000/", "no url"],
)
def test_text_without_a_password_is_unchanged(text: str) -> None:
    assert masked(text) == text


def test_a_refused_redis_url_is_named_without_its_password() -> None:
    with pytest.raises(InvalidRedisUrl) as refused:
        derive_redis_urls("redis://:s3cret@")
    assert "s3cret" not in str(refused.value)
    assert "redis://:***@" in str(refused.value)

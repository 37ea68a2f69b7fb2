from __future__ import annotations

# the real web server, API keys and generation workers (a local model's and an upstream's),
# for the /metrics and /readyz tests
from tests.webapp.api.conftest import key_of, model, start_web  # noqa: F401
from tests.webapp.chat.conftest import start_upstream_worker, start_worker  # noqa: F401

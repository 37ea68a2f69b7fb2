from __future__ import annotations

# the real web server, API keys and a generation worker, for the /metrics and /readyz tests
from tests.webapp.api.conftest import key_of, model, start_web  # noqa: F401
from tests.webapp.chat.conftest import start_worker  # noqa: F401

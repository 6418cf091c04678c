"""Fixtures for the dyno scenarios: a build cache shared by the session, and `boot`, which
builds a fixture app, boots it as a dyno and always tears it down, printing its log when a
test fails (pytest shows captured output of failed tests)."""

from __future__ import annotations

from pathlib import Path

import harness
import pytest
from scenario import APP_FILES, APPS, CONFIG


@pytest.fixture(scope="session")
def dyno_machine() -> None:
    reason = harness.unsupported_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One CACHE_DIR for every build of the session, as the platform keeps an app's cache.
    return tmp_path_factory.mktemp("dyno-build-cache")


@pytest.fixture
def boot(dyno_machine: None, build_cache: Path):
    """boot(app, command, config=..., **dyno options) -> a running harness.Dyno."""
    sessions: list[harness.run] = []

    def start(app: str, command: str, config: dict | None = None, **options: object):
        session = harness.run(
            APPS / app,
            command,
            config={**CONFIG, **(config or {})},
            cache_dir=build_cache,
            app_files=APP_FILES,
            **options,
        )
        sessions.append(session)
        return session.__enter__().dyno

    yield start
    for session in reversed(sessions):
        try:
            if session.dyno is not None:
                print(f"--- log of {session.app_dir.name} ({session.command}):")
                print(session.dyno.log_text())
        finally:
            session.__exit__(None, None, None)

"""Schemathesis against the real service's /api/openapi.json: no 5xx, schema-true answers.

Needs `schemathesis` (a dev dependency); skipped when it is not installed.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.harness import figure  # noqa: E402
from tests.fakes.tile_server import ThreadedTileServer  # noqa: E402
from tests.process import ServiceProcess, free_port, service_env  # noqa: E402

pytestmark = pytest.mark.e2e
EXAMPLES = 150  # per operation
ENDLESS = {"/api/events"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The real service (demo inventory, local tiles) for the whole module."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with ThreadedTileServer() as tiles:
        env = service_env(tmp / "ontwatch.db", free_port(), ONTWATCH_TILE_URL=tiles.url_template)
        svc = ServiceProcess(env, "--demo", log=tmp / "service.log")
        yield svc
        svc.stop()


def snapshot(base: str) -> str:
    """Everything a write could change: the inventory with state, and the notifications."""
    parts = []
    for path in ("/api/onts", "/api/notifications?limit=1000"):
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            parts.append(json.loads(resp.read()))
    return json.dumps(parts, sort_keys=True)


def test_api_survives_generated_requests(service: ServiceProcess) -> None:
    """No 5xx; status, content type and body match the document; rejected writes change nothing."""
    schema = schemathesis.openapi.from_url(f"{service.base}/api/openapi.json")
    # The event stream never ends (a case would wait out its timeout); tests/web/test_events.py
    # reads it frame by frame, and its OpenAPI event schema is checked there.
    operations = [op.ok() for op in schema.get_all_operations() if op.ok().path not in ENDLESS]
    assert len(operations) >= 16
    seen: dict[str, int] = {}
    rejected_writes = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def run(case: Any) -> None:
            nonlocal rejected_writes
            write = case.method.upper() in {"POST", "DELETE"}
            before = snapshot(service.base) if write else None
            response = case.call_and_validate(base_url=service.base, checks=CHECKS, timeout=30)
            name = f"{case.method.upper()} {case.operation.path}"
            seen[name] = seen.get(name, 0) + 1
            if write and 400 <= response.status_code < 500:
                rejected_writes += 1
                after = snapshot(service.base)
                assert after == before, f"{name} answered {response.status_code} but changed state"

        run()
    total = sum(seen.values())
    figure(
        "FUZZ schemathesis",
        operations=len(seen),
        cases=total,
        rejected_writes_unchanged=rejected_writes,
    )
    assert len(seen) == len(operations)

"""Schemathesis against the live app's /openapi.json, once per role and once
without a token, in process (one app per run, its lifespan shared by the run).

Each run sends the role's real access token. Operations the role may call
(its token holds the scope the operation's security requirement names) get
FULL examples, positive and negative; the others get FEW, enough to show
they answer 401/403 problems. Public operations (OAuth, metadata, health,
platform pushes) get FULL in the run without a token; the role runs send them
the same derandomized cases plus an Authorization header, so FEW there.
Operations without parameters or body have fewer distinct cases than FULL.

A valid token answered with 401 fails the run: Schemathesis' `missing_auth`
warning made an error. `ignored_auth` checks that each declared security
requirement is enforced, and the last test that each role's operations
answered it with a 2xx at least once (dictionaries of existing ids make that
likely), so no run passes by being refused throughout.

Not fuzzed: the dashboard's HTML routes (not in the document). Platform pushes
are fuzzed unsigned (401 or the platform's own error answer), never behind a
valid signature. The alerts' SSE stream runs with a 0.1 s read timeout and one
event, so it cannot hang the run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app
from gateway.errors import PROBLEM_MEDIA_TYPE
from gateway.identity.clients import DEFAULT_SCOPES
from tests.fuzz.conftest import ROLES, World

FULL, FEW = 50, 3
SEED = 20_260_901
STREAM = "GET /v1/alerts/stream"
SECTIONS = ["basic", "licenses", "penalties", "lists", "tax", "judicial", "loans"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]

# Operations whose success generated input cannot reach, and where it is tested instead.
REACHED_ELSEWHERE = {
    # A valid application is a repairable penalty, the commitment's current hash and a
    # real PDF/JPEG/PNG in base64: tests/repairs/test_api.py files them.
    ("platform", "POST /v1/repairs"),
}
# Answers per (role, operation) and status class, for the check that follows the runs.
ANSWERS: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
# Operations a role holds the scope for but is still refused by design.
REFUSED_BY_DESIGN = {
    ("platform", "POST /v1/records/{category}"),  # departments deliver records
    ("department", "POST /v1/repairs"),  # platforms file repair applications
    ("platform", "POST /v1/records/{category}/{record_id}/disputes/{dispute_id}/resolve"),
}

schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.serializer("application/jose")
def as_jose(ctx: Any, value: Any) -> bytes:
    """A compact JWS: the generated string as it is (anything else as JSON)."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@schemathesis.serializer("application/x-ndjson", "application/ndjson")
def as_ndjson(ctx: Any, value: Any) -> bytes:
    """A batch: a string as it is, a list one JSON value a line, anything else one line."""
    if isinstance(value, str):
        return value.encode()
    lines = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines)


@pytest.fixture(params=[*ROLES, None], ids=[*ROLES, "no-token"], scope="session")
def role(request: pytest.FixtureRequest) -> str | None:
    return request.param  # type: ignore[no-any-return]


def required_scopes(document: dict[str, Any]) -> dict[str, set[str]]:
    """Operation label → the scopes its security requirement names (empty: public)."""
    found = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            scopes = {s for req in operation.get("security", []) for v in req.values() for s in v}
            found[f"{method.upper()} {path}"] = scopes
    return found


def _toml_list(values: list[Any]) -> str:
    return json.dumps(values, ensure_ascii=False)


def fuzz_config(world: World, role: str | None, few: list[str]) -> SchemathesisConfig:
    dictionaries: dict[str, list[Any]] = {
        "codes": world.credit_codes,
        "consents": world.for_role(world.consent_ids, role),
        "sections": SECTIONS,
        "valid_until": [(datetime.now(UTC) + timedelta(days=30)).isoformat()],
        "alerts": world.alert_ids,
        "records": world.for_role(world.record_ids, role),
        "disputes": world.dispute_ids,
        "categories": world.categories,
        "grantees": world.grantees,
        "revisions": ["0"],
        "reports": world.report_ids,
        "repairs": world.repair_ids,
        "evidence": world.evidence_ids,
    }
    bindings = {
        "path.credit_code": "codes",
        "query.credit_code": "codes",
        "body.credit_code": "codes",
        "body.grantee": "grantees",
        "body.scopes[*]": "sections",
        "body.valid_until": "valid_until",
        "header.Consent-Id": "consents",
        "path.consent_id": "consents",
        "path.alert_id": "alerts",
        "path.record_id": "records",
        "path.dispute_id": "disputes",
        "path.report_id": "reports",
        "path.application_id": "repairs",
        "path.evidence_id": "evidence",
        "path.category": "categories",
        "header.Last-Event-ID": "revisions",
    }
    lines = [
        f"seed = {SEED}",
        "[generation]",
        'mode = "all"',
        "deterministic = true",
        # The token is ours to send; generated Authorization values would replace it.
        "with-security-parameters = false",
        'database = "none"',
        f"max-examples = {FULL}",
        "[phases.examples]",
        "enabled = true",
        "[phases.coverage]",
        "enabled = false",
        "[phases.stateful]",
        "enabled = false",
        "[dictionaries]",
        *(f"{name}.values = {_toml_list(values)}" for name, values in dictionaries.items()),
        "[parameters]",
        *(
            f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'
            for key, name in bindings.items()
        ),
        "[[operations]]",
        f'include-name = "{STREAM}"',
        "request-timeout = 0.1",
        "max-stream-events = 1",
    ]
    if few:
        lines += ["[[operations]]", f"include-name = {_toml_list(few)}"]
        lines += ["[operations.generation]", f"max-examples = {FEW}"]
    return SchemathesisConfig.from_str("\n".join(lines))


@pytest.fixture(scope="session")
def operation_scopes(world: World) -> dict[str, set[str]]:
    return required_scopes(create_app(world.settings).openapi())


def _few(needs: set[str], held: set[str], role: str | None) -> bool:
    if role is None:
        return bool(needs)
    return not needs or not needs <= held


@pytest.fixture
def api_schema(world: World, role: str | None, operation_scopes: dict[str, set[str]]) -> Any:
    held = set(DEFAULT_SCOPES[role]) if role else set()
    few = [label for label, scopes in operation_scopes.items() if _few(scopes, held, role)]
    config = fuzz_config(world, role, few)
    return schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(world.settings), config=config
    )


@schema.parametrize()
def test_api(
    case: Case[Any], world: World, role: str | None, operation_scopes: dict[str, set[str]]
) -> None:
    response = case.call_and_validate(headers=world.headers(role), checks=CHECKS)
    label = f"{case.method.upper()} {case.path}"
    ANSWERS[role or "no-token", label][response.status_code // 100] += 1
    needs = operation_scopes[label]
    if not needs:
        return
    if role is None:
        assert response.status_code >= 400, "a protected operation answered without a token"
    else:
        # The token is valid: a 401 means the run is not exercising this operation.
        assert response.status_code != 401, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith(PROBLEM_MEDIA_TYPE)


def test_each_role_reached_its_operations(operation_scopes: dict[str, set[str]]) -> None:
    """Every operation a role may call answered it with a 2xx at least once."""
    # Alone it would have nothing to judge: fail rather than pass vacuously.
    assert ANSWERS, "test_api did not run first in this session: run the whole file"
    missed = [
        (role, label, dict(ANSWERS[role, label]))
        for role in ROLES
        for label, needs in operation_scopes.items()
        if needs
        and needs <= set(DEFAULT_SCOPES[role])
        and (role, label) not in REFUSED_BY_DESIGN
        and (role, label) not in REACHED_ELSEWHERE
        and not ANSWERS[role, label][2]
    ]
    assert not missed, missed

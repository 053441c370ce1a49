"""/openapi.json documents every success answer: a body schema for each media
type, or no body where none is sent. (The schema fuzzer, tests/fuzz, checks
the answers against these schemas; this keeps a route from losing them.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from gateway.app import create_app
from gateway.settings import Settings

# Success answers with no body at all, by design.
NO_BODY = {"POST /oauth/revoke": "RFC 7009: 200 with an empty body"}
EVENT_STREAM = "text/event-stream"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        state_dir=tmp / ".xyd",
        database_url=f"sqlite:///{tmp / 'unused.db'}",
        pii_key="test-pii-key",  # type: ignore[arg-type]
        run_background=False,
    )
    return create_app(settings).openapi()


def _successes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            found += [(label, s, r) for s, r in operation["responses"].items() if s[0] == "2"]
    return found


def _schema(media_type: str, entry: dict[str, Any]) -> Any:
    # An event stream documents each event (`itemSchema`), not the stream.
    return entry.get("itemSchema") if media_type == EVENT_STREAM else entry.get("schema")


def test_every_operation_documents_a_success_answer(document: dict[str, Any]) -> None:
    documented = {label for label, _, _ in _successes(document)}
    operations = {
        f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops
    }
    assert operations - documented == set()


def test_every_success_answer_has_a_body_schema_per_media_type(document: dict[str, Any]) -> None:
    missing = []
    for label, status, response in _successes(document):
        content = response.get("content")
        if label in NO_BODY:
            assert not content, f"{label} {status}: documented as bodiless, yet has content"
            continue
        if not content:
            missing.append(f"{label} {status}: no content")
        for media_type, entry in (content or {}).items():
            if not _schema(media_type, entry):
                missing.append(f"{label} {status} {media_type}: empty schema")
    assert not missing, missing


def test_json_success_schemas_name_their_members(document: dict[str, Any]) -> None:
    """Each JSON body is described as objects with members, and its refs resolve."""
    components = document["components"]["schemas"]
    for label, status, response in _successes(document):
        entry = response.get("content", {}).get("application/json")
        if entry is None:
            continue
        schema = entry["schema"]
        jsonschema_rs.validator_for({**schema, "components": document["components"]})
        for branch in schema.get("anyOf", [schema]):
            ref = branch.get("$ref", "")
            assert ref.startswith("#/components/schemas/"), f"{label} {status}: {schema}"
            resolved = components[ref.rsplit("/", 1)[1]]
            assert resolved.get("type") == "object" and resolved.get("properties"), label
            assert resolved.get("required"), f"{label} {status}: no required member"


def test_event_stream_events_carry_a_json_alert(document: dict[str, Any]) -> None:
    answer = document["paths"]["/v1/alerts/stream"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {EVENT_STREAM}
    data = answer["content"][EVENT_STREAM]["itemSchema"]["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    assert "revision" in data["contentSchema"]["required"]


def test_every_operation_documents_the_outage_answer(document: dict[str, Any]) -> None:
    # The spec: 503 when a dependency is down. Any route can meet a database
    # outage. A route that documents its own 503 (a platform's body, /readyz's
    # naming the dependency) keeps it.
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "503" not in operation["responses"]
    ]
    assert not missing, missing
    alerts = document["paths"]["/v1/alerts"]["get"]["responses"]["503"]
    assert "application/problem+json" in alerts["content"]
    assert "nothing was disclosed" in alerts["description"]
    readyz = document["paths"]["/readyz"]["get"]["responses"]["503"]["description"]
    assert readyz.startswith("A dependency is down; the problem names which")


def test_a_consent_documents_its_channel_and_either_kind_of_evidence(
    document: dict[str, Any],
) -> None:
    consent = document["components"]["schemas"]["Consent"]
    assert "channel" in consent["required"]
    pattern = re.compile(consent["properties"]["channel"]["pattern"])
    assert all(pattern.match(c) for c in ("portal", "direct", "platform:tianfu_rongtong"))
    assert not any(pattern.match(c) for c in ("platform", "email", "direct "))
    evidence = {b["$ref"].rsplit("/", 1)[1] for b in consent["properties"]["evidence"]["anyOf"]}
    assert evidence == {"Evidence", "PortalEvidence"}
    change = document["components"]["schemas"]["ConsentChange"]
    assert "channel" in change["required"]

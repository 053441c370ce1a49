"""What /openapi.json says of success answers.

Routes on the request path answer raw orjson bytes: no `response_model`, so
no validation or serialisation per request. The models in each feature's
`schemas.py` only describe those bodies; `answer_docs` puts one in a route's
`responses`, which FastAPI renders in the document and never applies to a
returned `Response`. The schema fuzzer (tests/fuzz) checks every answer
against them, so a body and its model cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Doc(BaseModel):
    """A closed JSON object: every member is listed (`additionalProperties: false`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenDoc(BaseModel):
    """A JSON object with the members listed and possibly others."""

    model_config = ConfigDict(extra="allow", frozen=True)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str, **constraints: Any) -> Any:
    """A member present in some answers only (not required); its type says if it may be null."""
    return Field(None, description=description, json_schema_extra=_no_default, **constraints)


def header_docs(headers: dict[str, str]) -> dict[str, Any]:
    """Response headers by name, each with what it says."""
    return {
        name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
    }


def answer_docs(
    model: Any,
    description: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    other_media: dict[str, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """A `responses` entry documenting a JSON answer's body (never validated).

    `model`: a pydantic model, or a union of them (`A | B`: `anyOf`).
    `other_media`: media type objects of the other representations the answer may take.
    """
    entry: dict[str, Any] = {"model": model, "description": description}
    if headers:
        entry["headers"] = header_docs(headers)
    if other_media:
        entry["content"] = other_media
    return {status: entry}

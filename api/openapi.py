"""`GET /api/v1/openapi.json`: an OpenAPI 3.1 document generated from the pydantic models that
validate the requests (api.models) and the list of operations (api.routes.OPERATIONS). Nothing
in it is written by hand but the words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import models

ERRORS = {400: "The request is malformed", 401: "No token, or a revoked or unknown one",
          403: "The token's scopes (or the role policy) do not allow this", 404: "No such incident or step",
          409: "Conflicts with the incident's state, or an Idempotency-Key used with another body",
          413: "The body is over 64 KiB", 415: "The body is not application/json",
          422: "A field is invalid or holds file data (the answer names it)", 429: "Rate limited; see Retry-After"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI style, under /api/v1: /incidents/{number}
    summary: str
    scope: str | None  # None: no token needed
    responses: dict[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 401, 403, 404, 409, 413, 415, 422, 429)
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(operations: list[Operation], prefix: str, server_url: str | None = None) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], str]] = [(models.Error, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted.extend((model, "serialization") for model in op.responses.values())
    _, schemas = models_json_schema(list(dict.fromkeys(wanted)), ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": schema} for name, schema in op.path_params.items()]
        if op.query is not None:
            query = op.query.model_json_schema()
            for name, schema in query.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": name in query.get("required", []),
                                   "schema": schema})
        if op.method == "post" and op.scope is not None:
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "description": "Repeats within 24 hours get the first answer (same status and body)",
                               "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}})
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            responses[str(status)] = {"description": {201: "Created"}.get(status, "OK"),
                                      "content": {"application/json": {"schema": _ref(model)}}}
        for status in op.errors if op.scope is not None else ():
            responses[str(status)] = {"description": ERRORS[status],
                                      "content": {"application/json": {"schema": _ref(models.Error)}}}
        entry: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method}_{_op_id(op.path)}",
                                 "responses": responses, "security": [{"bearer": []}] if op.scope else []}
        if op.scope:
            entry["description"] = f"Needs the `{op.scope}` scope."
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": _ref(op.body)}}}
        paths.setdefault(prefix + op.path, {})[op.method] = entry
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Safeguard API", "version": "1",
                 "description": "Detection pipelines declare incidents with evidence references; case tools "
                                "read and update them. Content is never accepted."},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _op_id(path: str) -> str:
    return "_".join(part.strip("{}") for part in path.strip("/").split("/")) or "root"

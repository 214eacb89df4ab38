"""The OpenAPI schema as the API behaves: image endpoints declare their upload (so /docs' "Try it
out" offers a file field), bad parameters are 400 (the validation-error handler's status, not
FastAPI's 422), optional query parameters show their own type (never null), and with a token every
protected operation names it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from streamproc.server.access import OPEN_PATHS

BEARER = "bearerToken"  # the security scheme's name in the OpenAPI schema
BINARY = {"type": "string", "format": "binary"}
NULL = {"type": "null"}
RAW_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")

# openapi_extra of an operation that takes an image: a form's 'file' field (listed first: Swagger UI
# shows it first, with a file chooser) or the raw body
IMAGE_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {**BINARY, "description": "the image"}},
                }
            },
            **{media_type: {"schema": BINARY} for media_type in RAW_IMAGE_TYPES},
        },
    }
}

# the error answer every route gives (routes.error)
ERROR_BODY = {
    "application/json": {
        "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    }
}
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def customise_schema(app: FastAPI, bearer: bool) -> None:
    """Make ``app.openapi()`` describe the API as it answers (see the module's docstring)."""
    plain = app.openapi
    made: list[dict[str, Any]] = []  # built once, on the first request for it

    def schema() -> dict[str, Any]:
        if not made:
            found = plain()
            _validation_as_400(found)
            _plain_optional_parameters(found)
            if bearer:
                _declare_bearer(found)
            made.append(found)
        return made[0]

    app.openapi = schema  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operation)
        for path, operations in schema.get("paths", {}).items()
        for operation in operations.values()
    ]


def _validation_as_400(schema: dict[str, Any]) -> None:
    """FastAPI lists 422 "Validation Error" wherever a route has parameters; streamproc answers 400."""
    for _path, operation in _operations(schema):
        responses = operation.get("responses", {})
        if responses.get("422", {}).get("description") == "Validation Error":
            del responses["422"]
            responses.setdefault("400", {"description": "bad parameter", "content": ERROR_BODY})
    components = schema.get("components", {}).get("schemas", {})
    for name in VALIDATION_SCHEMAS:
        components.pop(name, None)


def _plain_optional_parameters(schema: dict[str, Any]) -> None:
    """FastAPI writes ``model: str | None = Query(None)`` as ``anyOf: [{type: string}, {type: null}]``,
    which Swagger UI shows as ``string | (string | null)``. A query parameter is sent or not, never
    null (``required: false`` says so): the null member goes, the type, enum and bounds stay."""
    for _path, operation in _operations(schema):
        for parameter in operation.get("parameters", ()):
            declared = parameter.get("schema", {})
            members = [member for member in declared.get("anyOf", ()) if member != NULL]
            if len(members) == 1 and len(declared["anyOf"]) == 2:
                del declared["anyOf"]
                declared.update(members[0])


def _declare_bearer(schema: dict[str, Any]) -> None:
    """Name the token (HTTP bearer) on every operation that needs it, so that /docs shows
    "Authorize" and its "Try it out" sends ``Authorization: Bearer TOKEN`` itself."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "http.token (or STREAMPROC_HTTP__TOKEN, http.token_file)",
    }
    for path, operation in _operations(schema):
        if path not in OPEN_PATHS:
            operation["security"] = [{BEARER: []}]

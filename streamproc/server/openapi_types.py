"""Optional query parameters in the OpenAPI schema as their own type, without ``| null``.

FastAPI writes ``model: str | None = Query(None)`` as ``anyOf: [{type: string}, {type: null}]``, and
Swagger UI shows that as ``string | (string | null)``. A query parameter is never null: it is sent
or not, which ``required: false`` already says. So the null member is dropped from each
parameter's schema, leaving its type, enum and bounds as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

NULL = {"type": "null"}


def plain_optional_parameters(app: FastAPI) -> None:
    """Make ``app``'s schema name each optional parameter's type alone (see the module docstring)."""
    plain = app.openapi

    def simplified() -> dict[str, Any]:
        schema = plain()  # built once and cached by FastAPI: changed in place, once
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", ()):
                    _drop_null(parameter.get("schema", {}))
        return schema

    app.openapi = simplified  # type: ignore[method-assign]


def _drop_null(schema: dict[str, Any]) -> None:
    members = [member for member in schema.get("anyOf", ()) if member != NULL]
    if len(members) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        schema.update(members[0])

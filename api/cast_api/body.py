"""JSON bodies parsed like the reference's ajv validator: Content-Type is not enforced, a parse
error and a schema error have different bodies, extra properties are allowed."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cast_api.errors import BodyInvalid

M = TypeVar("M", bound=BaseModel)


def _ajv_error(error: ErrorDetails) -> dict[str, Any]:
    loc = [str(p) for p in error["loc"]]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        parent = "/" + "/".join(loc[:-1]) if len(loc) > 1 else ""
        return {
            "instancePath": parent,
            "schemaPath": "#/required",
            "keyword": "required",
            "params": {"missingProperty": loc[-1]},
            "message": f"must have required property '{loc[-1]}'",
        }
    path = "/" + "/".join(loc) if loc else ""
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return {
            "instancePath": path,
            "schemaPath": f"#/properties/{loc[-1]}/pattern",
            "keyword": "pattern",
            "params": {"pattern": pattern},
            "message": f'must match pattern "{pattern}"',
        }
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return {
            "instancePath": path,
            "schemaPath": f"#/properties/{loc[-1]}/maxLength",
            "keyword": "maxLength",
            "params": {"limit": limit},
            "message": f"must NOT have more than {limit} characters",
        }
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return {
            "instancePath": path,
            "schemaPath": "#/type",
            "keyword": "type",
            "params": {"type": "object"},
            "message": "must be object",
        }
    return {
        "instancePath": path,
        "schemaPath": f"#/properties/{loc[-1]}/type" if loc else "#/type",
        "keyword": "type",
        "params": {"type": "string"},
        "message": "must be string",
    }


def parse_body(raw: bytes, model: type[M]) -> M:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyInvalid(f"Unexpected token in JSON: {exc}") from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise BodyInvalid(
            "Invalid JSON body", [_ajv_error(e) for e in exc.errors(include_url=False)]
        ) from None

"""AJV-shaped error objects, as cQube's NestJS services put them in ``{"message": [...]}``."""

from __future__ import annotations

from typing import Any


def required(field: str) -> dict[str, Any]:
    return {"instancePath": "", "schemaPath": "#/required", "keyword": "required",
            "params": {"missingProperty": field},
            "message": f"must have required property '{field}'"}


def enum(field: str, allowed: list[str]) -> dict[str, Any]:
    return {"instancePath": f"/{field}", "schemaPath": f"#/properties/{field}/enum",
            "keyword": "enum", "params": {"allowedValues": allowed},
            "message": "must be equal to one of the allowed values"}


def invalid(path: str, keyword: str | None, message: str) -> dict[str, Any]:
    """Any other failed check of a body against its schema (``path``: a JSON pointer)."""
    keyword = keyword or "invalid"
    return {"instancePath": path, "schemaPath": f"#{path}/{keyword}", "keyword": keyword,
            "params": {}, "message": message}


def spec_errors(keyword: str | None, field: str | None, message: str) -> list[dict[str, Any]]:
    """The AJV errors for a spec body that our translation refused (``InvalidSpec``)."""
    if keyword in ("program", "input") and "needs" in message:
        return [required(keyword)]
    path = f"/input/properties/{field}" if field else ("/input" if keyword else "")
    return [invalid(path, keyword, message)]

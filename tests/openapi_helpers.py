"""Checking real answers against the OpenAPI document (``Checker``)."""

from __future__ import annotations

from jsonschema import Draft202012Validator, FormatChecker

from ingest_server.web.openapi.document import build_document


DOC = build_document()


class Checker:
    """Validates real answers against the documented response of their status."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    async def __call__(self, resp, method: str, path: str):
        op = DOC["paths"][path][method]
        status = str(resp.status)
        assert status in op["responses"], f"{method} {path}: undocumented status {status}"
        documented = op["responses"][status]
        assert resp.headers.get("X-Request-ID")
        if method == "head" or "content" not in documented:  # headers only (tus)
            self.seen.add((method, path, status))
            assert await resp.read() == b""
            return resp.headers
        media = resp.content_type
        assert media in documented["content"], f"{method} {path} {status}: {media}"
        self.seen.add((method, path, status))
        if media != "application/json":
            return await resp.read()
        body = await resp.json()
        schema = dict(documented["content"][media]["schema"],
                      components=DOC["components"])
        errors = sorted(Draft202012Validator(schema, format_checker=FormatChecker())
                        .iter_errors(body), key=str)
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        if "x-error-codes" in documented:
            assert body["error"]["code"] in documented["x-error-codes"], (method, path, body)
        return body

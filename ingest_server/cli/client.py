"""The HTTP side of the client: one httpx session, bearer tokens, and the API's error shape.

Every failure leaves this module as a ``CliError`` (network) or an ``ApiError`` (the server's
``{"error": {"code", "message", "details"}}``), so commands never see an httpx exception.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote

import httpx

from .config import CliConfig
from .failures import ApiError, CliError
from .multipart import MultipartFile

TOKEN_PATH = "/api/ingestion/generatejwt"


class IngestClient:
    """A synchronous client of one ingest-server. Use it as a context manager."""

    def __init__(self, config: CliConfig) -> None:
        self.config = config
        self._token = config.token
        timeout = httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 10.0))
        self.http = httpx.Client(base_url=config.url, timeout=timeout,
                                 headers={"User-Agent": "ingest-cli"})

    def __enter__(self) -> "IngestClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    # -- tokens --------------------------------------------------------------------------------

    def fetch_token(self) -> dict[str, Any]:
        """A new token: with the client credentials when configured, else the open endpoint."""
        auth = None
        if self.config.has_credentials:
            auth = httpx.BasicAuth(self.config.client_id or "", self.config.client_secret or "")
        try:
            return self._json(self._send("GET", TOKEN_PATH, auth=auth,
                                         headers={"Accept": "application/json"}))
        except ApiError as e:
            # The token endpoint never asks for a token, nor is it missing: another server, or
            # the right one under a path prefix the URL does not carry.
            if e.code in ("missing_token", "not_found", "http_404"):
                raise CliError(f"wrong URL? {self.config.url}{TOKEN_PATH} is not the token "
                               f"endpoint of an ingest-server ({e.code}); give the server's "
                               "base URL, e.g. http://127.0.0.1:8080") from None
            raise

    def bearer(self) -> str:
        if self._token is None:
            self._token = self.fetch_token()["token"]
        return self._token

    # -- the API -------------------------------------------------------------------------------

    def post_cqube_spec(self, kind: str, body: Any) -> dict[str, Any]:
        return self._json(self._send("POST", f"/api/spec/{quote(kind, safe='')}", json=body,
                                     authed=True))

    def put_cerberus_spec(self, kind: str, name: str, body: Any) -> dict[str, Any]:
        path = f"/api/specs/{quote(kind, safe='')}/{quote(name, safe='')}"
        return self._json(self._send("PUT", path, json=body, authed=True))

    def put_grammar(self, path: str, text: str, params: Mapping[str, str] | None = None
                    ) -> dict[str, Any]:
        """A cQube grammar file to ``/api/processing/grammars/<path>`` (parts already quoted)."""
        return self._json(self._send("PUT", f"/api/processing/grammars/{path}",
                                     content=text.encode("utf-8"), params=dict(params or {}),
                                     headers={"Content-Type": "text/csv"}, authed=True))

    def put_program(self, name: str, body: Any) -> dict[str, Any]:
        return self._json(self._send("PUT", f"/api/processing/programs/{quote(name, safe='')}",
                                     json=body, authed=True))

    def processing_status(self) -> dict[str, Any]:
        return self._json(self._send("GET", "/api/processing/grammars", authed=True))

    def rebuild_program(self, name: str) -> dict[str, Any]:
        path = f"/api/processing/programs/{quote(name, safe='')}/rebuild"
        return self._json(self._send("POST", path, authed=True))

    def upload_references(self, upload_id: str) -> dict[str, Any]:
        path = f"/api/processing/uploads/{quote(upload_id, safe='')}/references"
        return self._json(self._send("GET", path, authed=True))

    def upload(self, path: Path, *, route: str, fields: Mapping[str, str],
               content_type: str, idempotency_key: str | None = None,
               on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Stream ``path`` to ``/api/ingestion/<route>``; the answer comes after the last byte."""
        body = MultipartFile(path, fields, content_type=content_type, on_chunk=on_chunk)
        headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._json(self._send("POST", f"/api/ingestion/{route}", content=body,
                                     headers=headers, authed=True))

    def infer_spec(self, path: Path, fields: Mapping[str, str]) -> dict[str, Any]:
        """A spec draft from the sample at ``path`` (``/api/specs/infer``)."""
        body = MultipartFile(path, fields, content_type="application/octet-stream")
        headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
        return self._json(self._send("POST", "/api/specs/infer", content=body, headers=headers,
                                     authed=True))

    def list_uploads(self, params: Mapping[str, str]) -> dict[str, Any]:
        return self._json(self._send("GET", "/api/ingestion/uploads", params=dict(params),
                                     authed=True))

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        return self._json(self._send("GET", self._upload_path(upload_id), authed=True))

    def iter_errors(self, upload_id: str, member: str | None = None) -> Iterator[bytes]:
        """The upload's rejected-rows CSV, chunk by chunk, never held whole in memory."""
        params = {"member": member} if member is not None else None
        request = self.http.build_request("GET", self._upload_path(upload_id) + "/errors",
                                          params=params, headers=self._auth_headers())
        with self._network(), contextlib.closing(self.http.send(request, stream=True)) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise self._api_error(resp)
            yield from resp.iter_bytes()

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _upload_path(upload_id: str) -> str:
        return f"/api/ingestion/uploads/{quote(upload_id, safe='')}"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer()}"}

    @contextlib.contextmanager
    def _network(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise CliError(f"{self.config.url} did not answer within "
                           f"{self.config.timeout_s:g} s (--timeout)") from None
        except httpx.HTTPError as e:
            reason = str(e) or e.__class__.__name__
            raise CliError(f"cannot reach {self.config.url}: {reason}") from None

    def _send(self, method: str, path: str, *, authed: bool = False,
              headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        headers = dict(headers or {})
        if authed:
            headers.update(self._auth_headers())
        with self._network():
            resp = self.http.request(method, path, headers=headers, **kw)
        if resp.status_code >= 400:
            raise self._api_error(resp)
        return resp

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        try:
            return resp.json()
        except ValueError:
            raise ApiError(resp.status_code, "invalid_response",
                           f"the server's answer is not JSON: {resp.text[:200]!r}") from None

    @staticmethod
    def _api_error(resp: httpx.Response) -> ApiError:
        try:
            body = resp.json()
            err = body["error"]
            return ApiError(resp.status_code, str(err["code"]), str(err["message"]),
                            err.get("details") or {}, body=body)
        except (ValueError, KeyError, TypeError):
            text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
            return ApiError(resp.status_code, f"http_{resp.status_code}",
                            text or resp.reason_phrase or "error")

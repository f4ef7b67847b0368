"""The OpenAPI document: valid OpenAPI 3.1, covers every route, and real answers match it."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from conftest import RAWDATA_CLIENT, READ_ONLY_CLIENT, TEST_CLIENT, basic
from ingest_helpers import SPEC, form, register, upload
from openapi_helpers import Checker, DOC

GOOD = b"date,school_id,teachers_present,remarks,score\n" \
       b"2024-01-01,S1,10,ok,1.5\n2024-01-01,S2,abc,bad number,\n"


def test_document_is_valid_openapi_3_1():
    assert DOC["openapi"].startswith("3.1")
    validate(DOC)
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def _routes(app) -> set[tuple[str, str]]:
    out = set()
    gets = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    for route in app.router.routes():
        if route.method == "HEAD" and route.resource.canonical in gets:
            continue  # aiohttp adds HEAD to every GET; documented by the GET
        out.add((route.resource.canonical, route.method.lower()))
    return out


def test_every_route_is_documented_and_every_documented_path_is_routed(client):
    documented = {(path, method) for path, ops in DOC["paths"].items() for method in ops}
    routed = _routes(client.app)
    assert routed - documented == set(), "routes missing from ingest_server/web/openapi/document.py"
    assert documented - routed == set(), "documented operations that are not routed"


def test_every_error_response_lists_codes_and_uses_the_error_shape():
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                assert "X-Request-ID" in resp["headers"]
                if "x-error-codes" in resp:
                    assert int(status) >= 400 and resp["x-error-codes"], (path, method, status)
                    assert all(re.fullmatch("[a-z][a-z0-9_]*", c) for c in resp["x-error-codes"])
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
            if op["security"]:  # token routes say who may call and what refuses them
                assert {"401", "403"} <= set(op["responses"]) or path.endswith("generatejwt")


async def test_document_and_docs_page_are_served_without_a_token(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == DOC
    page = await client.get("/api/docs")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("/api/docs/") for r in refs), refs  # no CDN
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for ref in refs:
        asset = await client.get(ref)
        assert asset.status == 200, ref
        assert asset.content_type == expected[ref[ref.rindex("."):]]
        assert len(await asset.read()) > 0
    init = await (await client.get("/api/docs/init.js")).text()
    assert '"/api/openapi.json"' in init and "http" not in init
    bundle = await (await client.get("/api/docs/swagger-ui-bundle.js")).text()
    assert "SwaggerUIBundle" in bundle
    for bad in ("../../../etc/passwd", "%2e%2e%2fopenapi.py", "index.html", "nope.js"):
        missing = await client.get(f"/api/docs/{bad}")
        assert missing.status == 404, bad


async def test_real_answers_match_their_documented_schemas(client, auth_headers):
    check = Checker()
    h = auth_headers
    await check(await client.get("/healthz"), "get", "/healthz")
    await check(await client.get("/readyz"), "get", "/readyz")
    await check(await client.get("/metrics"), "get", "/metrics")
    jwt = "/api/ingestion/generatejwt"
    await check(await client.get(jwt, headers=basic(*TEST_CLIENT, json=True)), "get", jwt)
    await check(await client.get(jwt, headers=basic(*TEST_CLIENT)), "get", jwt)
    await check(await client.get(jwt), "get", jwt)
    await check(await client.get(jwt, headers=basic("who", "wrong")), "get", jwt)
    reader = await (await client.get(jwt, headers=basic(*READ_ONLY_CLIENT, json=True))).json()
    ro = {"Authorization": f"Bearer {reader['token']}"}

    spec_path = "/api/spec/{kind}"
    created = await check(await client.post("/api/spec/event", json=SPEC, headers=h),
                          "post", spec_path)
    assert created["created"] is True
    same = await check(await client.post("/api/spec/event", json=SPEC, headers=h), "post",
                       spec_path)
    assert same["created"] is False
    await check(await client.post("/api/spec/event", json={"program": "x", "input": {
        "type": "object", "properties": {"a": {"type": "string", "bogus": 1}}}}, headers=h),
        "post", spec_path)
    await check(await client.post("/api/spec/nope", json=SPEC, headers=h), "post", spec_path)
    await check(await client.post("/api/spec/event", data=b"{", headers=h), "post", spec_path)
    await check(await client.post("/api/spec/event", json=SPEC), "post", spec_path)
    await check(await client.post("/api/spec/event", json=SPEC, headers=ro), "post", spec_path)
    await check(await client.post("/api/spec/event", json=SPEC,
                                  headers={"Authorization": "Bearer nonsense"}), "post", spec_path)
    put_path = "/api/specs/{kind}/{name}"
    await check(await client.put("/api/specs/dimension/schools", headers=h, json={
        "cerberus": {"school_id": {"type": "string", "required": True}}}), "put", put_path)
    await check(await client.put("/api/specs/dimension/schools", headers=h, json={"x": 1}),
                "put", put_path)

    await check(await client.get("/api/specs", headers=h), "get", "/api/specs")
    await check(await client.get("/api/specs?kind=nope", headers=h), "get", "/api/specs")
    await check(await client.get("/api/specs/event/teacherspresent", headers=h), "get", put_path)
    await check(await client.get("/api/specs/event/missing", headers=h), "get", put_path)
    await check(await client.get("/api/plugins", headers=h), "get", "/api/plugins")

    new = "/api/ingestion/new_programs"
    resp = await client.post(new, data=form(GOOD), headers=h)
    body = await check(resp, "post", new)
    assert body["status"] == "uploaded" and body["errors_sample"]
    uid = body["upload_id"]
    await check(await client.post(new, data=form(GOOD), headers=h, params={"dry_run": "true"}),
                "post", new)
    await check(await client.post(new, data=form(GOOD), headers=h,
                                  params={"max_error_rate": "0.1"}), "post", new)
    await check(await client.post(new, data=form(b"date,school_id\n2024-01-01,S1\n"), headers=h),
                "post", new)  # missing_column
    await check(await client.post(new, data=form(GOOD, fields={"ingestion_type": "event"}),
                                  headers=h), "post", new)  # missing_field
    await check(await client.post(new, data=form(GOOD, fields={
        "ingestion_type": "event", "ingestion_name": "unknown", "program_name": "p"}),
        headers=h), "post", new)  # spec_not_found
    await check(await client.post(new, data=b"plain", headers=h), "post", new)  # not_multipart
    await check(await client.post(new, data=form(GOOD), headers=ro), "post", new)  # 403

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("teacherspresent.csv", GOOD)
        z.writestr("other.csv", GOOD)
    national = "/api/ingestion/national_programs"
    zbody = await check(await client.post(national, headers=h, data=form(
        archive.getvalue(), fields={}, filename="pack.zip", content_type="application/zip")),
        "post", national)
    assert [m["name"] for m in zbody["members"]] == ["teacherspresent", "other"]
    await check(await client.post(national, headers=h, data=form(
        b"not a zip", fields={}, filename="pack.zip", content_type="application/zip")),
        "post", national)

    uploads = "/api/ingestion/uploads"
    listing = await check(await client.get(uploads, headers=h), "get", uploads)
    assert uid in [u["upload_id"] for u in listing["uploads"]]
    await check(await client.get(uploads + "?limit=x", headers=h), "get", uploads)
    one = "/api/ingestion/uploads/{id}"
    await check(await client.get(f"{uploads}/{uid}", headers=h), "get", one)
    await check(await client.get(f"{uploads}/nope", headers=h), "get", one)
    err = "/api/ingestion/uploads/{id}/errors"
    csv_text = await check(await client.get(f"{uploads}/{uid}/errors", headers=h), "get", err)
    assert b"_line,_errors" in csv_text
    await check(await client.get(f"{uploads}/{zbody['upload_id']}/errors", headers=h),
                "get", err)  # member_required
    fs = "/api/ingestion/file-status"
    await check(await client.get(fs, params={"filename": "data.csv"}, headers=h), "get", fs)
    await check(await client.get(fs, headers=h), "get", fs)
    await check(await client.get(fs, params={"filename": "none.csv"}, headers=h), "get", fs)
    valid = "/api/ingestion/uploads/{id}/valid"
    await check(await client.get(f"{uploads}/{uid}/valid", headers=h), "get", valid)
    await check(await client.get(f"{uploads}/{uid}/errors?formula_safe=true", headers=h),
                "get", err)
    await check(await client.delete(f"{uploads}/{uid}", headers=ro), "delete", one)  # 403
    await check(await client.delete(f"{uploads}/{uid}", headers=h), "delete", one)
    await check(await client.delete(f"{uploads}/nope", headers=h), "delete", one)  # 404
    await check(await client.get(f"{uploads}/{uid}/valid", headers=h), "get", valid)  # 410
    await check(await client.get("/"), "get", "/")
    await check(await client.get("/console/app.js"), "get", "/console/{asset}")
    await check(await client.get("/console/settings.json"), "get", "/console/settings.json")
    await check(await client.get("/console/nope.js"), "get", "/console/{asset}")

    for kind, name in (("event", "teacherspresent"), ("dimension", "nothere"),
                       ("dataset", "nothere")):
        rows = f"/api/ingestion/{kind}"
        await check(await client.post(rows, headers=h, json={
            f"{kind}_name": name, "program_name": "p", kind: [
                {"date": "2024-01-01", "school_id": "S1", "teachers_present": 3}]}), "post", rows)
        await check(await client.post(rows, headers=h, json={kind: []}), "post", rows)
        await check(await client.post(rows, json={}), "post", rows)
    validate = "/api/ingestion/validate"
    for type_ in ("event-grammar", "nonsense"):
        vform = aiohttp.FormData()
        vform.add_field("type", type_)
        vform.add_field("grammar", io.BytesIO(json.dumps(SPEC).encode()), filename="g.json")
        await check(await client.post(validate, headers=h, data=vform), "post", validate)
    raw_data = "/api/ingestion/getRawData"
    await check(await client.post(raw_data, headers=h, json={
        "program_names": ["teacherspresent"]}), "post", raw_data)  # 403: no rawdata grant
    puller = await (await client.get(jwt, headers=basic(*RAWDATA_CLIENT, json=True))).json()
    pull = {"Authorization": f"Bearer {puller['token']}"}
    links = await check(await client.post(raw_data, headers=pull, json={
        "program_names": ["teacherspresent"]}), "post", raw_data)
    await check(await client.post(raw_data, headers=pull, json={}), "post", raw_data)
    raw = "/api/ingestion/raw"
    [link] = links["data"][0]["urls"]
    await check(await client.get(link[link.index(raw):]), "get", raw)
    await check(await client.get(raw, params={"key": "a.csv", "expires": "1",
                                              "signature": "x"}), "get", raw)

    template = "/api/specs/{kind}/{name}/template"
    spec_csv = await check(await client.get("/api/specs/event/teacherspresent/template",
                                            headers=h), "get", template)
    assert spec_csv.decode().splitlines()[0].split(",") == list(SPEC["input"]["properties"])
    xlsx = await check(await client.get("/api/specs/event/teacherspresent/template",
                                        params={"format": "xlsx"}, headers=h), "get", template)
    assert xlsx[:2] == b"PK"  # a zip container: the workbook
    await check(await client.get("/api/specs/event/teacherspresent/template",
                                 params={"format": "pdf"}, headers=h), "get", template)
    await check(await client.get("/api/specs/event/missing/template", headers=h), "get", template)
    infer = "/api/specs/infer"
    iform = aiohttp.FormData()
    iform.add_field("kind", "event")
    iform.add_field("file", io.BytesIO(GOOD), filename="sample.csv")
    draft = await check(await client.post(infer, headers=h, data=iform), "post", infer)
    assert set(draft["spec"]["input"]["properties"]) == set(GOOD.decode().splitlines()[0].split(","))
    await check(await client.post(infer, headers=h, data=b"plain"), "post", infer)

    await _check_resumable(check, client, h)
    await check_processing_routes(check, client, h)
    await _check_spec_files(check, client, h)

    assert {s for _, _, s in check.seen} >= {"200", "201", "400", "401", "403", "404", "415"}
    exercised = {(p, m) for m, p, _ in check.seen}
    assert {(p, m) for p, ops in DOC["paths"].items() for m in ops} - exercised == {
        ("/api/openapi.json", "get"), ("/api/docs", "get"), ("/api/docs/{asset}", "get")}


PROCESSING_ROUTES = [  # (method, documented path, a real path)
    ("get", "/api/processing/grammars", "/api/processing/grammars"),
    ("put", "/api/processing/grammars/dimensions/{dim}", "/api/processing/grammars/dimensions/d"),
    ("get", "/api/processing/grammars/dimensions/{dim}", "/api/processing/grammars/dimensions/d"),
    ("put", "/api/processing/grammars/events/{program}/{event}",
     "/api/processing/grammars/events/p/e"),
    ("get", "/api/processing/grammars/events/{program}/{event}",
     "/api/processing/grammars/events/p/e"),
    ("put", "/api/processing/programs/{program}", "/api/processing/programs/p"),
    ("get", "/api/processing/programs/{program}", "/api/processing/programs/p"),
    ("post", "/api/processing/programs/{program}/rebuild", "/api/processing/programs/p/rebuild"),
    ("get", "/api/processing/uploads/{upload_id}/references",
     "/api/processing/uploads/u/references"),
]


async def check_processing_routes(check: Checker, client, h: dict) -> None:
    """Without processing.enabled each processing route is a documented 404 (their other
    answers: tests/test_processing_api.py)."""
    for method, path, real in PROCESSING_ROUTES:
        body = await check(await client.request(method, real, headers=h, data=b"x"), method, path)
        assert body["error"]["code"] == "processing_disabled"


async def _check_spec_files(check: Checker, client, h: dict) -> None:
    """Templates and spec inference (issue 25): their answers and refusals."""
    template = "/api/specs/{kind}/{name}/template"
    for fmt in ("csv", "xlsx"):
        body = await check(await client.get("/api/specs/event/teacherspresent/template",
                                            headers=h, params={"format": fmt}), "get", template)
        assert body[:4] == (b"date" if fmt == "csv" else b"PK\x03\x04")
    await check(await client.get("/api/specs/event/nope/template", headers=h), "get", template)
    await check(await client.get("/api/specs/event/teacherspresent/template", headers=h,
                                 params={"format": "pdf"}), "get", template)
    infer = "/api/specs/infer"
    for kind in ("event", "nope"):
        form = aiohttp.FormData()
        form.add_field("kind", kind)
        form.add_field("file", io.BytesIO(b"a,b\r\n1,x\r\n2,y\r\n"), filename="s.csv")
        await check(await client.post(infer, headers=h, data=form), "post", infer)


async def _check_resumable(check: Checker, client, h: dict) -> None:
    """The tus routes: discovery, creation, HEAD, PATCH (to completion), termination."""
    base, tus = "/api/ingestion/resumable", {"Tus-Resumable": "1.0.0"}
    one = base + "/{id}"
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {
        "filename": "data.csv", "ingestion_type": "event", "ingestion_name": "teacherspresent",
        "program_name": "school-attendance"}.items())
    await check(await client.options(base), "options", base)
    await check(await client.options(base + "/x"), "options", one)
    created = await check(await client.post(base, headers=dict(h, **tus, **{
        "Upload-Length": str(len(GOOD)), "Upload-Metadata": meta})), "post", base)
    await check(await client.post(base, headers=dict(h, **tus)), "post", base)  # 400
    await check(await client.post(base, headers=dict(h, **{"Upload-Length": "1"})), "post", base)
    url = created["Location"]
    await check(await client.head(url, headers=dict(h, **tus)), "head", one)
    await check(await client.head(base + "/nope", headers=dict(h, **tus)), "head", one)
    octets = dict(h, **tus, **{"Content-Type": "application/offset+octet-stream"})
    await check(await client.patch(url, data=GOOD[:10], headers=dict(octets, **{
        "Upload-Offset": "5"})), "patch", one)  # 409
    await check(await client.patch(url, data=GOOD[:10], headers=dict(octets, **{
        "Upload-Offset": "0", "Upload-Checksum": "sha256 AAAA"})), "patch", one)  # 460
    done = await check(await client.patch(url, data=GOOD, headers=dict(octets, **{
        "Upload-Offset": "0"})), "patch", one)
    assert done["Upload-Status"] == "uploaded"
    other = (await check(await client.post(base, headers=dict(h, **tus, **{
        "Upload-Length": "5", "Upload-Metadata": meta})), "post", base))["Location"]
    await check(await client.delete(other, headers=dict(h, **tus)), "delete", one)
    await check(await client.delete(other, headers=dict(h, **tus)), "delete", one)  # 410

"""Every error code is in one list (errors.ERROR_CODES) with its status; the OpenAPI document and
the CLI's code lists are made from it, and the code raises nothing that is not in it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from ingest_server import errors
from ingest_server.cli.main import REQUEST_CODES
from ingest_server.web.openapi.document import build_document

PACKAGE = Path(errors.__file__).parent
# Row error codes (inside an error file or errors_sample, never an HTTP answer) are not HTTP codes.
ROW_CODE_MODULES = ("validation", "csvstream")


def raised_codes() -> dict[str, set[Path]]:
    """Every ``code="..."`` and class ``code`` in the package, outside the row-level modules."""
    found: dict[str, set[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in ROW_CODE_MODULES:
            continue
        text = path.read_text()
        for code in re.findall(r'\bcode="([a-z_0-9]+)"', text) + \
                re.findall(r'\bstatus, code = \d+, "([a-z_0-9]+)"', text) + \
                re.findall(r'^\s+code = "([a-z_0-9]+)"', text, re.M):
            found.setdefault(code, set()).add(path)
    return found


def test_every_code_raised_is_in_the_list():
    missing = {c: sorted(str(p.relative_to(PACKAGE)) for p in paths)
               for c, paths in raised_codes().items() if c not in errors.ERROR_CODES}
    assert not missing, f"add these codes to errors.py with their status: {missing}"


def test_every_error_class_has_its_status_in_the_list():
    classes = [c for c in vars(errors).values()
               if inspect.isclass(c) and issubclass(c, errors.IngestError)]
    assert len(classes) > 10
    for cls in classes:
        assert errors.ERROR_CODES[cls.code] == cls.status, cls


def test_the_openapi_document_takes_each_status_from_the_list():
    seen = set()
    for path, operations in build_document()["paths"].items():
        for method, op in operations.items():
            for status, answer in op["responses"].items():
                for code in answer.get("x-error-codes", []):
                    assert errors.ERROR_CODES[code] == int(status), (method, path, code)
                    seen.add(code)
    assert {"missing_field", "zip_bomb", "db_unavailable", "checksum_mismatch"} <= seen


def test_the_cli_request_codes_come_from_the_list():
    assert errors.REQUEST_CODES <= set(errors.ERROR_CODES)
    assert REQUEST_CODES - errors.REQUEST_CODES == {"http_404", "http_405"}
    assert all(errors.ERROR_CODES[c] < 500 for c in errors.REQUEST_CODES)

"""The documentation site: it builds strictly, its generated pages hold every endpoint, config key
and hook of the code, the README stays short and points into it, and the plugin-testing advice of
docs/plugins.md runs as written with nothing of this repository's test helpers."""

from __future__ import annotations

import dataclasses
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testkit.accounts import fresh_database

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


QUIET = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material 9.8's banner about its successor


def build_site(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, text=True, capture_output=True, timeout=300,
                          env=QUIET)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build_site(out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def page_text(site: Path, name: str) -> str:
    """The built page's HTML with tags dropped and entities decoded (for plain text checks)."""
    raw = (site / name).read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_every_endpoint_of_the_openapi_document_is_in_the_reference(site):
    from ingest_server.web.openapi.document import build_document

    text = page_text(site, "api-reference.html")
    doc = build_document()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert f"{method.upper()} {path}" in text, (method, path)
            for status, answer in op["responses"].items():
                for code in answer.get("x-error-codes", []):
                    assert code in text, (method, path, status, code)
    for schema in doc["components"]["schemas"]:
        assert f'id="schema-{schema.lower()}"' in (site / "api-reference.html").read_text()


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_every_config_key_is_in_the_configuration_page_with_its_env_name(site):
    from ingest_server.config import SECTIONS, ClientConfig

    text = page_text(site, "configuration.html")
    for section, cls in SECTIONS.items():
        assert f"[{section}]" in text
        for f in dataclasses.fields(cls):
            env = f"INGEST_{section.upper()}_{f.name.upper()}"
            row = re.search(rf"^{f.name}\n(.*)\n(.*)\n{env}\b", text, flags=re.M)
            assert row, (section, f.name)
    # The type and default of one key as the dataclass has them, the description from config.toml.
    assert re.search(r"^port\nint\n8080\nINGEST_SERVER_PORT\nTCP port$", text, flags=re.M)
    for f in dataclasses.fields(ClientConfig):
        assert f"\n{f.name}\n" in text


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_every_hook_is_in_the_plugins_page_with_its_docstring(site):
    from ingest_server.plugins import hookspecs

    text = page_text(site, "plugins.html")
    hooks = [name for name, fn in vars(hookspecs).items() if hasattr(fn, "ingest_server_spec")]
    assert len(hooks) >= 8
    for name in hooks:
        fn = getattr(hookspecs, name)
        args = ", ".join(fn.__code__.co_varnames[:fn.__code__.co_argcount])
        assert f"{name}({args})" in text, name
        first_words = " ".join(fn.__doc__.split()[:6])
        assert first_words in " ".join(text.split()), name


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_the_nav_names_every_page_and_the_optional_ones_only_when_they_exist(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def targets(nav):
        for item in nav:
            for value in item.values():
                yield from (targets(value) if isinstance(value, list) else [value])

    listed = set(targets(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages <= listed, pages - listed  # (the strict build also fails on an omitted page)
    for page in listed:
        built = (site / page).with_suffix(".html")
        assert built.is_file() == (DOCS / page).is_file(), page


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_a_broken_link_fails_the_build(tmp_path):
    """--strict really is strict: a link to a heading that does not exist stops the build."""
    copy = tmp_path / "repo"
    copy.mkdir()
    (copy / "docs").symlink_to(DOCS)  # the hook, unchanged
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace(
        "docs_dir: docs", "docs_dir: broken")
    (copy / "mkdocs.yml").write_text(text)
    broken = copy / "broken"
    broken.mkdir()
    for page in DOCS.iterdir():
        (broken / page.name).symlink_to(page)
    (broken / "index.md").unlink()
    (broken / "index.md").write_text((DOCS / "index.md").read_text(encoding="utf-8")
                                     + "\nSee [nowhere](validation.md#no-such-heading).\n")
    bad = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "b")], cwd=copy, text=True, capture_output=True,
                         timeout=300, env=QUIET)
    assert bad.returncode != 0
    assert "no-such-heading" in bad.stderr


def test_readme_is_short_and_its_links_resolve():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target
    for command in ("make serve", "make test", "make docs"):
        assert command in text
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make ([\w-]+)", text, flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_screenshots_are_committed_and_small():
    """Every screenshot the README and the pages show (was in test_console.py, which skips as a
    whole without a browser although this needs none)."""
    shots = []
    for page in [README, *DOCS.rglob("*.md")]:
        for rel in re.findall(r"\]\(([^)]*screenshots/[^)]+\.png)\)", page.read_text("utf-8")):
            shots.append((page.parent / rel).resolve())
    assert len(shots) >= 9
    for path in shots:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 150_000, path


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


@pytest.mark.slow  # a site build (about 10 s) or a pytest run of its own
def test_the_plugin_testing_advice_runs_as_written(tmp_path, pg_dsn):
    """docs/plugins.md's plugin and its test file, in a folder of their own with their own pytest
    configuration, run by pytest against a scratch database: the advice needs nothing of ours."""
    page = (DOCS / "plugins.md").read_text(encoding="utf-8")
    plugin = fenced(page.split("## Writing a programme plugin", 1)[1], "python")[0]
    section = page[page.index("<!-- plugin-test:"):page.index("<!-- /plugin-test -->")]
    (test_source,) = fenced(section, "python")
    for helper in ("conftest", "testkit", "ingest_helpers", "tests."):
        assert helper not in test_source
    (tmp_path / "mid_day_meal.py").write_text(plugin)
    (tmp_path / "test_mid_day_meal.py").write_text(test_source)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n"
                                         "asyncio_default_fixture_loop_scope = function\n")
    with fresh_database(pg_dsn, "ingest_plugin_doc") as dsn:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "test_mid_day_meal.py"], cwd=tmp_path, text=True,
                              capture_output=True, timeout=300,
                              env=dict(env, INGEST_TEST_DSN=dsn, PYTHONPATH=""))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout

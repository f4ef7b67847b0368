"""Hooks are called in pluggy's order: tryfirst/trylast, registration order, firstresult, wrappers.

The core compiles a hook's implementations once per file (``plugins.hook_calls``) instead of
calling ``pm.hook.<name>()`` per row; these tests prove the compiled order is pluggy's own.
"""

from __future__ import annotations

import textwrap

import pytest

from ingest_server.ingest.checker import PipelineChecker
from ingest_server.plugins.loading import (PluginError, call_each, get_plugin_manager, hook_calls,
                                           load_registry)

CONTEXT = {"program_type": "event", "ingestion_name": "att", "program": "p",
           "header": ["school_id"]}

# Named so that the registration order (sorted file names) differs from the call order.
PLUGINS = {
    "a_first.py": '''
        from ingest_server import hookimpl

        @hookimpl(tryfirst=True)
        def check_row(row):
            return [(None, "first", "a_first")]

        @hookimpl
        def output_header(header):
            return None  # no answer: the next one's wins
    ''',
    "b_plain.py": '''
        from ingest_server import hookimpl

        @hookimpl
        def check_row(values):
            return [("school_id", "plain_b", values["school_id"])]

        @hookimpl
        def output_header(header):
            return ["from_b"]
    ''',
    "c_last.py": '''
        from ingest_server import hookimpl

        @hookimpl(trylast=True)
        def check_row(program, row):
            return [(None, "last", program)]
    ''',
    "d_plain.py": '''
        from ingest_server import hookimpl

        @hookimpl
        def check_row(row, values, header):
            return [(None, "plain_d", ",".join(header))]

        @hookimpl
        def output_header(header):
            return ["from_d"]
    ''',
}

WRAPPER = '''
    from ingest_server import hookimpl

    @hookimpl(wrapper=True)
    def check_row(row):
        found = yield
        return [[(None, "wrapped", str(len(found)))]] + found
'''


def write(folder, plugins):
    folder.mkdir()
    for name, source in plugins.items():
        (folder / name).write_text(textwrap.dedent(source))
    return str(folder)


def pluggy_order(pm):
    """The codes the row hooks return, in the order pluggy itself calls them."""
    answers = pm.hook.check_row(**CONTEXT, row=["S1"], values={"school_id": "S1"})
    return [code for answer in answers for _, code, _ in answer]


def checker(folder):
    return PipelineChecker(plugins_dir=folder, schema_key=f"order:{folder}",
                           schema={"school_id": {"type": "string"}}, header=["school_id"],
                           program_type="event", ingestion_name="att", program="p")


def test_row_hooks_run_in_pluggys_order(tmp_path):
    folder = write(tmp_path / "plugins", PLUGINS)
    pm = load_registry(folder).pm
    expected = pluggy_order(pm)
    # tryfirst, then the later registered before the earlier, then trylast: pluggy's order
    assert expected == ["first", "plain_d", "plain_b", "last"]
    steps = hook_calls(pm.hook.check_row, CONTEXT, ("row", "values"))
    assert [s.plugin for s in steps] == ["plugins/a_first.py", "plugins/d_plain.py",
                                         "plugins/b_plain.py", "plugins/c_last.py"]
    errors, out = checker(folder).check(["S1"])
    assert [code for _, code, _ in errors] == expected and out == ["S1"]
    # Each implementation got only the arguments it names, the per-file ones bound once.
    assert errors[1] == (None, "plain_d", "school_id") and errors[3] == (None, "last", "p")


def test_firstresult_means_the_first_answer_in_pluggys_order(tmp_path):
    folder = write(tmp_path / "plugins", PLUGINS)
    pm = load_registry(folder).pm
    assert pm.hook.output_header(**CONTEXT) == ["from_d"]
    assert [r for _, r in call_each(pm.hook.output_header, **CONTEXT)] == [["from_d"]]
    assert checker(folder).output_header == ["from_d"]


def test_a_wrapper_wraps_the_row_hooks_through_pluggy(tmp_path):
    folder = write(tmp_path / "plugins", {**PLUGINS, "e_wrapper.py": WRAPPER})
    pm = load_registry(folder).pm
    expected = pluggy_order(pm)
    assert expected == ["wrapped", "first", "plain_d", "plain_b", "last"]
    steps = hook_calls(pm.hook.check_row, CONTEXT, ("row", "values"))
    assert len(steps) == 1 and steps[0].through_pluggy
    errors, _ = checker(folder).check(["S1"])
    assert [code for _, code, _ in errors] == expected
    assert errors[0] == (None, "wrapped", "4")


def test_a_wrapper_on_a_chaining_hook_stops_start_up(tmp_path):
    folder = write(tmp_path / "plugins", {"w.py": '''
        from ingest_server import hookimpl

        @hookimpl(wrapper=True)
        def transform_row(row):
            return (yield)
    '''})
    with pytest.raises(PluginError, match="transform_row"):
        load_registry(folder)


def test_the_manager_is_fresh_each_time(tmp_path):
    folder = write(tmp_path / "plugins", PLUGINS)
    assert get_plugin_manager(folder) is not get_plugin_manager(folder)

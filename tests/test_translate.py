"""cQube spec translation: every real sample against a hand-written expected schema, and the
rejections (unknown keywords, bad values) with their details."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest_server.errors import InvalidSpec
from ingest_server.validation import (Extensions, IngestValidator, check_cerberus_schema,
                                      translate_cqube_spec)
from ingest_server.validation.translate import spec_allows_unknown

SAMPLES = Path(__file__).resolve().parent / "data" / "cqube" / "specs"

# Expected rules by shorthand (read off the sample files by hand, not produced by the code).
# Every column of these samples is also in "required" unless said otherwise; shouldnotnull
# alone never makes a column required (CQUBE.md §2).
S = {"type": "string", "coerce": "text", "nullable": False, "required": True}  # shouldnotnull
SU = {**S, "meta": {"unique": True}}  # ... and "unique": true (kept as metadata only)
s = {"type": "string", "required": True}  # string in "required", blank allowed
N = {"type": "number", "coerce": "number", "required": True, "nullable": False}
n = {"type": "number", "coerce": "number", "nullable": True}  # not shouldnotnull, not required
nR = {**n, "required": True}
S_ = {k: v for k, v in S.items() if k != "required"}  # shouldnotnull, not in "required"
N_ = {k: v for k, v in N.items() if k != "required"}
U = {"required": True, "meta": {"undeclared": True}}  # in "required" but not in "properties"


def cols(spec: str) -> list[str]:
    return spec.split()


EXPECTED = {
    "dimensions/district-dimension.json": {
        "district_id": S, "district_name": S, "state_id": S, "state_name": S,
        "latitude": nR, "longitude": nR},
    "dimensions/grade-dimension.json": {"grade_id": S, "grade": S},
    "dimensions/state-dimension.json": {
        "state_id": S, "state_name": S, "latitude": nR, "longitude": nR},
    "dimensions/subject-dimension.json": {"subject_id": S, "subject": S},
    "dimensions/telemetry.json": {
        **{c: s for c in cols("date userId pageName pageEvent pageEventName deviceType "
                              "userLocation browserType")},
        **{c: nR for c in cols("timestamp timeSpent timeIn timeOut")}},
    "programs/diksha/diksha_etb_learning-session.json": {
        **{c: S for c in cols("board subject content_name mime_type grade medium category "
                              "state_name state_code")},
        "total_no_of_plays(App and Portal)": N,
        "average_play_time_in_mins(On App and Portal)": N},
    "programs/diksha/diksha_etb_plays-per-capita.json": {
        "state_name": S, "plays_per_capita": N, "state_code": S, "latitude": N, "longitude": N},
    "programs/diksha/vsk_diksha_etb_coverage-status.json": {
        **{c: S for c in cols("textbook_id medium grade subject")},
        "linked_qr_count": N, "resource_count": N},
    "programs/diksha/vsk_diksha_etb_qr-coverage.json": {
        **{c: S for c in cols("textbook_id textbook_name medium grade subject day_of_created_on")},
        **{c: N for c in cols("qr_coverage qr_codes_linked_to_content total_qr_codes")}},
    "programs/nas/nas_all-dashboard.json": {
        **{c: S for c in cols("state_name district_name state_code district_code "
                              "learning_outcome_code subject grade learning_outcome")},
        **{c: N for c in cols("number_of_schools number_of_teachers students_surveyed "
                              "performance")}},
    "programs/nas/nas_program-started.json": {
        "state_name": S, "started": S, "state_code": S, "latitude": N, "longitude": N},
    # The sample declares "state_ode" but requires "state_code" (a typo in the real spec).
    "programs/nishtha/diksha_nishtha-program-started.json": {
        "program_name": S, "state_name": S, "total_courses": N, "total_medium": N,
        "state_ode": S_, "latitude": N, "longitude": N, "state_code": U},
    "programs/nishtha/diksha_nishtha_consumption-by-course.json": {
        **{c: S for c in cols("published_by user_state course_name program state_name "
                              "state_code")},
        **{c: N for c in cols("enrollments completion certification latitude longitude")}},
    "programs/nishtha/diksha_nishtha_consumption-by-district.json": {
        **{c: S for c in cols("program district_name state_name state_code district_code")},
        **{c: N for c in cols("total_enrollments total_completion total_certifications "
                              "certification% latitude longitude")}},
    "programs/nishtha/diksha_nishtha_percentage-enrollment-certification.json": {
        **{c: S for c in cols("program state_code")},
        **{c: N for c in cols(
            "latitude longitude total_enrolments total_completions total_certificates_issued "
            "total_courses doe local_body %_target_achieved_enrolment "
            "%_target_remaining_enrolment "
            "%_target_remaining_certificates total_expected_enrolment "
            "total_expected_certification")},
        "state_name": S_, "%_target_achieved_ertificates": N_,
        "state": U, "%_target_achieved_certificates": U},
    "programs/nishtha/diksha_nishtha_tot-courses-medium.json": {
        "program": S, "state_name": S, "started": S, "state_code": S,
        "latitude": N, "longitude": N},
    "programs/pgi/pgi_all-dashboard.json": {
        **{c: S for c in cols("state_name district_name state_code district_code")},
        **{c: N for c in cols(
            "latitude longitude outcome effective_classroom_transaction "
            "infrastructure_facilities_studententitlements school_safety_and_child_protection "
            "digital_learning governance_processes grand_total")}},
    "programs/pm-poshan/pm-poshan_access-across-india.json": {
        **{c: S for c in cols("state_name district_name state_code district_code")},
        **{c: N for c in cols("latitude longitude enrolled total_schools")},
        "meal_served": n},
    **{f"programs/school-attendance/{name}.json": {
        "date": S, "district_id": SU, "block_id": SU, "cluster_id": SU, "school_id": SU,
        measure: N}
       for name, measure in [("teachersmarked", "teachers_marked"),
                             ("teacherspresent", "teachers_marked_present"),
                             ("totalteachers", "total_teachers")]},
    "programs/udise/udise-all-dashboard.json": {
        **{c: S for c in cols("state_name district_name state_code district_code")},
        **{c: N for c in cols(
            "latitude longitude number_of_teachers number_of_schools ptr "
            "tot_schools_having_toilet tot_schools_having_drinkingwater "
            "tot_schools_having_electricity tot_schools_having_library "
            "tot_govt_n_govtaided_schools_recieved_textbook tot_schools_having_ramp "
            "%_schools_having_drinking_water %_schools_having_electricity "
            "%_schools_having_library %_govt_aided_schools_received_textbook "
            "%_schools_with_ramp")},
        "number_of_tudents": N_, "Total Enrollment CWSN": N_, "% schools having toilet": N_,
        "number_of_students": U, "total_enrollment_cwsn": U, "%_schools_having_toilet": U},
    "programs/udise/udise_program-started.json": {
        "state_name": S_, "started": S, "State Code": S_, "Latitude": N_, "Longitude": N_,
        "state": U, "state_code": U, "latitude": U, "longitude": U},
}


def _load(relative: str) -> dict:
    return json.loads((SAMPLES / relative).read_text())


def test_every_sample_has_an_expectation():
    found = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*.json")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_sample_translates_to_expected_schema(relative):
    schema = translate_cqube_spec(_load(relative))
    assert schema == EXPECTED[relative]
    assert list(schema)[: len(_load(relative)["input"]["properties"])] == \
        list(_load(relative)["input"]["properties"])
    IngestValidator(schema)  # Cerberus accepts it


def _spec(**props) -> dict:
    return {"program": "p", "input": {"type": "object", "properties": props}}


def test_types_formats_and_nullability():
    schema = translate_cqube_spec(_spec(
        a={"type": "integer", "shouldnotnull": True}, b={"type": "boolean"},
        c={"type": "string", "format": "date"}, d={"type": "string", "format": "date-time",
                                                  "shouldNotNull": True},
        e={"type": "string", "shouldnotnull": False, "unique": False},
        f={"type": ["string", "null"], "format": "email"}, g={"type": ["null", "number"]}))
    assert schema == {
        "a": {"type": "integer", "coerce": "integer", "nullable": False},
        "b": {"type": "boolean", "coerce": "boolean", "nullable": True},
        "c": {"type": "string", "format": "date"},
        "d": {"type": "string", "coerce": "text", "nullable": False, "format": "date-time"},
        "e": {"type": "string", "meta": {"unique": False}},
        "f": {"type": "string", "coerce": "text", "nullable": True, "format": "email"},
        "g": {"type": "number", "coerce": "number", "nullable": True},
    }


def test_json_schema_keywords():
    schema = translate_cqube_spec({"program": "p", "title": "T", "indexes": {"a": ["x"]},
                                   "psql_schema": "ingestion", "input": {
        "type": "object", "description": "d", "additionalProperties": False, "properties": {
            "n": {"type": "number", "minimum": 0, "maximum": 10, "exclusiveMinimum": -1,
                  "exclusiveMaximum": 11, "multipleOf": 0.5, "minLength": 2,
                  "enum": [1, 2.5, "3", True, None, {"a": 1}], "description": "x",
                  "examples": [1], "default": 0, "$comment": "c", "deprecated": False},
            "i": {"type": "integer", "enum": [1, 1.0, 1.5], "const": 1},
            "s": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[A-Z]",
                  "enum": ["AB", 1], "minimum": 3, "title": "S"},
            "b": {"type": "boolean", "const": True, "maximum": 0}}}})
    assert schema == {
        "n": {"type": "number", "coerce": "number", "nullable": True, "allowed": [1, 2.5],
              "min": 0, "max": 10, "exclusive_min": -1, "exclusive_max": 11,
              "multiple_of": 0.5},
        "i": {"type": "integer", "coerce": "integer", "nullable": True, "allowed": [1, 1.0]},
        "s": {"type": "string", "allowed": ["AB"], "minlength": 1, "maxlength": 3,
              "pattern": "^[A-Z]"},
        "b": {"type": "boolean", "coerce": "boolean", "nullable": True, "allowed": [True]},
    }


def test_additional_properties_decides_undeclared_columns():
    assert spec_allows_unknown(_spec(a={"type": "string"}))
    closed = _spec(a={"type": "string"})
    closed["input"]["additionalProperties"] = False
    translate_cqube_spec(closed)
    assert not spec_allows_unknown(closed)
    assert not spec_allows_unknown(None)  # a native Cerberus spec


def test_translated_number_column_behaviour():
    schema = translate_cqube_spec(_spec(n={"type": "number", "shouldnotnull": True},
                                        m={"type": "number"}))
    v = IngestValidator(schema)
    assert v.validate({"n": "5", "m": ""}) and v.document == {"n": 5, "m": None}
    assert v.validate({"n": "2.5", "m": "1e3"}) and v.document == {"n": 2.5, "m": 1000.0}
    assert not v.validate({"n": "", "m": "n/a"})
    assert v.errors == {"n": ["null value not allowed"], "m": ["must be of number type"]}


@pytest.mark.parametrize("body, keyword, field", [
    ({"program": "p", "input": {"type": "object", "properties": {"a": {"type": "string"}}},
      "extra": 1}, "extra", None),
    ({"program": "p", "input": {"type": "object", "properties": {"a": {"type": "string"}},
                                "additionalProperties": {"type": "string"}}},
     "additionalProperties", None),
    (_spec(a={"type": "string", "maxLength": -1}), "maxLength", "a"),
    (_spec(a={"type": "string", "anyOf": [{"type": "string"}]}), "anyOf", "a"),
    (_spec(a={"type": "string", "pattern": "("}), "pattern", "a"),
    (_spec(a={"type": "number", "multipleOf": 0}), "multipleOf", "a"),
    (_spec(a={"type": "number", "minimum": "1"}), "minimum", "a"),
    (_spec(a={"type": "string", "enum": "a"}), "enum", "a"),
    (_spec(a={"type": ["string", "number"]}), "type", "a"),
    (_spec(a={"type": ["null"]}), "type", "a"),
    (_spec(a={"type": "string", "shouldnotnull": "yes"}), "shouldnotnull", "a"),
    (_spec(a={"type": "string", "shouldnotnull": True, "shouldNotNull": False}),
     "shouldNotNull", "a"),
    (_spec(a={"type": "array"}), "type", "a"),
    (_spec(a={}), "type", "a"),
    (_spec(a={"type": "string", "format": "emailish"}), "format", "a"),
    (_spec(a={"type": "string", "unique": 1}), "unique", "a"),
    ({"input": {"type": "object", "properties": {"a": {"type": "string"}}}}, "program", None),
    ({"program": "p", "input": {"type": "array", "properties": {"a": {"type": "string"}}}},
     "type", None),
    ({"program": "p", "input": {"type": "object", "properties": {}}}, "properties", None),
    ({"program": "p", "input": {"type": "object", "properties": {"a": {"type": "string"}},
                                "required": "a"}}, "required", None),
    ({"program": "p"}, "input", None),
])
def test_rejections_name_keyword_and_field(body, keyword, field):
    with pytest.raises(InvalidSpec) as info:
        translate_cqube_spec(body)
    assert info.value.code == "invalid_spec" and info.value.status == 400
    assert info.value.details == {"keyword": keyword, "field": field}
    assert keyword in info.value.message


def test_not_a_dict_is_rejected():
    with pytest.raises(InvalidSpec):
        translate_cqube_spec(["not", "a", "spec"])


@pytest.mark.parametrize("schema, keyword, field", [
    ({"a": {"type": "nope"}}, "type", "a"),
    ({"a": {"bogus": 1}}, "bogus", "a"),
    ({"a": {"type": "number", "coerce": "roman"}}, "coerce", "a"),
    ({"a": {"type": "string", "minlength": "x"}}, "minlength", "a"),
    ({"a": "string"}, None, "a"),
    ({}, None, None),
])
def test_native_schema_check(schema, keyword, field):
    with pytest.raises(InvalidSpec) as info:
        check_cerberus_schema(schema)
    assert info.value.details == {"keyword": keyword, "field": field}


def test_native_schema_check_knows_plugin_extensions():
    ext = Extensions(rules={"even": (lambda c, v: None, {"type": "boolean"})},
                     types={"upper": str.isupper}, coercers={"upper": str.upper})
    schema = {"a": {"type": "upper", "coerce": "upper", "even": True}}
    check_cerberus_schema(schema, ext)
    with pytest.raises(InvalidSpec):
        check_cerberus_schema(schema)  # not without the plugin

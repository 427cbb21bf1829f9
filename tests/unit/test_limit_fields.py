"""The limit fields are declared once (cgwatch/limits/fields.py): the request parser, openapi.json,
``cgwatch set``'s flags and the web page's form all agree with that table."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

import pytest

from cgwatch.cli import build_parser
from cgwatch.cli.limits import set_body
from cgwatch.errors import InvalidLimit
from cgwatch.limits.fields import LIMIT_FIELDS, Kind, LimitField
from cgwatch.limits.request import FIELDS, FLAGS, Mode, parse_limit_request
from cgwatch.server.handlers import WEB_DIR
from cgwatch.server.openapi import OPENAPI

NAMES = [field.name for field in LIMIT_FIELDS]
BOUNDED = [field for field in LIMIT_FIELDS if field.bounds is not None]
LIMIT_REQUEST = OPENAPI["components"]["schemas"]["LimitRequest"]["properties"]


def by_name(fields: list[LimitField]) -> dict:
    return {"ids": [field.name for field in fields], "argvalues": fields}


def parse(name: str, value: object) -> object:
    return parse_limit_request(json.dumps({name: value}).encode(), Mode.PATCH).fields[name]


def refusal(name: str, value: object) -> str:
    with pytest.raises(InvalidLimit) as caught:
        parse(name, value)
    return caught.value.rule


def as_json(value: Decimal | int) -> object:
    """A bound as a request sends it exactly: decimal CPUs as a string, so every digit arrives."""
    return str(value) if isinstance(value, Decimal) else value


def set_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["set"]


# --- request parsing ------------------------------------------------------------------------


def test_the_request_parser_takes_the_tables_fields_in_its_order():
    assert list(FIELDS) == NAMES


@pytest.mark.parametrize("field", **by_name(LIMIT_FIELDS))
def test_every_field_parses_null_as_no_limit(field):
    assert parse(field.name, None) is None


@pytest.mark.parametrize("field", **by_name(BOUNDED))
def test_a_field_takes_its_bounds_and_refuses_what_lies_just_beyond(field):
    lo, hi = field.bounds
    step = Decimal("1e-9") if field.kind is Kind.CPUS else 1   # the finest a value can be
    assert parse(field.name, as_json(lo)) == lo
    assert parse(field.name, as_json(hi)) == hi
    assert refusal(field.name, as_json(hi + step)) == "max"
    if field.minus_one_unlimited and lo - step == -1:
        assert parse(field.name, -1) is None                  # Docker's -1: no limit
    else:
        assert refusal(field.name, as_json(lo - step)) == "min"


@pytest.mark.parametrize("field", **by_name([f for f in LIMIT_FIELDS if f.minus_one_unlimited]))
def test_a_field_marked_minus_one_unlimited_takes_minus_one_as_no_limit(field):
    assert parse(field.name, -1) is None


# --- openapi.json ---------------------------------------------------------------------------


def test_openapi_describes_the_tables_fields_and_then_the_flags():
    names = list(LIMIT_REQUEST)
    assert names[:len(NAMES)] == NAMES
    assert set(names[len(NAMES):]) <= set(FLAGS)


@pytest.mark.parametrize("field", **by_name(LIMIT_FIELDS))
def test_openapi_describes_each_field_from_its_row(field):
    schema = LIMIT_REQUEST[field.name]
    assert schema["description"] == field.description
    assert schema["nullable"] is True
    alternatives = schema.get("oneOf", [schema])
    assert ({"type": "integer", "enum": [-1]} in alternatives) == field.minus_one_unlimited


@pytest.mark.parametrize("field", **by_name(BOUNDED))
def test_openapi_bounds_are_the_tables_bounds(field):
    numbers = [s for s in LIMIT_REQUEST[field.name].get("oneOf", [LIMIT_REQUEST[field.name]]) if "minimum" in s]
    assert len(numbers) == 1
    expected = [float(b) if isinstance(b, Decimal) else b for b in field.bounds]
    assert [numbers[0]["minimum"], numbers[0]["maximum"]] == expected


# --- cgwatch set ----------------------------------------------------------------------------


def test_set_has_a_flag_per_row_with_the_rows_help():
    actions = {a.dest: a for a in set_parser()._actions if a.metavar == "VALUE"}
    assert list(actions) == NAMES
    for field in LIMIT_FIELDS:
        assert actions[field.name].option_strings == [field.flag]
        assert actions[field.name].help == field.help


@pytest.mark.parametrize("field", **by_name(LIMIT_FIELDS))
def test_set_sends_each_flag_as_its_rows_kind_of_json(field):
    args = set_parser().parse_args(["web", field.flag, "5"])
    assert set_body(args) == {field.name: 5 if field.kind is Kind.INTEGER else "5"}
    assert set_body(set_parser().parse_args(["web", field.flag, "unlimited"])) == {field.name: None}


# --- the web page's form --------------------------------------------------------------------


def test_the_web_form_is_exactly_the_rows_marked_for_it():
    marked = {name: schema["x-cgwatch-form"] for name, schema in LIMIT_REQUEST.items() if "x-cgwatch-form" in schema}
    rows = [field for field in LIMIT_FIELDS if field.form is not None]
    assert list(marked) == [field.name for field in rows]
    for field in rows:
        form = marked[field.name]
        assert (form["id"], form["label"], form["current"]) == (field.form.id, field.form.label, field.form.current)
        assert form["kind"] == ("int" if field.kind is Kind.INTEGER else "text")


def test_the_page_itself_names_no_form_field():
    # app.js draws the inputs from openapi.json: no input id of a limit is written in the page's files.
    page = (WEB_DIR / "index.html").read_text() + (WEB_DIR / "app.js").read_text()
    for field in LIMIT_FIELDS:
        if field.form is not None:
            assert field.form.id not in page

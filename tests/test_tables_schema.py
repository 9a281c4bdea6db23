"""Answer schemas: fields to a strict JSON Schema, strict-mode checks, answers judged like jsonschema."""

from __future__ import annotations

import pytest

from langbatch_core import SchemaError
from langbatch_core.tables import AnswerSchema, load_schema, response_format

FIELDS = [
    {"name": "sentiment", "type": "enum", "values": ["positive", "negative"], "description": "overall"},
    {"name": "score", "type": "number"},
    {"name": "stars", "type": "integer", "required": False},
    {"name": "sarcastic", "type": "boolean"},
]


def test_fields_become_a_strict_schema():
    schema = load_schema(FIELDS)
    assert schema["required"] == ["sentiment", "score", "stars", "sarcastic"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["sentiment"] == {
        "type": "string",
        "enum": ["positive", "negative"],
        "description": "overall",
    }
    assert schema["properties"]["stars"]["type"] == ["integer", "null"]
    assert response_format(schema)["json_schema"]["strict"] is True


def test_a_file_or_json_text_or_wrapped_fields(tmp_path):
    (tmp_path / "fields.json").write_text('{"fields": [{"name": "label"}]}')
    assert load_schema(tmp_path / "fields.json")["properties"] == {"label": {"type": "string"}}
    assert load_schema('[{"name": "label"}]') == load_schema(str(tmp_path / "fields.json"))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
         r"#: every property must be in \"required\" \(missing: a\)"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
         r"#: needs \"additionalProperties\": false"),
        ({"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}, "required": ["a"],
          "additionalProperties": False}, r"#/properties/a: keyword 'minLength' is not supported"),
        ({"anyOf": [{"type": "object"}]}, "top of the schema must be"),
        ({"type": "objekt"}, "invalid at type"),
    ],
)  # fmt: skip
def test_what_strict_mode_refuses_is_named_by_path(schema, message):
    with pytest.raises(SchemaError, match=message):
        load_schema(schema)


def test_bad_fields_are_named():
    with pytest.raises(SchemaError, match="enum field needs its values"):
        load_schema([{"name": "x", "type": "enum"}])
    with pytest.raises(SchemaError, match="two fields are named 'x'"):
        load_schema([{"name": "x"}, {"name": "x"}])
    with pytest.raises(SchemaError, match="type 'date' is not one of"):
        load_schema([{"name": "x", "type": "date"}])


@pytest.mark.parametrize(
    ("answer", "fits"),
    [
        ('{"sentiment": "positive", "score": 1, "stars": null, "sarcastic": false}', True),
        ('{"sentiment": "positive", "score": 0.5, "stars": 3.0, "sarcastic": true}', True),
        ('{"sentiment": "neutral", "score": 0.5, "stars": 3, "sarcastic": true}', False),
        ('{"sentiment": "positive", "score": 0.5, "stars": 3, "sarcastic": 1}', False),
        ('{"sentiment": "positive", "score": 0.5, "sarcastic": true}', False),
        ('{"sentiment": "positive", "score": 0.5, "stars": 3, "sarcastic": true, "x": 1}', False),
        ("not json", False),
    ],
)
def test_answers_are_judged_as_jsonschema_judges_them(answer, fits):
    import jsonschema
    import orjson

    schema = load_schema(FIELDS)
    checker = AnswerSchema(schema)
    assert checker._fast is not None  # the typed decode is in use for fields
    _, why = checker.check(answer)
    assert (why is None) is fits
    try:
        jsonschema.validate(orjson.loads(answer), schema)
        expected = True
    except (jsonschema.ValidationError, orjson.JSONDecodeError):
        expected = False
    assert fits is expected
    if not fits:
        assert why

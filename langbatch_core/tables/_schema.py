"""Structured answers: fields (or a JSON Schema) → ``response_format``, strict-mode checks, answer checks.

    schema = load_schema([{"name": "sentiment", "type": "enum", "values": ["positive", "negative"]},
                          {"name": "confidence", "type": "number"}])
    check_strict_schema(schema)          # SchemaError: what OpenAI's strict mode would refuse, by path
    response_format(schema)              # {"type": "json_schema", "json_schema": {..., "strict": True}}
    AnswerSchema(schema).check_all(["{...}", ...])   # parsed answers and why the others do not fit

Field types: string, number, integer, boolean, enum (with ``values``); ``required: false`` makes a field
nullable (strict mode wants every property listed in ``required``).
"""

from __future__ import annotations

import json
import keyword
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
import msgspec
import orjson

from langbatch_core.errors import SchemaError

FIELD_TYPES = ("string", "number", "integer", "boolean", "enum")
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUPPORTED = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
        "description", "title", "$defs", "definitions", "$ref", "$schema", "pattern", "format",
        "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "minItems", "maxItems",
    }
)  # fmt: skip
MAX_PROPERTIES, MAX_DEPTH, MAX_ENUM = 5000, 10, 1000
_JSON_TYPES = {"string": str, "number": float, "integer": int, "boolean": bool}


@dataclass
class Field:
    """One answer field: ``Field("sentiment", "enum", values=["positive", "negative"])``."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = True
    values: list[str] = field(default_factory=list)

    def json_schema(self) -> dict[str, Any]:
        if self.type == "enum":
            prop: dict[str, Any] = {"type": "string", "enum": list(self.values)}
        else:
            prop = {"type": self.type}
        if not self.required:
            prop["type"] = [prop["type"], "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
        if self.description:
            prop["description"] = self.description
        return prop


def fields_from(items: list[Any]) -> list[Field]:
    """Fields from dicts (``name``, ``type``, ``description``, ``required``, ``values``) or Field objects."""
    fields, seen = [], set()
    for number, item in enumerate(items, start=1):
        made = item if isinstance(item, Field) else _field(number, item)
        where = f"Field {number} ({made.name!r})"
        if made.name in seen:
            raise SchemaError(f"{where}: two fields are named {made.name!r}; give each field its own name.")
        if made.type not in FIELD_TYPES:
            raise SchemaError(f"{where}: type {made.type!r} is not one of {', '.join(FIELD_TYPES)}.")
        if made.type == "enum" and not [v for v in made.values if str(v).strip()]:
            raise SchemaError(f"{where}: an enum field needs its values, like ['positive', 'negative'].")
        made.values = [str(v).strip() for v in made.values if str(v).strip()]
        seen.add(made.name)
        fields.append(made)
    if not fields:
        raise SchemaError("The answer needs at least one field (name and type).")
    return fields


def _field(number: int, item: Any) -> Field:
    if not isinstance(item, dict) or not str(item.get("name") or "").strip():
        raise SchemaError(f"Field {number} needs a name, like {{'name': 'sentiment', 'type': 'string'}}.")
    values = item.get("values") or []
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    required = item.get("required", True)
    return Field(
        name=str(item["name"]).strip(),
        type=str(item.get("type") or "string").strip().lower(),
        description=str(item.get("description") or ""),
        required=required is not False and str(required).lower() not in ("false", "0", "no", ""),
        values=list(values),
    )


def schema_from_fields(fields: list[Any]) -> dict[str, Any]:
    """The JSON Schema (strict-mode shape) of these fields."""
    made = fields_from(fields)
    return {
        "type": "object",
        "properties": {f.name: f.json_schema() for f in made},
        "required": [f.name for f in made],
        "additionalProperties": False,
    }


def load_schema(spec: Any) -> dict[str, Any]:
    """A JSON Schema from: a list of fields, ``{"fields": [...]}``, a JSON Schema dict, JSON text, or the
    path of a ``.json`` file holding any of these. Checked for strict mode (SchemaError)."""
    if isinstance(spec, str | os.PathLike) and not str(spec).lstrip().startswith(("{", "[")):
        path = Path(spec)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SchemaError(f"Cannot read the schema file {path}: {exc.strerror or exc}.") from None
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path} is not JSON: {exc.msg} (line {exc.lineno}).") from None
    elif isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"The schema is not JSON: {exc.msg} (line {exc.lineno}).") from None
    if isinstance(spec, dict) and "fields" in spec and "properties" not in spec:
        spec = spec["fields"]
    schema: Any  # the user's JSON: check_strict_schema makes sure it is an object
    if isinstance(spec, list):
        schema = schema_from_fields(spec)
    elif isinstance(spec, dict):
        schema = spec.get("schema", spec) if spec.get("type") == "json_schema" else spec
        schema = schema.get("schema", schema) if "strict" in schema and "schema" in schema else schema
    else:
        raise SchemaError("The schema must be a list of fields or a JSON Schema object.")
    check_strict_schema(schema)
    return schema


def check_strict_schema(schema: Any) -> None:
    """SchemaError listing every rule of OpenAI's strict structured outputs the schema breaks, by path."""
    if not isinstance(schema, dict):
        raise SchemaError("A JSON Schema is an object, like {'type': 'object', 'properties': {...}}.")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top"
        raise SchemaError(f"The JSON Schema is invalid at {where}: {exc.message}.") from None
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("the top of the schema must be {'type': 'object', ...} (not anyOf or another type)")
    counts = {"properties": 0}
    _walk(schema, "#", 0, problems, counts)
    if counts["properties"] > MAX_PROPERTIES:
        problems.append(f"{counts['properties']} properties in all; strict mode allows {MAX_PROPERTIES}")
    if problems:
        listed = "; ".join(problems[:20])
        raise SchemaError(f"OpenAI's strict mode would refuse this schema: {listed}.", problems)


def schema_types(node: dict[str, Any]) -> list[Any]:
    """The ``type`` of a JSON Schema node as a list (``"string"`` -> ``["string"]``; none -> ``[None]``)."""
    kind = node.get("type")
    return kind if isinstance(kind, list) else [kind]


def _walk(node: Any, path: str, depth: int, problems: list[str], counts: dict[str, int]) -> None:
    if not isinstance(node, dict):
        return
    for key in node:
        if key not in _SUPPORTED:
            problems.append(f"{path}: keyword {key!r} is not supported")
    types = schema_types(node)
    if "object" in types or "properties" in node:
        _check_object(node, path, depth, problems)
        properties = node.get("properties") or {}
        counts["properties"] += len(properties)
        for name, sub in properties.items():
            _walk(sub, f"{path}/properties/{name}", depth + 1, problems, counts)
    if isinstance(node.get("enum"), list) and len(node["enum"]) > MAX_ENUM:
        problems.append(f"{path}: {len(node['enum'])} enum values; strict mode takes at most {MAX_ENUM}")
    if isinstance(node.get("items"), dict):
        _walk(node["items"], f"{path}/items", depth, problems, counts)
    for index, sub in enumerate(node.get("anyOf") or []):
        _walk(sub, f"{path}/anyOf/{index}", depth, problems, counts)
    for key in ("$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            _walk(sub, f"{path}/{key}/{name}", depth, problems, counts)


def _check_object(node: dict[str, Any], path: str, depth: int, problems: list[str]) -> None:
    if depth > MAX_DEPTH:
        problems.append(f"{path}: objects nested deeper than {MAX_DEPTH} levels")
    if node.get("additionalProperties") is not False:
        problems.append(f'{path}: needs "additionalProperties": false')
    properties = list((node.get("properties") or {}).keys())
    missing = [name for name in properties if name not in (node.get("required") or [])]
    if missing:
        problems.append(
            f'{path}: every property must be in "required" (missing: {", ".join(missing)}); make an '
            'optional one nullable instead, e.g. "type": ["string", "null"]'
        )


def response_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    """The ``response_format`` a chat request sends for this schema (strict)."""
    if not SCHEMA_NAME.match(name):
        raise SchemaError(f"Schema name {name!r}: use up to 64 letters, digits, '_' or '-'.")
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


# ---------------------------------------------------------------------------------------------- answers


class AnswerSchema:
    """Checks answers against a schema: a typed msgspec decode for flat schemas (fields), then jsonschema
    for what it refuses (so the verdict is always jsonschema's, and its message says why)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.fields: list[str] = list((schema.get("properties") or {}).keys())
        self._validator = jsonschema.Draft202012Validator(schema)
        self._fast = _fast_decoder(schema)

    def columns(self, texts: list[str | None]) -> tuple[dict[str, list[Any]], list[str | None]]:
        """Per field the value of each answer (None where it does not fit), and why each does not fit."""
        values: dict[str, list[Any]] = {name: [] for name in self.fields}
        errors: list[str | None] = []
        lists = [values[name] for name in self.fields]
        for text in texts:
            item, error = self._check_one(text)
            errors.append(error)
            if item is None:
                for column in lists:
                    column.append(None)
            elif isinstance(item, dict):
                for name, column in zip(self.fields, lists, strict=True):
                    column.append(item.get(name))
            else:
                for name, column in zip(self.fields, lists, strict=True):
                    column.append(getattr(item, name))
        return values, errors

    def check(self, text: str | None) -> tuple[dict[str, Any] | None, str | None]:
        """``(parsed, None)`` for an answer that fits, ``(None, why)`` for one that does not."""
        item, error = self._check_one(text)
        if item is None or isinstance(item, dict):
            return item, error
        return {name: getattr(item, name) for name in self.fields}, None

    def _check_one(self, text: str | None) -> tuple[Any, str | None]:
        if text is None:
            return None, None
        if self._fast is not None:
            try:
                return self._fast(text), None
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return None, f"the answer is not JSON ({exc})"
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            return None, f"{error.message}" + (f" (at {where})" if where else "")
        return (value if isinstance(value, dict) else {"value": value}), None


def _fast_decoder(schema: dict[str, Any]) -> Any:
    """A msgspec decoder accepting a subset of what the schema accepts, for a flat object schema."""
    properties = schema.get("properties") or {}
    if schema.get("type") != "object" or set(schema) - {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "title",
        "description",
    }:
        return None
    if schema.get("additionalProperties") is not False:
        return None
    if set(schema.get("required") or []) != set(properties):
        return None
    members = []
    for name, prop in properties.items():
        kind = _fast_type(prop)
        if kind is None or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            return None
        members.append((name, kind))
    struct = msgspec.defstruct("Answer", members, forbid_unknown_fields=True)
    return msgspec.json.Decoder(struct).decode


def _fast_type(prop: Any) -> Any:
    if not isinstance(prop, dict) or set(prop) - {"type", "enum", "description", "title"}:
        return None
    types = schema_types(prop)
    nullable = "null" in types
    base = [t for t in types if t != "null"]
    if len(base) != 1 or base[0] not in _JSON_TYPES:
        return None
    if "enum" in prop:
        values = [v for v in prop["enum"] if v is not None]
        if base[0] != "string" or not values or not all(isinstance(v, str) for v in values):
            return None
        if nullable != (None in prop["enum"]):
            return None
        kind: Any = Literal[tuple(values)]
    else:
        kind = _JSON_TYPES[base[0]]
    return kind | None if nullable else kind

"""Result types for ai_query: type strings, and JSON schemas in both directions.

``returnType`` may be written as DuckDB writes types (``STRUCT(name VARCHAR, n INTEGER)``,
``DOUBLE[]``) or as Databricks (Spark DDL) writes them (``STRUCT<name: STRING, n: INT>``,
``ARRAY<DOUBLE>``), so queries written for Databricks keep working. A ``json_schema``
responseFormat gives the matching DuckDB type, and a DDL responseFormat the JSON schema
sent to the model.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

_SPARK_NAMES = {
    "STRING": "VARCHAR", "VARCHAR": "VARCHAR", "CHAR": "VARCHAR", "INT": "INTEGER", "INTEGER": "INTEGER",
    "LONG": "BIGINT", "BIGINT": "BIGINT", "SHORT": "SMALLINT", "SMALLINT": "SMALLINT", "BYTE": "TINYINT",
    "TINYINT": "TINYINT", "FLOAT": "FLOAT", "REAL": "FLOAT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN",
    "BINARY": "BLOB", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ", "TIMESTAMP_NTZ": "TIMESTAMP",
    "DECIMAL": "DECIMAL", "DEC": "DECIMAL", "NUMERIC": "DECIMAL", "VARIANT": "JSON",
}
_TOKEN = re.compile(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),:])")


class ResultTypeError(ValueError):
    """A type string or schema that cannot be used (the message says why)."""


def _spark_tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ResultTypeError(f"unexpected {text[pos:].strip()[:20]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def spark_to_duckdb(text: str) -> str:
    """A Spark DDL type (``STRUCT<a: STRING, b: ARRAY<INT>>``) as a DuckDB type string."""
    tokens = _spark_tokens(text)
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ResultTypeError(f"{text!r} ends too early")
        token = tokens[pos]
        if expected is not None and token.upper() != expected:
            raise ResultTypeError(f"{text!r}: expected {expected!r}, found {token!r}")
        pos += 1
        return token

    def peek() -> str:
        return tokens[pos].upper() if pos < len(tokens) else ""

    def parse() -> str:
        name = take().upper()
        if name == "ARRAY":
            take("<")
            inner = parse()
            take(">")
            return inner + "[]"
        if name == "MAP":
            take("<")
            key = parse()
            take(",")
            value = parse()
            take(">")
            return f"MAP({key}, {value})"
        if name == "STRUCT":
            take("<")
            fields = []
            while peek() != ">":
                field = take()
                field = field[1:-1].replace("``", "`") if field.startswith("`") else field
                if peek() == ":":
                    take(":")
                fields.append(f"{_quote(field)} {parse()}")
                if peek() == "NOT":
                    take(), take("NULL")
                if peek() == ",":
                    take(",")
            take(">")
            return f"STRUCT({', '.join(fields)})"
        if name not in _SPARK_NAMES:
            raise ResultTypeError(f"{text!r}: unknown type {name!r}")
        mapped = _SPARK_NAMES[name]
        if peek() == "(":  # DECIMAL(10, 2), VARCHAR(20)
            take("(")
            args = [take()]
            while peek() == ",":
                take(",")
                args.append(take())
            take(")")
            if mapped == "DECIMAL":
                mapped += f"({', '.join(args)})"
        return mapped

    result = parse()
    if pos != len(tokens):
        raise ResultTypeError(f"{text!r}: unexpected {tokens[pos]!r}")
    return result


def parse_type(duckdb: ModuleType, text: str) -> Any:
    """A DuckDBPyType from DuckDB's or Spark's spelling of a type."""
    try:
        return duckdb.sqltype(text)
    except duckdb.Error:
        pass
    try:
        return duckdb.sqltype(spark_to_duckdb(text))
    except (ResultTypeError, duckdb.Error) as exc:
        raise ResultTypeError(
            f"unknown type {text!r}: write it as DuckDB does (STRUCT(a VARCHAR, b INTEGER), DOUBLE[]) "
            f"or as Databricks does (STRUCT<a: STRING, b: INT>, ARRAY<DOUBLE>) ({exc})") from None


_SCHEMA_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}


def schema_to_duckdb(schema: Any) -> str:
    """The DuckDB type a JSON schema's values fit: objects with properties become STRUCTs,
    arrays lists; anything a SQL type cannot say (unions, $ref, free-form objects) is JSON."""
    if not isinstance(schema, dict):
        return "JSON"
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: nullable, which every SQL value is
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind in _SCHEMA_TYPES:
        return _SCHEMA_TYPES[kind]
    if kind == "array" and isinstance(schema.get("items"), dict):
        return schema_to_duckdb(schema["items"]) + "[]"
    if kind == "object" and isinstance(schema.get("properties"), dict) and schema["properties"]:
        fields = ", ".join(f"{_quote(k)} {schema_to_duckdb(v)}" for k, v in schema["properties"].items())
        return f"STRUCT({fields})"
    return "JSON"


_INTEGERS = {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint"}


def duckdb_to_schema(t: Any) -> dict[str, Any]:
    """The JSON schema of a DuckDB type, for a model told to answer in that shape."""
    kind = t.id
    if kind == "struct":
        props = {name: duckdb_to_schema(child) for name, child in t.children}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    if kind == "list":
        return {"type": "array", "items": duckdb_to_schema(t.children[0][1])}
    if kind == "varchar":
        return {"type": "string"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind in _INTEGERS:
        return {"type": "integer"}
    if kind in ("float", "double", "decimal"):
        return {"type": "number"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind.startswith("timestamp"):
        return {"type": "string", "format": "date-time"}
    raise ResultTypeError(f"type {t} has no JSON schema form; use VARCHAR, numbers, BOOLEAN, DATE, TIMESTAMP, "
                     "lists and STRUCTs of them")

"""Finding and rewriting ai_query calls; type strings and schemas; Retry-After."""

from __future__ import annotations

import pytest

duckdb = pytest.importorskip("duckdb")

from gateway.batch.calls import CallError, find_calls, rewrite  # noqa: E402
from gateway.batch.client import retry_after_s  # noqa: E402
from gateway.batch.types import (  # noqa: E402
    ResultTypeError,
    duckdb_to_schema,
    parse_type,
    schema_to_duckdb,
    spark_to_duckdb,
)


def test_calls_inside_strings_and_comments_are_left_alone():
    sql = ("SELECT ai_query('résumé-ep', a::VARCHAR, failOnError => false) -- ai_query(\n"
           "FROM t /* ai_query( */ WHERE b = 'ai_query(x)' AND \"ai_query\" = 1")
    (site,) = find_calls(duckdb, sql)
    assert site.arguments == {"endpoint": "'résumé-ep'", "request": "a::VARCHAR", "failOnError": "false"}
    assert sql.encode()[site.start:site.end].decode().startswith("ai_query('résumé-ep'")
    assert rewrite(duckdb, sql, lambda s, r: f"f({r})").startswith("SELECT f(a::VARCHAR) -- ai_query(\n")


def test_positional_and_named_arguments_bind_to_databricks_parameters():
    (site,) = find_calls(duckdb, "SELECT AI_QUERY('e', concat(a, ')', b), 'INT', false, "
                                 "responseFormat := '{\"type\": \"text\"}') FROM t")
    assert site.arguments == {"endpoint": "'e'", "request": "concat(a, ')', b)", "returnType": "'INT'",
                              "failOnError": "false", "responseFormat": "'{\"type\": \"text\"}'"}


def test_nested_calls_are_rewritten_innermost_first():
    names = []

    def replace(site, request):  # type: ignore[no-untyped-def]
        names.append(site.endpoint)
        return f"F{len(names)}({request})"

    out = rewrite(duckdb, "SELECT upper(ai_query('outer', ai_query('inner', x))), ai_query('next', [1, 2][1]) FROM t",
                  replace)
    assert names == ["'inner'", "'outer'", "'next'"]
    assert out == "SELECT upper(F2(F1(x))), F3([1, 2][1]) FROM t"


def test_qualified_names_and_other_functions_are_not_calls():
    assert find_calls(duckdb, "SELECT x.ai_query(1), ai_query_v2('e', 'x'), my_ai_query('e', 'x')") == []


@pytest.mark.parametrize("sql,message", [
    ("SELECT ai_query('e')", "needs an endpoint and a request"),
    ("SELECT ai_query('e', x, tone => 1)", "no parameter 'tone'"),
    ("SELECT ai_query(endpoint => 'e', x)", "positional argument follows a named one"),
    ("SELECT ai_query('e', x, returnType => 'INT', returntype => 'INT')", "returnType is given twice"),
    ("SELECT ai_query('e', x", "missing its closing parenthesis"),
    ("SELECT ai_query('e', 1, 2, 3, 4, 5, 6)", "at most 6 arguments"),
])
def test_mistakes_in_a_call_are_named(sql, message):
    with pytest.raises(CallError, match=message):
        find_calls(duckdb, sql)


def test_spark_ddl_types_become_duckdb_types():
    assert spark_to_duckdb("STRUCT<a: STRING, `b c`: ARRAY<INT>, d DECIMAL(10,2) NOT NULL, m: MAP<STRING, DOUBLE>>") \
        == 'STRUCT("a" VARCHAR, "b c" INTEGER[], "d" DECIMAL(10, 2), "m" MAP(VARCHAR, DOUBLE))'
    assert spark_to_duckdb("ARRAY<FLOAT>") == "FLOAT[]"
    assert str(parse_type(duckdb, "STRUCT(a VARCHAR, b INTEGER[])")) == "STRUCT(a VARCHAR, b INTEGER[])"
    assert str(parse_type(duckdb, "STRUCT<a: LONG>")) == "STRUCT(a BIGINT)"
    for bad in ("STRUCT<a STRING", "WIBBLE", "ARRAY<INT>>"):
        with pytest.raises(ResultTypeError, match="unknown type"):
            parse_type(duckdb, bad)


def test_json_schemas_and_types_convert_both_ways():
    schema = {"type": "object", "properties": {
        "title": {"type": "string"}, "authors": {"type": "array", "items": {"type": "string"}},
        "year": {"type": ["integer", "null"]}, "extra": {"anyOf": [{"type": "string"}, {"type": "number"}]}}}
    assert schema_to_duckdb(schema) == 'STRUCT("title" VARCHAR, "authors" VARCHAR[], "year" BIGINT, "extra" JSON)'
    assert schema_to_duckdb({"type": "object"}) == "JSON"
    t = parse_type(duckdb, "STRUCT<t: STRING, k: ARRAY<STRING>, n: INT, s: DOUBLE, d: DATE>")
    assert duckdb_to_schema(t) == {
        "type": "object", "required": ["t", "k", "n", "s", "d"], "additionalProperties": False, "properties": {
            "t": {"type": "string"}, "k": {"type": "array", "items": {"type": "string"}}, "n": {"type": "integer"},
            "s": {"type": "number"}, "d": {"type": "string", "format": "date"}}}
    with pytest.raises(ResultTypeError, match="no JSON schema form"):
        duckdb_to_schema(parse_type(duckdb, "MAP(VARCHAR, INTEGER)"))


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_s("2") == 2.0 and retry_after_s("0.5") == 0.5
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert retry_after_s(None) is None and retry_after_s("soon") is None

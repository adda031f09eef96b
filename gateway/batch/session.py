"""One ``gateway batch`` run: a DuckDB connection, the statements in order, the last result."""

from __future__ import annotations

import decimal
import re
import secrets
import time
from typing import Any

import msgspec
import orjson

from gateway.batch import import_duckdb
from gateway.batch.ai_query import AiQueryFunction, CallSpec, ResultKind
from gateway.batch.calls import CallError, CallSite, mentions_ai_query, rewrite
from gateway.batch.client import BackgroundLoop, ClientOptions, GatewayClient, GatewayRequestError
from gateway.batch.store_tables import load_store_table, named_store_tables
from gateway.batch.types import ResultTypeError, duckdb_to_schema, parse_type, schema_to_duckdb
from gateway.config import GatewayConfig

_FUNCTION_NAME = re.compile(r"__ai_query_(\d+)")
_UDF_PREFIX = "Python exception occurred while executing the UDF: "


class BatchError(Exception):
    """The batch stopped: bad SQL, a failed row, an unreachable gateway. The message says which."""


class BatchOptions(msgspec.Struct, frozen=True, kw_only=True):
    client: ClientOptions | None = None  # None: ai_query is refused with a message saying why
    tables: dict[str, str] = {}  # view name -> CSV / Parquet / JSON file
    store: GatewayConfig | None = None  # where usage and inference come from
    since: float = 0.0  # Unix seconds: store rows older than this are not loaded


class BatchSession:
    """Runs statements in one DuckDB connection; ``close`` releases the client and loop."""

    def __init__(self, options: BatchOptions, *, client: GatewayClient | None = None) -> None:
        self.duckdb = import_duckdb()
        self.options = options
        # No network here: an extension DuckDB would download fails at once with a clear
        # message instead of trying (parquet, json and icu are built in).
        self.conn = self.duckdb.connect(config={"autoinstall_known_extensions": False})
        self.batch_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        self.functions: list[AiQueryFunction] = []
        self.loaded: dict[str, int] = {}  # store table -> rows copied in
        self._client = client
        self._loop: BackgroundLoop | None = None
        self._tasks: dict[str, str] = {}
        for name, path in options.tables.items():
            self._sql(f"CREATE VIEW {_ident(name)} AS SELECT * FROM {_literal(path)}")

    def summary(self) -> str | None:
        """What ai_query did, for the end of a run; None when the SQL had no ai_query."""
        if not self.functions or self._client is None:
            return None
        stats = self._client.stats
        failed = sum(f.failed_rows for f in self.functions)
        return (f"ai_query: {stats.calls} requests, {stats.retries} retries, {failed} rows failed; "
                f"request tag batch_id={self.batch_id}")

    def run(self, sql: str) -> Any:
        """Run every statement of ``sql``; the last one's result as an Arrow table."""
        try:
            statements = self.conn.extract_statements(sql)
        except self.duckdb.Error as exc:
            raise BatchError(self._explain(exc)) from None
        if not statements:
            raise BatchError("no SQL statement to run")
        result = None
        for statement in statements:
            text = statement.query
            self._load_store_tables(text)
            if mentions_ai_query(text):
                try:
                    text = rewrite(self.duckdb, text, self._register)
                except (CallError, ResultTypeError) as exc:
                    raise BatchError(str(exc)) from None
            result = self._sql(text, materialize=True)
        return result

    def _sql(self, text: str, *, materialize: bool = False) -> Any:
        try:
            relation = self.conn.sql(text)
            # A SELECT's relation runs when it is read, so read it once.
            return relation.to_arrow_table() if materialize and relation is not None else relation
        except self.duckdb.Error as exc:
            raise BatchError(self._explain(exc)) from None

    def _explain(self, exc: Exception) -> str:
        failed = next((f.failure for f in self.functions if f.failure), None)
        if failed:
            return failed
        text = str(exc).replace(_UDF_PREFIX, "")
        return _FUNCTION_NAME.sub("ai_query", text)

    # ---- the store's tables ------------------------------------------------------------

    def _load_store_tables(self, text: str) -> None:
        if self.options.store is None:
            return
        for table in sorted(named_store_tables(self.duckdb, text)):
            if table not in self.loaded and not self._exists(table):
                try:
                    self.loaded[table] = load_store_table(self.conn, self.options.store, table, self.options.since)
                except Exception as exc:  # noqa: BLE001 - StoreQueryError and the drivers' own
                    raise BatchError(f"cannot read the {table} table from the store: {exc}") from None

    def _exists(self, table: str) -> bool:
        return bool(self.conn.sql(
            f"SELECT 1 FROM duckdb_tables() WHERE table_name = {_literal(table)} "
            f"UNION ALL SELECT 1 FROM duckdb_views() WHERE view_name = {_literal(table)}").fetchall())

    # ---- ai_query call sites -----------------------------------------------------------

    def _gateway(self) -> tuple[GatewayClient, BackgroundLoop]:
        if self._loop is None:
            if self._client is None:
                if self.options.client is None:
                    raise CallError("ai_query needs a running gateway: pass --url and --token "
                                    "(or set GATEWAY_URL and GATEWAY_TOKEN)")
                self._client = GatewayClient(self.options.client)
            self._loop = BackgroundLoop()
            self._loop.run(self._client.open())
        assert self._client is not None
        return self._client, self._loop

    def _constant(self, site: CallSite, name: str) -> Any:
        text = site.arguments.get(name)
        if text is None:
            return None
        if m := re.fullmatch(r"(?is)named_struct\s*\((.*)\)", text.strip()):  # Databricks' struct literal
            try:
                values = self.conn.sql(f"SELECT {m.group(1)}\n").fetchall()[0]
            except self.duckdb.Error as exc:
                raise CallError(f"ai_query's {name} must be a constant: {exc}") from None
            if len(values) % 2:
                raise CallError(f"ai_query's {name}: named_struct takes name, value pairs")
            return dict(zip(values[::2], values[1::2]))
        try:
            return self.conn.sql(f"SELECT ({text}\n)").fetchall()[0][0]
        except self.duckdb.Error as exc:
            raise CallError(f"ai_query's {name} must be a constant ({text}): {self._explain(exc)}") from None

    def _register(self, site: CallSite, request: str) -> str:
        """Register the function for one call site; the SQL that calls it."""
        endpoint = self._constant(site, "endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise CallError(f"ai_query's endpoint must be a string: {site.arguments['endpoint']}")
        fail_on_error = self._constant(site, "failOnError")
        if fail_on_error is None:
            fail_on_error = True
        if not isinstance(fail_on_error, bool):
            raise CallError(f"ai_query's failOnError must be true or false, not {site.arguments['failOnError']}")
        params = self._constant(site, "modelParameters") or {}
        if not isinstance(params, dict):
            raise CallError("ai_query's modelParameters must be a struct, e.g. "
                            "named_struct('max_tokens', 100, 'temperature', 0.2) or {'max_tokens': 100}")
        params = _json_values(params)
        client, loop = self._gateway()
        if endpoint not in self._tasks:
            try:
                self._tasks[endpoint] = loop.run(client.endpoint_task(endpoint, {"batch_id": self.batch_id}))
            except GatewayRequestError as exc:
                raise CallError(str(exc)) from None
        task = self._tasks[endpoint]
        kind, result_type, response_format = self._result_of(site, task)
        index = len(self.functions) + 1
        spec = CallSpec(index=index, endpoint=endpoint, task=task, kind=kind,  # type: ignore[arg-type]
                        result_type=result_type, fail_on_error=fail_on_error,
                        model_parameters=params, response_format=response_format)
        # A top-level JSON result goes out of the function as VARCHAR (DuckDB takes Arrow's JSON
        # type only inside nested types) and becomes JSON in SQL.
        declared = "VARCHAR" if result_type == "JSON" else result_type
        sql_type = declared if fail_on_error else f"STRUCT(result {result_type}, errorMessage VARCHAR)"
        arrow_type = self.conn.sql(f"SELECT NULL::{sql_type} AS v").to_arrow_table().schema.field("v").type
        function = AiQueryFunction(spec, client, loop, arrow_type, self.batch_id)
        name = f"__ai_query_{index}"
        self.conn.create_function(name, function, ["VARCHAR"], sql_type, type="arrow",
                                  null_handling="special", side_effects=True)
        self.functions.append(function)
        call = f"{name}(CAST(({request}\n) AS VARCHAR))"
        return f"CAST({call} AS JSON)" if result_type == "JSON" and fail_on_error else call

    def _result_of(self, site: CallSite, task: str) -> tuple[ResultKind, str, dict[str, Any] | None]:
        """The result kind, its DuckDB type, and the response_format to send."""
        return_type = self._constant(site, "returnType")
        fmt_text = self._constant(site, "responseFormat")
        declared = str(parse_type(self.duckdb, return_type)) if return_type is not None else None
        if task == "embeddings":
            if fmt_text is not None:
                raise CallError(f"ai_query's responseFormat is for chat endpoints, not {site.endpoint}")
            return "embedding", declared or "FLOAT[]", None
        response_format, format_type = self._response_format(fmt_text)
        result_type = declared or format_type
        if result_type is None:
            return "text", "VARCHAR", response_format
        return ("json" if result_type == "JSON" else "typed"), result_type, response_format

    def _response_format(self, text: Any) -> tuple[dict[str, Any] | None, str | None]:
        """responseFormat as sent to the model, and the result type it implies (None: text).
        It is an OpenAI response_format object as JSON text, or a type (DDL) whose JSON
        schema the model is asked to follow."""
        if text is None:
            return None, None
        if not isinstance(text, str):
            raise CallError("ai_query's responseFormat must be a string")
        if text.lstrip().startswith("{"):
            try:
                fmt = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise CallError(f"ai_query's responseFormat is not valid JSON: {exc}") from None
            kind = fmt.get("type") if isinstance(fmt, dict) else None
            if kind == "text":
                return fmt, None
            if kind == "json_object":
                return fmt, "JSON"
            if kind == "json_schema" and isinstance(fmt.get("json_schema"), dict):
                return fmt, schema_to_duckdb(fmt["json_schema"].get("schema"))
            raise CallError("ai_query's responseFormat must have type text, json_object or json_schema "
                            "(with json_schema.schema)")
        t = parse_type(self.duckdb, text)
        if t.id != "struct":
            raise CallError(f"ai_query's responseFormat as a type must be a STRUCT, not {t}")
        name = "response"
        # STRUCT<name: STRUCT<...>>: the outer field names the schema, as in Databricks' examples.
        if len(t.children) == 1 and t.children[0][1].id == "struct":
            name, t = t.children[0]
        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": duckdb_to_schema(t), "strict": True}}
        return fmt, str(t)

    def close(self) -> None:
        if self._loop is not None:
            if self._client is not None:
                self._loop.run(self._client.close())
            self._loop.close()
            self._loop = None
        self.conn.close()


def _json_values(value: Any) -> Any:
    """A constant as JSON-ready values: DuckDB gives 0.2 as a Decimal."""
    if isinstance(value, dict):
        return {k: _json_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_values(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: Output file suffixes and the DuckDB COPY options that write them.
OUTPUT_FORMATS = {".parquet": "FORMAT parquet", ".csv": "FORMAT csv, HEADER true",
                  ".jsonl": "FORMAT json", ".ndjson": "FORMAT json", ".json": "FORMAT json"}


def write_file(session: BatchSession, table: Any, path: str) -> None:
    """Write a result to ``path``, in the format its suffix names (JSON is one object a line)."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in OUTPUT_FORMATS:
        raise BatchError(f"--output {path}: name a .parquet, .csv or .jsonl file")
    session.conn.register("__batch_result", table)
    try:
        session.conn.sql(f"COPY __batch_result TO {_literal(path)} ({OUTPUT_FORMATS[suffix]})")
    except session.duckdb.Error as exc:
        raise BatchError(f"cannot write {path}: {exc}") from None
    finally:
        session.conn.unregister("__batch_result")

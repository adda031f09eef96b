"""Find ``ai_query(...)`` calls in SQL text and rewrite them.

A Python function registered in DuckDB has one return type and positional parameters only,
while ai_query's result type depends on its arguments (``returnType``, ``failOnError``, the
endpoint's task) and takes named ones (``failOnError => false``). So each call site becomes
a call to a function of its own, ``__ai_query_N(CAST((request) AS VARCHAR))``, registered
with the type that site needs; the other arguments are constants read before the statement
runs.

Call sites are found with DuckDB's own tokenizer, so strings, quoted names and comments that
happen to contain ``ai_query(`` are left alone, and any statement kind works (SELECT,
CREATE TABLE AS, COPY, INSERT). Token positions are byte offsets into the UTF-8 text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

import msgspec

#: ai_query's parameters, in Databricks' positional order.
PARAMETERS = ("endpoint", "request", "returnType", "failOnError", "modelParameters", "responseFormat")
_BY_LOWER = {p.lower(): p for p in PARAMETERS}
_NAMED = re.compile(rb"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=>|:=)\s*(.*)$", re.DOTALL)
_OPEN, _CLOSE = b"([{", b")]}"


class CallError(ValueError):
    """An ai_query call that cannot be run as written (the message says why)."""


class CallSite(msgspec.Struct, frozen=True):
    """One ``ai_query(...)`` in a statement: its byte span and its arguments by parameter name
    (the argument texts as written)."""

    start: int
    end: int
    arguments: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.arguments["endpoint"]


def _bind(args: list[bytes], text: str) -> dict[str, str]:
    """Positional and named arguments -> {parameter: text}; a mistake raises CallError."""
    bound: dict[str, str] = {}
    for i, arg in enumerate(args):
        if m := _NAMED.match(arg):
            name = _BY_LOWER.get(m.group(1).decode().lower())
            if name is None:
                raise CallError(f"ai_query has no parameter {m.group(1).decode()!r} "
                                f"(it takes {', '.join(PARAMETERS)}): {text}")
            value = m.group(2)
        else:
            if any(_NAMED.match(a) for a in args[:i]):
                raise CallError(f"ai_query: a positional argument follows a named one: {text}")
            if i >= len(PARAMETERS):
                raise CallError(f"ai_query takes at most {len(PARAMETERS)} arguments: {text}")
            name, value = PARAMETERS[i], arg
        if name in bound:
            raise CallError(f"ai_query: {name} is given twice: {text}")
        bound[name] = value.decode().strip()
    for required in ("endpoint", "request"):
        if not bound.get(required):
            raise CallError(f"ai_query needs an endpoint and a request: {text}")
    return bound


def find_calls(duckdb: ModuleType, sql: str) -> list[CallSite]:
    """The outermost ai_query calls of ``sql`` in order (calls nested in an argument are found
    when that argument is rewritten)."""
    raw = sql.encode()
    tokens = duckdb.tokenize(sql)
    bounds = [(start, tokens[i + 1][0] if i + 1 < len(tokens) else len(raw), kind)
              for i, (start, kind) in enumerate(tokens)]
    operator = duckdb.token_type.operator
    calls: list[CallSite] = []
    i = 0
    while i < len(bounds):
        start, end, kind = bounds[i]
        word = raw[start:end].strip()
        follows_dot = i > 0 and raw[bounds[i - 1][0]:bounds[i - 1][1]].strip().endswith(b".")
        opens = i + 1 < len(bounds) and bounds[i + 1][2] == operator \
            and raw[bounds[i + 1][0]:bounds[i + 1][1]].lstrip().startswith(b"(")
        if word.lower() != b"ai_query" or kind == operator or follows_dot or not opens:
            i += 1
            continue
        # Walk the operator tokens from the opening parenthesis to its match, splitting the
        # arguments at the commas directly inside it.
        depth, args, arg_start, j, close = 0, [], -1, i + 1, -1
        while j < len(bounds) and close < 0:
            s, e, k = bounds[j]
            if k == operator:
                for offset, byte in enumerate(raw[s:e]):
                    p = s + offset
                    if byte in _OPEN:
                        depth += 1
                        if depth == 1:
                            arg_start = p + 1
                    elif byte in _CLOSE:
                        depth -= 1
                        if depth == 0:
                            args.append(raw[arg_start:p])
                            close = p + 1
                            break
                    elif byte == ord(",") and depth == 1:
                        args.append(raw[arg_start:p])
                        arg_start = p + 1
            j += 1
        if close < 0:
            raise CallError("ai_query( is missing its closing parenthesis")
        text = raw[start:close].decode()
        args = [] if len(args) == 1 and not args[0].strip() else args
        calls.append(CallSite(start, close, _bind(args, text)))
        while i < len(bounds) and bounds[i][0] < close:
            i += 1
    return calls


def rewrite(duckdb: ModuleType, sql: str, replace: Callable[[CallSite, str], str]) -> str:
    """``sql`` with each ai_query call (innermost first) replaced by ``replace(site,
    rewritten_request)``, the text of the call to run in its place."""
    calls = find_calls(duckdb, sql)
    if not calls:
        return sql
    raw = sql.encode()
    out, last = [], 0
    for site in calls:
        request = rewrite(duckdb, site.arguments["request"], replace)
        out += [raw[last:site.start], replace(site, request).encode()]
        last = site.end
    out.append(raw[last:])
    return b"".join(out).decode()


def mentions_ai_query(sql: str) -> bool:
    """A cheap pre-check before tokenizing."""
    return "ai_query" in sql.lower()

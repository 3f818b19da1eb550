"""The catalog: one row per run built from its manifest and annotations, and the
``where`` conditions that filter it (parsed here, never executed as SQL text)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from workbench.model import (
    FACTOR_GROUPS,
    ConfigError,
    RunInfo,
)
from workbench.store.layout import OUTCOME_SECTION

if TYPE_CHECKING:
    import polars as pl
    import xarray as xr

__all__ = ["WALL_CLOCK_FROM_NS", "WHERE_FUNCTIONS", "check_where", "wall_clock_start"]


_BASE_COLUMNS = (
    "run_id",
    "name",
    "outcome",
    "start",
    "start_clock",
    "duration_s",
    "n_streams",
    "n_events",
    "n_skipped",
    "salvaged",
    "reader",
    "format_version",
    "fps",
    "source",
    "size_bytes",
    "ingested_at",
    "start_ns",
    "end_ns",
    "outcome_ns",
)


def _span(streams: dict[str, xr.Dataset], events: pl.DataFrame) -> tuple[int, int]:
    import numpy as np

    lo: list[int] = []
    hi: list[int] = []
    for ds in streams.values():
        if ds.sizes.get("time", 0):
            t = np.asarray(ds["time"].values)
            if t.dtype.kind == "M":
                t = t.astype("datetime64[ns]").astype(np.int64)
            lo.append(int(t.min()))
            hi.append(int(t.max()))
    if events.height:
        lo.append(int(events["time"].min()))  # type: ignore[arg-type]
        hi.append(int(events["time"].max()))  # type: ignore[arg-type]
    if not lo:
        return 0, 0
    return min(lo), max(hi)


def _outcome_time(events: pl.DataFrame) -> int | None:
    import polars as pl

    if events.height <= 10_000:  # a few events: as lists
        times = [t for t, k in zip(events["time"].to_list(), events["kind"].to_list(), strict=True)
                 if k in ("success", "failure")]
        return int(max(times)) if times else None
    ends = events.filter(pl.col("kind").is_in(["success", "failure"]))
    return int(ends["time"].max()) if ends.height else None  # type: ignore[arg-type]


def _column_values(values: list[Any]) -> tuple[list[Any], Any]:
    """Pick one polars dtype for a catalog column; mixed types become strings."""
    import polars as pl

    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return values, pl.String
    if kinds == {bool}:
        return values, pl.Boolean
    if kinds == {int}:
        return values, pl.Int64
    if kinds <= {int, float}:
        return [None if v is None else float(v) for v in values], pl.Float64
    if kinds == {str}:
        return values, pl.String
    return [None if v is None else str(v) for v in values], pl.String


def _rows_to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    import polars as pl

    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    data = {}
    for col in columns:
        values, dtype = _column_values([row.get(col) for row in rows])
        if col == "start":
            data[col] = pl.Series(col, values, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
        else:
            data[col] = pl.Series(col, values, dtype=dtype)
    return _finalize(pl.DataFrame(data) if data else pl.DataFrame())


def _finalize(df: pl.DataFrame) -> pl.DataFrame:
    """Canonical column order and row order; empty catalogs keep the base columns."""
    import polars as pl

    if df.width == 0 or df.height == 0:  # every empty catalog has the same schema
        return pl.DataFrame(
            {
                "run_id": pl.Series([], dtype=pl.String),
                "name": pl.Series([], dtype=pl.String),
                "outcome": pl.Series([], dtype=pl.String),
                "start": pl.Series([], dtype=pl.Datetime("ns", "UTC")),
                "duration_s": pl.Series([], dtype=pl.Float64),
            }
        )
    null_cols = [c for c, t in df.schema.items() if t == pl.Null]
    if null_cols:
        df = df.with_columns(pl.col(null_cols).cast(pl.String))
    base = [c for c in _BASE_COLUMNS if c in df.columns]
    factors = sorted(c for c in df.columns if c.split(".", 1)[0] in FACTOR_GROUPS)
    rest = sorted(set(df.columns) - set(base) - set(factors))
    return df.select(base + factors + rest).sort("run_id")


def _typed_nulls(a: pl.DataFrame, b: pl.DataFrame) -> list[pl.DataFrame]:
    """*a* and *b* with a column that is all null (typed String by :func:`_finalize`) on
    one side cast to the other side's type, so that values arriving later (a metric
    of runs that had none) keep their own type instead of becoming text."""
    import polars as pl

    fixes: tuple[list[pl.Expr], list[pl.Expr]] = ([], [])
    for col in set(a.columns) & set(b.columns):
        ta, tb = a.schema[col], b.schema[col]
        if ta == tb:
            continue
        if ta == pl.String and a[col].null_count() == a.height:
            fixes[0].append(pl.col(col).cast(tb))
        elif tb == pl.String and b[col].null_count() == b.height:
            fixes[1].append(pl.col(col).cast(ta))
    return [df.with_columns(fix) if fix else df for df, fix in zip((a, b), fixes, strict=True)]


def _catalog_row(manifest: dict[str, Any], annotations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    info = RunInfo.from_dict(manifest["info"])
    prov = info.provenance
    start, start_clock = wall_clock_start(info)
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "name": info.name,
        "outcome": manifest.get("outcome"),
        "outcome_ns": manifest.get("outcome_ns"),
        "start": start,
        "duration_s": info.duration_s,
        "n_streams": len(manifest.get("streams", {})),
        "n_events": int(manifest.get("n_events", 0)),
        "n_skipped": len(prov.skipped),
        "salvaged": bool(prov.extra.get("salvaged")),
        "start_clock": start_clock,
        "reader": prov.reader,
        "format_version": _format_version(prov.extra),
        "fps": _fps(prov.extra),
        "source": prov.source or (prov.sources[0].path if prov.sources else ""),
        "size_bytes": prov.size_bytes if prov.size_bytes is not None else sum(s.size for s in prov.sources),
        "ingested_at": prov.ingested_at,
        "start_ns": info.start_ns,
        "end_ns": info.end_ns,
    }
    row.update(info.factors())
    for section, values in sorted(annotations.items()):
        if section == OUTCOME_SECTION:  # resolved from the log, rules and labels together
            row["outcome"] = values.get("outcome")
            row["outcome_ns"] = values.get("outcome_ns")
            row["outcome.source"] = values.get("source")
            continue
        for key, value in values.items():
            if isinstance(value, dict | list):
                continue  # nested provenance (e.g. a label's history) stays in the annotation
            row[f"{section}.{key}" if key != section else section] = value
    return row


WALL_CLOCK_FROM_NS = 946_684_800 * 10**9
"""Times from 2000-01-01 on are taken as wall-clock (epoch) times; earlier ones as a
clock that starts near zero (boot-relative, episode-relative, synthetic)."""


_CLOCK_NAMES = {
    "boot": "boot-relative (no wall time in the log)",
    "episode": "episode-relative (no wall time in the dataset)",
    "synthetic": "synthetic (sample index at a nominal rate)",
}


def wall_clock_start(info: RunInfo) -> tuple[int | None, str]:
    """The run's wall-clock start (ns since the epoch, UTC) and where it came from.

    The log's own clock when it is wall-clock time; else the offset the reader found
    (a ULog's GPS UTC time, an HDF5 file's date and time attributes); else ``None``
    with the kind of clock the log has (boot-relative, episode-relative, synthetic).

    Examples
    --------
    >>> from workbench.model import Provenance, RunInfo
    >>> wall_clock_start(RunInfo("r", start_ns=1_700_000_000 * 10**9, end_ns=1_700_000_001 * 10**9))
    (1700000000000000000, 'log clock')
    >>> prov = Provenance(extra={"clock": "boot"}, wall_clock_offset_ns=1_600_000_000 * 10**9, wall_clock="GPS UTC")
    >>> wall_clock_start(RunInfo("r", start_ns=5 * 10**9, end_ns=6 * 10**9, provenance=prov))
    (1600000005000000000, 'GPS UTC')
    >>> wall_clock_start(RunInfo("r", start_ns=5 * 10**9, end_ns=6 * 10**9, provenance=Provenance(extra={"clock": "boot"})))
    (None, 'boot-relative (no wall time in the log)')
    """
    prov = info.provenance
    if prov.wall_clock_offset_ns is not None:
        return info.start_ns + int(prov.wall_clock_offset_ns), prov.wall_clock or "reader"
    clock = str(prov.extra.get("clock") or "")
    if info.start_ns >= WALL_CLOCK_FROM_NS and clock not in _CLOCK_NAMES:
        return info.start_ns, "log clock"
    if info.start_ns == info.end_ns == 0:
        return None, "no samples"
    return None, _CLOCK_NAMES.get(clock, "relative (no wall time in the log)")


def _format_version(extra: dict[str, Any]) -> str | None:
    v = extra.get("format_version", extra.get("codebase_version"))
    return None if v is None else str(v)


def _fps(extra: dict[str, Any]) -> float | None:
    v = extra.get("fps")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


_SQL_OPS = (("==", "="),)


WHERE_FUNCTIONS = frozenset({
    "abs", "cast", "ceil", "ceiling", "coalesce", "concat", "ends_with", "floor", "greatest", "ifnull", "least",
    "length", "char_length", "lower", "ltrim", "nullif", "round", "rtrim", "starts_with", "strpos", "substr",
    "substring", "trim", "upper", "date", "year", "month", "day", "in",
})
"""Functions a ``where`` text may call (scalar functions of one row); anything else is refused."""


_WHERE_REFUSED = ("select", "from", "with", "join", "union", "exists", "table", "values", "into", "copy", "attach",
                  "pragma", "lateral", "unnest", "intersect", "except")


def _where_tokens(where: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens of a ``where`` text, scanned as SQL scans it: ``str``
    (a '…' literal, '' escapes a quote), ``ident`` (a "…" quoted name), ``word``
    (a bare name, dotted parts included), ``punct`` (anything else). Comments,
    backticks and dollar quoting are refused: they are where a checker and the SQL
    parser can disagree about what is text."""
    hint = "e.g. hardware.robot = 'arm-a' and outcome = 'success'"
    out: list[tuple[str, str]] = []
    i, n = 0, len(where)
    while i < n:
        ch = where[i]
        if where.startswith(("--", "/*"), i) or ch in "`$#":
            msg = f"where: {where[i:i + 2]!r} is not allowed (no comments, backticks or $ quoting); {hint}"
            raise ConfigError(msg)
        if ch in "'\"":
            j = i + 1
            while True:
                k = where.find(ch, j)
                if k < 0:
                    msg = f"where: unclosed {ch} at character {i + 1}; {hint}"
                    raise ConfigError(msg)
                if k + 1 < n and where[k + 1] == ch:  # doubled quote: an escaped one
                    j = k + 2
                    continue
                break
            out.append(("str" if ch == "'" else "ident", where[i + 1:k]))
            i = k + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (where[j].isalnum() or where[j] in "_."):
                j += 1
            out.append(("word", where[i:j]))
            i = j
        elif ch.isspace():
            i += 1
        else:
            out.append(("punct", ch))
            i += 1
    return out


def check_where(where: str) -> None:
    """Refuse a ``where`` text that is more than an expression over catalog columns:
    no query (``SELECT``, ``FROM``, subqueries), no table function (``read_csv(…)``),
    only the scalar functions of :data:`WHERE_FUNCTIONS`, no comments.

    >>> check_where("hardware.robot = 'arm-a' and lower(name) like '%from%'")
    >>> check_where("x in (select a from read_csv('/etc/passwd'))")
    Traceback (most recent call last):
    ...
    workbench.model.ConfigError: where: only a condition over catalog columns is allowed, not 'select' (no queries, subqueries or table functions); e.g. hardware.robot = 'arm-a' and outcome = 'success'
    """
    hint = "e.g. hardware.robot = 'arm-a' and outcome = 'success'"
    tokens = _where_tokens(where)
    for pos, (kind, text) in enumerate(tokens):
        if kind == "punct" and text == ";":
            msg = f"where: one condition, no ';'; {hint}"
            raise ConfigError(msg)
        if kind != "word":
            continue
        if "." not in text and text.lower() in _WHERE_REFUSED:  # a dotted column name may hold such a word
            msg = (f"where: only a condition over catalog columns is allowed, not {text.lower()!r} "
                   f"(no queries, subqueries or table functions); {hint}")
            raise ConfigError(msg)
        called = pos + 1 < len(tokens) and tokens[pos + 1] == ("punct", "(")
        if called and text.lower() not in WHERE_FUNCTIONS and text.lower() not in ("and", "or", "not"):
            msg = f"where: function {text!r} is not allowed; functions: {', '.join(sorted(WHERE_FUNCTIONS - {'in'}))}; {hint}"
            raise ConfigError(msg)


def _sql_where(where: str, columns: list[str]) -> str:
    """Quote dotted column names and accept ``==`` so users can write natural filters
    (string literals are left as they are)."""
    check_where(where)
    parts, i = [], 0
    for m in re.finditer(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", where):
        outside = where[i:m.start()]
        for old, new in _SQL_OPS:
            outside = outside.replace(old, new)
        parts += [outside, m.group(0)]
        i = m.end()
    tail = where[i:]
    for old, new in _SQL_OPS:
        tail = tail.replace(old, new)
    out = "".join([*parts, tail])
    # quote dotted catalog columns not already quoted, longest first
    for col in sorted((c for c in columns if "." in c or "-" in c), key=len, reverse=True):
        out = _quote_identifier(out, col)
    return out


def _quote_identifier(text: str, col: str) -> str:
    import re

    pattern = re.compile(r'(?<![\w."\'])' + re.escape(col) + r'(?![\w"])')
    result = []
    pos = 0
    in_str: str | None = None
    i = 0
    # skip over string literals so values like 'hardware.robot' are untouched
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == in_str:
                in_str = None
            i += 1
            continue
        if ch in "'\"":
            in_str = ch
            i += 1
            continue
        m = pattern.match(text, i) if (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "._")) else None
        if m:
            result.append(text[pos:i])
            result.append(f'"{col}"')
            i = m.end()
            pos = i
            continue
        i += 1
    result.append(text[pos:])
    return "".join(result)

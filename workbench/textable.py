"""Tables for a terminal: one line per row, the columns that fit its width.

:func:`fit_table` formats a polars DataFrame as plain aligned text. Columns are taken
in the order given (most important first) while they fit the width; long values are
cut in the middle with ``…`` (a hash keeps its first 12 characters); numbers keep four significant
digits. The columns left out are named under the table, so nothing is hidden
silently. ``wide=True`` shows every column at full width (for a pager or a file).

Examples
--------
>>> import polars as pl
>>> df = pl.DataFrame({"run_id": ["a1", "b2"], "name": ["first run", "second"], "x [s]": [1.23456, None],
...                    "note": ["n" * 50, "short"]})
>>> text, hidden = fit_table(df, width=40)
>>> print(text)
run_id  name       x [s]
a1      first run  1.235
b2      second
>>> hidden
['note']
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["WIDER", "cell_text", "fit_table", "hidden_note", "print_frame", "terminal_width"]

GAP = 2
"""Spaces between columns."""
CAP = 28
"""Widest a column's values get unless ``wide`` (a header is never cut)."""
HASH_CAP = 12
"""Characters of a hex hash (checkpoint, sha256) shown unless ``wide``."""
_HEX = re.compile(r"[0-9a-f]{24,}")


def cell_text(value: Any) -> str:
    """A value as a person reads it: numbers to 4 significant digits, no ``None``.

    >>> [cell_text(v) for v in (None, 3, 0.000123456, 12345.678, float("nan"), True, "x")]
    ['', '3', '0.0001235', '1.235e+04', 'NaN', 'true', 'x']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}"
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "hour") else value.isoformat()
    return str(value).replace("\n", " ")


def _cut(text: str, width: int, *, middle: bool = False) -> str:
    """*text* in at most *width* characters: its end (or, with *middle*, its middle,
    keeping both ends of a name such as ``arm-b_dim_…_policy-v1_s05``) replaced by ``…``."""
    if len(text) <= width:
        return text
    if middle and width >= 7:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head):]
    return text[: max(1, width - 1)] + "…"


def fit_table(df: Any, *, width: int = 120, keep: int = 2, wide: bool = False,
              numeric_right: bool = True, caps: dict[str, int] | None = None) -> tuple[str, list[str]]:
    """Format *df* as aligned text within *width* characters per line.

    Parameters
    ----------
    df
        A polars DataFrame; its column order is the priority order.
    width
        Characters per line (the terminal's width).
    keep
        The first *keep* columns are shown even if they alone exceed *width*.
    wide
        Every column at full width (no cutting, no fitting).
    numeric_right
        Right-align numeric columns.
    caps
        Widest a given column gets (default :data:`CAP`; ``name`` gets 40, a run's
        name being what a person reads it by).

    Returns
    -------
    tuple of (str, list of str)
        The table (header line, then one line per row) and the names of the columns
        left out because they did not fit.
    """
    import polars as pl

    columns: list[tuple[str, list[str], bool]] = []
    for name in df.columns:
        values = [cell_text(v) for v in df[name].to_list()]
        if not wide and values and all(_HEX.fullmatch(v) or not v for v in values):
            values = [_cut(v, HASH_CAP + 1) for v in values]
        numeric = df.schema[name].is_numeric() and df.schema[name] != pl.Boolean
        columns.append((name, values, numeric))
    limits = {"name": 40, **(caps or {})}
    shown: list[tuple[str, list[str], bool, int]] = []
    hidden: list[str] = []
    used = 0
    for i, (name, values, numeric) in enumerate(columns):
        natural = max([0, *(len(v) for v in values)])
        w = max(len(name), natural if wide else min(natural, limits.get(name, CAP)))  # a header is never cut
        need = w + (GAP if shown else 0)
        if wide or i < keep or used + need <= width:
            shown.append((name, values, numeric, w))
            used += need
        else:
            hidden.append(name)
    lines = []
    for row in range(-1, df.height):
        cells = []
        for name, values, numeric, w in shown:
            text = name if row < 0 else _cut(values[row], w, middle=not numeric)
            cells.append(text.rjust(w) if numeric and numeric_right else text.ljust(w))
        lines.append((" " * GAP).join(cells).rstrip())
    return "\n".join(lines), hidden


def hidden_note(hidden: Sequence[str], *, limit: int = 8) -> str:
    """One line naming the columns a table left out, and how to see them.

    >>> hidden_note(["a", "b"])
    '2 more column(s) not shown: a, b (see them with --columns A,B, --columns all, --wide or --format csv)'
    """
    names = ", ".join(hidden[:limit]) + (" …" if len(hidden) > limit else "")
    return f"{len(hidden)} more column(s) not shown: {names} (see them with --columns A,B, --columns all, --wide or --format csv)"


WIDER = "a wider terminal or --format csv/json shows every column"
"""Said under a table that left columns out, for commands without --columns."""


def terminal_width() -> int:
    """Columns of the terminal (120 when not a terminal, at least 40)."""
    import shutil

    return max(40, shutil.get_terminal_size((120, 24)).columns)


def print_frame(df: Any, fmt: str, *, wide: bool = False, fit: bool = True, hint: str | None = None) -> None:
    """*df* as JSON, CSV or a table fitting the terminal; the columns a table leaves out
    are named on stderr (with *hint*, on stdout with that hint on seeing them)."""
    import json

    import click
    import polars as pl

    if fmt == "json":
        out = df.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
        click.echo(json.dumps(out.to_dicts(), indent=1, default=str))
    elif fmt == "csv":
        click.echo(df.write_csv(), nl=False)
    else:
        text, hidden = fit_table(df, width=terminal_width() if fit else 10**6, wide=wide)
        click.echo(text)
        if hidden and hint is None:
            click.echo(hidden_note(hidden), err=True)
        elif hidden:
            click.echo(f"{len(hidden)} more column(s) not shown: {', '.join(hidden)} ({hint})")

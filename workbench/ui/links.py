"""Links that reproduce a view of the app: its state in the URL's query string.

:func:`view_state` reads what a person set -- facet filters, the text search, the
selected runs, the open tab, the comparison's axes and metrics, the replay's and the
run detail's alignment -- as query parameters; :func:`apply_state` sets them back
from a query (a link opened later, by someone else). The served app keeps the page's
address up to date (``history.replaceState`` through Panel's location), so the
address bar, a bookmark or the "Copy link" button always hold the current view.

A query is data, never code: column names must be facets of the catalog, values
must be among the column's values (then compared as labels by the DataStore's own
polars filter, ``is_in`` on the column cast to text), run ids must be in the catalog, choices must be among a
widget's options. Anything else is left out and reported in the returned list, so a
stale or hand-edited link opens what it can and says what it could not.

Query parameters: ``f.<column>=a,b`` (a facet filter), ``q`` (text search), ``sel``
(run ids, comma-separated), ``tab`` (``compare``, ``detail``, ``replay``,
``moments``, ``trends``, ``fleet``), ``by``, ``x`` (comma-separated), ``rate``, ``metric`` (comparison),
``align`` (replay), ``detail_align`` and ``signals`` (run detail), ``trend_metric``,
``trend_over`` and ``trend_within`` (trends). Values are
URL-encoded; a literal comma inside a value is written ``%2C`` twice-encoded as
``%252C`` by :func:`query_string`.

Examples
--------
>>> query_string({"f.hardware.robot": ["arm-a", "arm,b"], "tab": ["detail"]})
'f.hardware.robot=arm-a%2Carm%252Cb&tab=detail'
>>> parse_query("f.hardware.robot=arm-a%2Carm%252Cb&tab=detail")
{'f.hardware.robot': ['arm-a', 'arm,b'], 'tab': ['detail']}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

__all__ = ["TABS", "apply_state", "keep_address_current", "parse_query", "query_string", "view_state"]

TABS: tuple[str, ...] = ("compare", "detail", "replay", "moments", "trends", "fleet")
"""Names of the app's tabs in a link, in their order on the page."""

_MAX_VALUES = 5000  # values per parameter read from a link


def _split(text: str) -> list[str]:
    return [v.replace("%2C", ",") for v in text.split(",") if v != ""][:_MAX_VALUES]


def parse_query(search: str | Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """Parameter → values of a query string (``?a=1,2&b=x``) or of Panel's
    ``session_args`` (values as bytes)."""
    out: dict[str, list[str]] = {}
    if isinstance(search, str):
        pairs = parse_qsl(search.lstrip("?"), keep_blank_values=False)
    else:
        pairs = [(k, v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                 for k, vs in search.items() for v in vs]
    for key, value in pairs:
        out.setdefault(key, []).extend(_split(value))
    return out


def query_string(state: Mapping[str, Sequence[str]]) -> str:
    """The query string (no ``?``) of a state from :func:`view_state`."""
    parts = []
    for key, values in state.items():
        joined = ",".join(str(v).replace(",", "%2C") for v in values)
        parts.append(f"{quote(key, safe='.')}={quote(joined, safe='')}")
    return "&".join(parts)


def view_state(app: Any) -> dict[str, list[str]]:
    """What *app* (a :class:`workbench.ui.app.App`) shows, as query parameters."""
    data = app.data
    state: dict[str, list[str]] = {}
    for col, values in sorted(data.filters.items()):
        if values:
            state[f"f.{col}"] = [str(v) for v in values]
    if data.text.strip():
        state["q"] = [data.text.strip()]
    if data.selection:
        state["sel"] = list(data.selection)
    tab = getattr(app, "active_tab", 0)
    if tab:
        state["tab"] = [TABS[tab]]
    cmp = app.compare
    defaults = getattr(app, "_link_defaults", {})
    for name in ("by", "rate", "metric"):
        value = getattr(cmp, name)
        if value is not None and defaults.get(name) != value:
            state[name] = [str(value)]
    if list(cmp.x) != defaults.get("x", list(cmp.x)):
        state["x"] = list(cmp.x)
    if app.replay.align != "start":
        state["align"] = [app.replay.align]
    if app.detail.align != "start":
        state["detail_align"] = [app.detail.align]
    trends = getattr(app, "trends", None)
    if trends is not None:
        for name in ("metric", "over", "within"):
            value = getattr(trends, name)
            if value is not None and defaults.get(f"trend_{name}") != value:
                state[f"trend_{name}"] = [str(value)]
    return state


def _choice(obj: Any, name: str, value: str, problems: list[str]) -> None:
    objects = obj.param[name].objects
    options = list(objects.values()) if isinstance(objects, dict) else list(objects or [])
    if value in options:
        setattr(obj, name, value)
    else:
        problems.append(f"{name}={value!r} is not one of {options}")


def apply_state(app: Any, query: Mapping[str, Sequence[str]]) -> list[str]:
    """Set *app* to the view a link's *query* describes (see :func:`parse_query`).

    Returns
    -------
    list of str
        What the link asked for that could not be restored (unknown columns, run ids
        or choices), one line each; empty when everything was restored.
    """
    data = app.data
    problems: list[str] = []
    facets = set(data.facets)
    filters: dict[str, list[str]] = {}
    for key, values in query.items():
        if not key.startswith("f."):
            continue
        col = key[2:]
        if col not in facets or col not in data.catalog.columns:
            problems.append(f"no facet {col!r} (facets: {', '.join(sorted(facets))})")
            continue
        levels = set(data.levels(col))
        known = [str(v) for v in values if str(v) in levels]
        problems += [f"{col} has no value {str(v)!r}" for v in values if str(v) not in levels]
        if known:
            filters[col] = known
    text = (query.get("q") or [""])[0][:200]
    data.param.update(filters=filters, text=text)
    cmp = app.compare
    for name in ("by", "rate", "metric"):
        if query.get(name):
            _choice(cmp, name, query[name][0], problems)
    if query.get("x"):
        options = list(cmp.param.x.objects or [])
        wanted = [v for v in query["x"] if v in options]
        problems += [f"x={v!r} is not one of {options}" for v in query["x"] if v not in options]
        if wanted:
            cmp.x = wanted
    if query.get("sel"):
        present = set(data.filtered["run_id"].to_list())
        ids = [r for r in dict.fromkeys(query["sel"]) if r in present]
        missing = len(query["sel"]) - len(ids)
        if missing:
            problems.append(f"{missing} selected run id(s) are not in the filtered catalog")
        data.selection = ids
    if query.get("align"):
        _choice(app.replay, "align", query["align"][0], problems)
    if query.get("detail_align"):
        _choice(app.detail, "align", query["detail_align"][0], problems)
    trends = getattr(app, "trends", None)
    for name in ("metric", "over", "within"):
        if trends is not None and query.get(f"trend_{name}"):
            _choice(trends, name, query[f"trend_{name}"][0], problems)
    if query.get("tab"):
        name = query["tab"][0].lower()
        if name in TABS:
            app.active_tab = TABS.index(name)
        else:
            problems.append(f"tab={name!r} is not one of {list(TABS)}")
    return problems


MAX_SELECTED = 500
"""Selected run ids a link carries at most (a longer selection is left out of it)."""


def keep_address_current(app: Any) -> None:
    """In a served session, keep the page's address equal to *app*'s view (the query
    of :func:`view_state`, without the token: the cookie carries it)."""
    import panel as pn

    loc = pn.state.location
    if loc is None:
        return

    def push(*_events: Any) -> None:
        state = view_state(app)
        if len(state.get("sel", [])) > MAX_SELECTED:
            state.pop("sel")
        q = query_string(state)
        loc.search = f"?{q}" if q else ""

    watched = [(app.data, ["filters", "text", "selection"]), (app, ["active_tab"]),
               (app.compare, ["by", "x", "rate", "metric"]), (app.replay, ["align"]), (app.detail, ["align"])]
    if getattr(app, "trends", None) is not None:
        watched.append((app.trends, ["metric", "over", "within"]))
    for obj, names in watched:
        obj.param.watch(push, names)
    pn.state.onload(push)  # once the page is connected: the address drops what the link could not restore

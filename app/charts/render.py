"""Chart spec + rows -> an ECharts option (a JSON dict), drawn with pyecharts and the Hub24 theme.

A spec is a small dict: `chart_type` (one of CHART_TYPES), `x` (the category or time column), `y` (value
columns), `series` (a column whose values become separate series: grouped or stacked bars, lines),
`title`. Names that do not match the result's columns fall back to sensible defaults (the first text or
date column on x, the numeric columns as values), so an imperfect AI spec still draws. `table` has an
empty option (the page draws a table from columns and rows); `kpi` shows one number with its change
against a comparison value. `to_csv` exports the same rows.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from pyecharts import options as opts
from pyecharts.charts import Bar, Funnel, HeatMap, Line, Pie, Scatter

from .errors import BadSpec
from .runner import Result

CHART_TYPES = ("bar", "bar_stacked", "bar_horizontal", "line", "area", "pie", "donut", "funnel", "scatter",
               "heatmap", "table", "kpi")
ALIASES = {"column": "bar", "grouped_bar": "bar", "stacked_bar": "bar_stacked", "horizontal_bar": "bar_horizontal",
           "doughnut": "donut", "number": "kpi", "single_number": "kpi", "scatter_plot": "scatter"}
# Hub24 theme: Bitrix24's own palette (blue, green, orange, ...), legible on light and dark pages.
PALETTE = ["#2fc6f6", "#9dcf00", "#ff5752", "#ffa900", "#8e52ec", "#55d0e0", "#1e6ec2", "#f7a700", "#468ee5", "#bdc1c6"]
TEXT_COLOR = "#525c69"
MAX_CATEGORIES = 500


def normalize_type(chart_type: Any) -> str:
    """A known chart type for `chart_type` (aliases accepted); raises BadSpec naming the known ones."""
    t = str(chart_type or "bar").strip().lower().replace("-", "_").replace(" ", "_")
    t = ALIASES.get(t, t)
    if t not in CHART_TYPES:
        raise BadSpec(f"Unknown chart type {chart_type!r}; use one of {', '.join(CHART_TYPES)}.")
    return t


def _pick(result: Result, spec: dict) -> tuple[int | None, list[int], int | None]:
    """Column indexes for x, the value columns and the series column, falling back to defaults."""
    names = result.columns
    idx = {n: i for i, n in enumerate(names)}
    numeric = [i for i, k in enumerate(result.kinds) if k == "number"]
    x = idx.get(spec.get("x")) if isinstance(spec.get("x"), str) else None
    series = idx.get(spec.get("series")) if isinstance(spec.get("series"), str) else None
    ys_raw = spec.get("y")
    ys_raw = [ys_raw] if isinstance(ys_raw, str) else ys_raw if isinstance(ys_raw, list) else []
    ys = [idx[y] for y in ys_raw if isinstance(y, str) and y in idx and idx[y] not in (x, series)]
    if x is None:
        x = next((i for i, k in enumerate(result.kinds) if k != "number" and i != series), None)
        if x is None and len(names) > 1 and not ys:
            x = 0
    if not ys:
        ys = [i for i in numeric if i not in (x, series)] or [i for i in range(len(names)) if i not in (x, series)][-1:]
    return x, ys, series


def _label(v: Any) -> str:
    if v is None:
        return "(empty)"
    if isinstance(v, str) and len(v) >= 19 and v[10] == "T" and v.endswith(("T00:00:00+00:00", "T00:00:00")):
        return v[:10]
    return str(v)


def _num(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _theme(chart_title: str) -> dict:
    return {"title_opts": opts.TitleOpts(title=chart_title or "", title_textstyle_opts=opts.TextStyleOpts(color=TEXT_COLOR, font_size=14)),
            "legend_opts": opts.LegendOpts(type_="scroll", pos_top="bottom", textstyle_opts=opts.TextStyleOpts(color=TEXT_COLOR)),
            "tooltip_opts": opts.TooltipOpts(trigger="axis", axis_pointer_type="shadow")}


def _finish(chart: Any) -> dict:
    option = json.loads(chart.dump_options())
    option["color"] = PALETTE
    option["backgroundColor"] = "transparent"
    option["textStyle"] = {"fontFamily": "'Open Sans', 'Helvetica Neue', Arial, sans-serif", "color": TEXT_COLOR}
    option["grid"] = {"left": 12, "right": 24, "top": 48, "bottom": 48, "containLabel": True}
    return option


def _pivot(result: Result, x: int | None, ys: list[int], series: int | None) -> tuple[list[str], dict[str, list]]:
    """Categories on x and one list of values per series (a series column, or each value column)."""
    rows = result.rows
    cats: list[str] = []
    seen: dict[str, int] = {}
    for r in rows:
        key = _label(r[x]) if x is not None else ""
        if key not in seen:
            seen[key] = len(cats)
            cats.append(key)
    if len(cats) > MAX_CATEGORIES:
        raise BadSpec(f"Too many categories to draw ({len(cats)}); group the data more coarsely or use a table.")
    out: dict[str, list] = {}
    if series is not None and ys:
        for r in rows:
            name = _label(r[series])
            values = out.setdefault(name, [None] * len(cats))
            values[seen[_label(r[x]) if x is not None else ""]] = _num(r[ys[0]])
    else:
        for y in ys:
            values = [None] * len(cats)
            for r in rows:
                values[seen[_label(r[x]) if x is not None else ""]] = _num(r[y])
            out[result.columns[y]] = values
    return cats, out


def _kpi(result: Result, ys: list[int], title: str) -> dict:
    row = result.rows[0] if result.rows else []
    value = _num(row[ys[0]]) if row and ys else None
    previous = _num(row[ys[1]]) if row and len(ys) > 1 else None
    delta = None if value is None or not previous else round((value - previous) / abs(previous) * 100, 1)
    text = "—" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".").replace(",", " ")
    sub = "" if delta is None else f"{'▲' if delta >= 0 else '▼'} {abs(delta)}% vs {previous:,.0f}".replace(",", " ")
    return {"title": {"text": title or "", "left": "center", "textStyle": {"color": TEXT_COLOR, "fontSize": 14}},
            "backgroundColor": "transparent",
            "graphic": [{"type": "text", "left": "center", "top": "38%",
                         "style": {"text": text, "fontSize": 44, "fontWeight": "bold", "fill": PALETTE[6]}},
                        {"type": "text", "left": "center", "top": "64%",
                         "style": {"text": sub, "fontSize": 16, "fill": PALETTE[1] if (delta or 0) >= 0 else PALETTE[2]}}],
            "series": [], "hub24_kpi": {"value": value, "previous": previous, "delta_pct": delta}}


def option(spec: dict, result: Result) -> dict:
    """The ECharts option for `spec` over `result` ({} for a table). Raises BadSpec for an unknown chart
    type or data that cannot be drawn that way (too many categories, no numbers for a value axis)."""
    kind = normalize_type(spec.get("chart_type"))
    title = str(spec.get("title") or "")[:200]
    if kind == "table" or not result.columns:
        return {}
    x, ys, series = _pick(result, spec)
    if kind == "kpi":
        return _kpi(result, ys, title)
    if not ys:
        raise BadSpec("Nothing to draw: the result has no value column. Choose a table instead.")
    theme = _theme(title)
    if kind in ("pie", "donut", "funnel"):
        pairs = [(_label(r[x]) if x is not None else result.columns[ys[0]], _num(r[ys[0]]) or 0) for r in result.rows]
        if len(pairs) > MAX_CATEGORIES:
            raise BadSpec(f"Too many slices to draw ({len(pairs)}); group the data more coarsely or use a table.")
        theme["tooltip_opts"] = opts.TooltipOpts(trigger="item")
        if kind == "funnel":
            chart = Funnel().add(result.columns[ys[0]], pairs, sort_="descending",
                                 label_opts=opts.LabelOpts(position="inside"))
        else:
            chart = Pie().add(result.columns[ys[0]], pairs, radius=["45%", "70%"] if kind == "donut" else ["0%", "70%"],
                              label_opts=opts.LabelOpts(formatter="{b}: {d}%"))
        return _finish(chart.set_global_opts(**theme))
    if kind == "scatter":
        if x is None or result.kinds[x] != "number":
            x, ys = (ys[0], ys[1:]) if len(ys) > 1 else (x, ys)
        chart = Scatter().add_xaxis([_num(r[x]) if x is not None else i for i, r in enumerate(result.rows)])
        chart.add_yaxis(result.columns[ys[0]], [_num(r[ys[0]]) for r in result.rows], symbol_size=8,
                        label_opts=opts.LabelOpts(is_show=False))
        theme["tooltip_opts"] = opts.TooltipOpts(trigger="item")
        return _finish(chart.set_global_opts(xaxis_opts=opts.AxisOpts(type_="value", name=result.columns[x] if x is not None else ""),
                                             yaxis_opts=opts.AxisOpts(type_="value"), **theme))
    if kind == "heatmap":
        if x is None or series is None:
            others = [i for i, k in enumerate(result.kinds) if k != "number"]
            if len(others) < 2:
                raise BadSpec("A heatmap needs two category columns and a value; choose another chart type.")
            x, series = others[0], others[1]
        xs, ycats = _pivot(result, x, ys, series)
        names = list(ycats)
        data = [[i, j, v] for j, name in enumerate(names) for i, v in enumerate(ycats[name]) if v is not None]
        values = [d[2] for d in data] or [0]
        chart = HeatMap().add_xaxis(xs).add_yaxis(result.columns[ys[0]], names, data, label_opts=opts.LabelOpts(is_show=False))
        theme["tooltip_opts"] = opts.TooltipOpts(trigger="item")
        return _finish(chart.set_global_opts(visualmap_opts=opts.VisualMapOpts(min_=min(values), max_=max(values), orient="horizontal",
                                                                                pos_left="center", range_color=[PALETTE[9], PALETTE[0], PALETTE[6]]),
                                             **theme))
    cats, by_series = _pivot(result, x, ys, series)
    if kind in ("line", "area"):
        chart = Line().add_xaxis(cats)
        for name, values in by_series.items():
            chart.add_yaxis(name, values, is_smooth=False, label_opts=opts.LabelOpts(is_show=False),
                            areastyle_opts=opts.AreaStyleOpts(opacity=0.25) if kind == "area" else None,
                            stack="total" if kind == "area" and len(by_series) > 1 else None)
        return _finish(chart.set_global_opts(**theme))
    chart = Bar().add_xaxis(cats)
    for name, values in by_series.items():
        chart.add_yaxis(name, values, stack="total" if kind == "bar_stacked" else None,
                        label_opts=opts.LabelOpts(is_show=len(cats) <= 12 and len(by_series) == 1, position="top"))
    if kind == "bar_horizontal":
        chart.reversal_axis()
    elif len(cats) > 6:  # every category named: tilt the labels instead of letting ECharts skip some
        theme = {**theme, "xaxis_opts": opts.AxisOpts(axislabel_opts=opts.LabelOpts(interval=0, rotate=30))}
    return _finish(chart.set_global_opts(**theme))


def to_csv(result: Result) -> str:
    """The result as CSV text (header row first); cells that look like formulas are quoted safely."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(result.columns)
    for row in result.rows:
        w.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else
                    json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else "" if v is None else v for v in row])
    return buf.getvalue()

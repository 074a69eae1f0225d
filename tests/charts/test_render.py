"""The renderer: every chart type gives a valid ECharts option dict; CSV export."""
import json

import pytest

from app.charts import render
from app.charts.errors import BadSpec
from app.charts.runner import Result

BY_STAGE = Result(["stage", "deals", "amount"], ["text", "number", "number"],
                  [["New", 10, 1000.5], ["Won", 4, 2500], ["Lost", 3, None]])
BY_MONTH_AND_PIPELINE = Result(["month", "pipeline", "deals"], ["date", "text", "number"],
                               [["2024-01-01", "General", 3], ["2024-01-01", "Rent", 2], ["2024-02-01", "General", 5]])
XY = Result(["area", "price"], ["number", "number"], [[30.5, 100], [55, 180], [80, 260]])
KPI = Result(["this_quarter", "last_quarter"], ["number", "number"], [[120, 100]])

CASES = {
    "bar": (BY_STAGE, {"x": "stage", "y": ["deals"]}, "bar"),
    "bar_stacked": (BY_MONTH_AND_PIPELINE, {"x": "month", "y": ["deals"], "series": "pipeline"}, "bar"),
    "bar_horizontal": (BY_STAGE, {"x": "stage", "y": ["deals", "amount"]}, "bar"),
    "line": (BY_MONTH_AND_PIPELINE, {"x": "month", "y": ["deals"], "series": "pipeline"}, "line"),
    "area": (BY_STAGE, {"x": "stage", "y": ["deals"]}, "line"),
    "pie": (BY_STAGE, {"x": "stage", "y": ["deals"]}, "pie"),
    "donut": (BY_STAGE, {"x": "stage", "y": ["deals"]}, "pie"),
    "funnel": (BY_STAGE, {"x": "stage", "y": ["deals"]}, "funnel"),
    "scatter": (XY, {"x": "area", "y": ["price"]}, "scatter"),
    "heatmap": (BY_MONTH_AND_PIPELINE, {"x": "month", "y": ["deals"], "series": "pipeline"}, "heatmap"),
}


@pytest.mark.parametrize("chart_type", list(CASES))
def test_every_chart_type_gives_a_json_option(chart_type):
    result, spec, series_type = CASES[chart_type]
    option = render.option({"chart_type": chart_type, "title": "T", **spec}, result)
    assert json.loads(json.dumps(option)) == option  # plain JSON, nothing pyecharts-specific left
    assert option["series"] and all(s["type"] == series_type for s in option["series"])
    assert option["color"] == render.PALETTE and option["title"][0]["text"] == "T"


def test_grouped_stacked_and_horizontal_bars():
    grouped = render.option({"chart_type": "bar", "x": "month", "y": ["deals"], "series": "pipeline"}, BY_MONTH_AND_PIPELINE)
    assert [s["name"] for s in grouped["series"]] == ["General", "Rent"]
    assert grouped["series"][0]["data"] == [3, 5] and grouped["series"][1]["data"] == [2, None]
    assert "stack" not in grouped["series"][0] or grouped["series"][0].get("stack") is None
    stacked = render.option({"chart_type": "bar_stacked", "x": "month", "y": ["deals"], "series": "pipeline"}, BY_MONTH_AND_PIPELINE)
    assert {s["stack"] for s in stacked["series"]} == {"total"}
    horizontal = render.option({"chart_type": "bar_horizontal", "x": "stage", "y": ["deals"]}, BY_STAGE)
    assert horizontal["yAxis"][0]["data"] == ["New", "Won", "Lost"] and horizontal["xAxis"][0].get("data") is None
    assert render.option({"chart_type": "donut", "x": "stage", "y": ["deals"]}, BY_STAGE)["series"][0]["radius"] == ["45%", "70%"]
    assert render.option({"chart_type": "area", "x": "stage", "y": ["deals"]}, BY_STAGE)["series"][0]["areaStyle"]


def test_kpi_with_comparison_and_table():
    kpi = render.option({"chart_type": "kpi", "y": ["this_quarter", "last_quarter"], "title": "Deals"}, KPI)
    assert kpi["hub24_kpi"] == {"value": 120, "previous": 100, "delta_pct": 20.0}
    assert kpi["graphic"][0]["style"]["text"] == "120" and "▲ 20.0%" in kpi["graphic"][1]["style"]["text"]
    assert render.option({"chart_type": "table"}, BY_STAGE) == {}


def test_imperfect_specs_fall_back_and_bad_ones_say_why():
    option = render.option({"chart_type": "bar", "x": "nope", "y": ["missing"]}, BY_STAGE)
    assert option["xAxis"][0]["data"] == ["New", "Won", "Lost"] and len(option["series"]) == 2
    assert render.normalize_type("Stacked Bar") == "bar_stacked"
    with pytest.raises(BadSpec, match="Unknown chart type"):
        render.option({"chart_type": "radar3d"}, BY_STAGE)
    many = Result(["k", "v"], ["text", "number"], [[str(i), i] for i in range(600)])
    with pytest.raises(BadSpec, match="Too many"):
        render.option({"chart_type": "pie"}, many)


def test_csv_export_is_safe_for_spreadsheets():
    csv = render.to_csv(Result(["name", "n", "tags"], ["text", "number", "other"], [["=HYPERLINK(1)", 1, ["a"]], [None, 2.5, None]]))
    assert csv.splitlines() == ["name,n,tags", "'=HYPERLINK(1),1,\"[\"\"a\"\"]\"", ",2.5,"]


def test_many_categories_are_all_labelled():
    from app.charts import render
    from app.charts.runner import Result

    result = Result(columns=["stage", "deals"], rows=[[f"Stage {i}", i] for i in range(10)], kinds=["text", "number"])
    opt = render.option({"chart_type": "bar", "x": "stage", "y": ["deals"]}, result)
    axis = opt["xAxis"][0] if isinstance(opt["xAxis"], list) else opt["xAxis"]
    assert axis["axisLabel"]["interval"] == 0 and axis["axisLabel"]["rotate"] == 30
    assert axis["data"] == [f"Stage {i}" for i in range(10)]

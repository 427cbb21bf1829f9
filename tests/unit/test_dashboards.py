"""The dashboards: committed JSON matches the generator, every panel queries through the template
variables, uids are unique and the dashboards link to each other. And the PromQL text helpers the
live Prometheus test uses (tests/real/test_prometheus_live.py)."""

from __future__ import annotations

import json

import pytest

from dashboards import build
from dashboards.common import AGENT_UID, CONTAINER_UID, HOST_UID
from dashboards.promql import comparisons_to_bool, expand_variables, vector_selectors

UIDS = {HOST_UID, CONTAINER_UID, AGENT_UID}


def committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(build.JSON_DIR.glob("*.json"))}


def panels(board: dict) -> list[dict]:
    return board["panels"]


def all_panels():
    return [pytest.param(board, panel, id=f"{board['uid']}/{panel['title']}")
            for board in committed().values() for panel in panels(board)]


# -- the committed JSON ---------------------------------------------------------------------

def test_committed_json_is_what_the_generator_produces():
    assert build.stale() == [], f"dashboards/json is stale: run `{build.COMMAND}` and commit the result"


def test_there_are_three_dashboards_with_unique_uids():
    boards = committed()
    uids = [b["uid"] for b in boards.values()]
    assert sorted(uids) == sorted(UIDS)
    assert len(set(uids)) == len(uids)
    assert sorted(boards) == sorted(f"{uid}.json" for uid in UIDS)
    assert len({b["title"] for b in boards.values()}) == len(boards)


def test_stale_json_is_detected(tmp_path):
    build.write(tmp_path)
    assert build.stale(tmp_path) == []
    (tmp_path / f"{HOST_UID}.json").write_text("{}\n")
    (tmp_path / "old.json").write_text("{}\n")
    assert build.stale(tmp_path) == [f"{HOST_UID}.json", "old.json"]
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    build.write(tmp_path)
    assert build.stale(tmp_path) == [] and not (tmp_path / "old.json").exists()


# -- each panel -------------------------------------------------------------------------------

@pytest.mark.parametrize(("board", "panel"), all_panels())
def test_every_panel_queries_prometheus_through_the_datasource_variable(board, panel):
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"], "a panel without queries"
    for target in panel["targets"]:
        assert target["expr"].strip(), f"empty expr in {target['refId']}"
        assert target["datasource"] == panel["datasource"]
    assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


@pytest.mark.parametrize(("board", "panel"), all_panels())
def test_every_selector_filters_by_the_template_variables(board, panel):
    wanted = ['instance=~"$instance"'] + (['name=~"$name"'] if board["uid"] == CONTAINER_UID else [])
    for target in panel["targets"]:
        selectors = vector_selectors(target["expr"])
        assert selectors, target["expr"]
        for metric, matchers in selectors:
            missing = [m for m in wanted if m not in matchers]
            assert metric and not missing, f"{metric or '{...}'} lacks {missing} in {target['expr']}"


@pytest.mark.parametrize(("board", "panel"), all_panels())
def test_every_panel_has_a_unit_thresholds_and_a_place(board, panel):
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] not in ("", None)
    steps = defaults["thresholds"]["steps"]
    assert steps and steps[0]["value"] is None
    assert [s["value"] for s in steps[1:]] == sorted(s["value"] for s in steps[1:])
    assert panel["description"]
    pos = panel["gridPos"]
    assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24


def test_rate_windows_use_the_rate_interval():
    for board in committed().values():
        for panel in panels(board):
            for target in panel["targets"]:
                expr = target["expr"]
                for fn in ("rate(", "increase("):
                    if fn in expr:
                        assert "[$__rate_interval]" in expr, expr


def test_panels_do_not_overlap():
    for board in committed().values():
        cells = set()
        for panel in panels(board):
            p = panel["gridPos"]
            mine = {(x, y) for x in range(p["x"], p["x"] + p["w"]) for y in range(p["y"], p["y"] + p["h"])}
            assert not cells & mine, f"{board['uid']}: {panel['title']} overlaps another panel"
            cells |= mine


# -- templating and links ---------------------------------------------------------------------

def variables(board: dict) -> dict[str, dict]:
    return {v["name"]: v for v in board["templating"]["list"]}


def test_every_dashboard_is_templated_by_instance():
    for board in committed().values():
        instance = variables(board)["instance"]
        assert instance["query"] == "label_values(machine_cpu_cores, instance)"
        assert instance["includeAll"] and instance["allValue"] == ".*"
        assert variables(board)["datasource"]["type"] == "datasource"


def test_the_container_dashboard_is_templated_by_name():
    board = committed()[f"{CONTAINER_UID}.json"]
    assert variables(board)["name"]["query"] == 'label_values(container_info{instance=~"$instance", name!=""}, name)'


def test_each_dashboard_links_to_the_other_two():
    for board in committed().values():
        urls = {link["url"] for link in board["links"]}
        assert urls == {f"/d/{uid}" for uid in UIDS - {board["uid"]}}
        assert all(link["keepTime"] and link["includeVars"] for link in board["links"])


def test_host_panels_link_to_the_container_dashboard():
    board = committed()[f"{HOST_UID}.json"]
    per_container = [p for p in panels(board) if "{{name}}" in p["targets"][0]["legendFormat"]]
    assert per_container
    for panel in per_container:
        links = panel["fieldConfig"]["defaults"]["links"]
        assert any(link["url"].startswith(f"/d/{CONTAINER_UID}?") and "var-name=${__field.labels.name}" in link["url"]
                   for link in links)


# -- PromQL helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "want"), [
    ('up{job="cgwatch"} == 0', 'up{job="cgwatch"} == bool 0'),
    ('a{name!=""} / b{name!=""} > 0.9', 'a{name!=""} / b{name!=""} > bool 0.9'),
    ("a >= 1", "a >= bool 1"),
    ("a <= 1", "a <= bool 1"),
    ("a < 1", "a < bool 1"),
    ("a>0", "a> bool 0"),
    ("a != on(id, instance) group_left() b", "a != bool on(id, instance) group_left() b"),
    ('a{x=~"a>b", y!~"<"} > 1', 'a{x=~"a>b", y!~"<"} > bool 1'),
    ('label_replace(a, "d", ">", "s", "(.*)") < 2', 'label_replace(a, "d", ">", "s", "(.*)") < bool 2'),
    ("label_replace(a, 'd', '==', 's', '') == 2", "label_replace(a, 'd', '==', 's', '') == bool 2"),
    ('a{x="\\"}>"} >= 1', 'a{x="\\"}>"} >= bool 1'),
    ("a > bool 1", "a > bool 1"),
    ("a >bool 1", "a >bool 1"),
    ("rate(x[5m]) / rate(y[5m])", "rate(x[5m]) / rate(y[5m])"),
    ("a > 1 # b > 2\n", "a > bool 1 # b > 2\n"),
    ("(a > 1)\n  or (b < 2)", "(a > bool 1)\n  or (b < bool 2)"),
])
def test_comparisons_become_bool_outside_matchers_and_strings(expr, want):
    assert comparisons_to_bool(expr) == want


def test_bool_rewriting_is_idempotent():
    expr = 'x{a!="b"} != on(id) group_left() y or z > 0.5'
    once = comparisons_to_bool(expr)
    assert comparisons_to_bool(once) == once


@pytest.mark.parametrize(("expr", "want"), [
    ('x{instance=~"$instance", name=~"$name"}', 'x{instance=~".*", name=~".*"}'),
    ('x{a=~"${name}", b=~"${name:regex}", c=~"[[name]]"}', 'x{a=~".*", b=~".*", c=~".*"}'),
    ("rate(x[$__rate_interval])", "rate(x[10s])"),
    ("rate(x[$__interval])", "rate(x[5s])"),
    ('x{pod=~"$pod"}', 'x{pod=~".*"}'),
])
def test_template_variables_expand_to_match_everything(expr, want):
    assert expand_variables(expr) == want


@pytest.mark.parametrize(("expr", "want"), [
    ('sum by (instance, name) (rate(a_total{instance=~"$instance", cpu="total"}[$__rate_interval]))',
     [("a_total", 'instance=~"$instance", cpu="total"')]),
    ("a{x=\"1\"} / ignoring(cpu) (b / c{y=\"}\"})", [("a", 'x="1"'), ("b", ""), ("c", 'y="}"')]),
    ("topk(10, max by (name) (m)) > 1e3", [("m", "")]),
    ('{__name__="m"} and on(id) n', [("n", ""), ("", '__name__="m"')]),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', [("m", "")]),
])
def test_vector_selectors_are_found(expr, want):
    assert vector_selectors(expr) == want

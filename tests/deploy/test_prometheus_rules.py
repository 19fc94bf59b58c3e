"""Prometheus alerting rules: syntax, unit tests, the generated PrometheusRule, runbook links,
and the short-window renderer for end-to-end runs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import rules_render
from .conftest import DEPLOY, REPO, run
from .metric_names import GRAPH_FAILURE_CATEGORIES

RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yaml"))
RUNBOOK = DEPLOY / "RUNBOOK.md"
sys.path.insert(0, str(DEPLOY / "prometheus"))
import spike_rules  # noqa: E402

SYNC_SCRIPT = DEPLOY / "prometheus" / "sync_prometheusrule.py"


def _rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return data


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _rules()["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests(promtool: str) -> None:
    assert RULE_TESTS, "no promtool test files found"
    for path in RULE_TESTS:
        # The same file and rules pass and fail on reruns of promtool 2.42 (seen for the creep
        # and spike files): the rule groups of one step are not evaluated in a fixed order, so
        # an alert reads another group's recording rules from this step or the previous one,
        # which can move a "for" by one evaluation. A file must pass one of three runs; one
        # that fails all three is wrong, not unlucky.
        outputs = []
        for _ in range(3):
            result = run([promtool, "test", "rules", str(path)])
            outputs.append(result.stdout + result.stderr)
            if result.returncode == 0:
                break
        assert result.returncode == 0, "\n".join(outputs)
        assert result.stdout.count("SUCCESS") == 1, result.stdout


def test_every_alert_is_unit_tested_firing_and_resolving() -> None:
    """Each alert has, in one test group, a firing expectation followed by a silent one."""
    fire_then_resolve: set[str] = set()
    for path in RULE_TESTS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert spec["rule_files"] == ["../rules/enrollment-classifier.rules.yaml"], path
        for group in spec["tests"]:
            by_alert: dict[str, list[tuple[float, bool]]] = {}
            for case in group.get("alert_rule_test", []):
                seconds = rules_render.parse_duration(case["eval_time"])
                by_alert.setdefault(case["alertname"], []).append(
                    (seconds, bool(case.get("exp_alerts")))
                )
            # or through Prometheus's own ALERTS series
            for case in group.get("promql_expr_test", []):
                match = re.search(r'ALERTS\{alertname="(\w+)",alertstate="firing"\}', case["expr"])
                if match:
                    seconds = rules_render.parse_duration(case["eval_time"])
                    by_alert.setdefault(match.group(1), []).append(
                        (seconds, bool(case.get("exp_samples")))
                    )
            for alert, cases in by_alert.items():
                cases.sort()
                firing = [t for t, fired in cases if fired]
                if firing and any(not fired and t > firing[0] for t, fired in cases):
                    fire_then_resolve.add(alert)
    missing = {a["alert"] for a in _alerts()} - fire_then_resolve
    assert not missing, f"alerts without a fire-and-resolve unit test: {sorted(missing)}"


def test_alert_metadata() -> None:
    for alert in _alerts():
        name = alert["alert"]
        assert re.fullmatch(r"Enrollment[A-Za-z]+", name), name
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert "for" in alert, f"{name}: every alert needs `for:` to ride out blips"
        for key in ("summary", "description", "runbook_url"):
            assert alert["annotations"].get(key), f"{name}: missing annotation {key}"
        assert alert["annotations"]["runbook_url"].startswith("deploy/RUNBOOK.md#"), name


SPIKE_GROUP = "enrollment-classifier.failures"


def _failure_alerts() -> list[dict[str, Any]]:
    group = next(g for g in _rules()["groups"] if g["name"] == SPIKE_GROUP)
    return [r for r in group["rules"] if "alert" in r]


def _recorded() -> dict[str, str]:
    return {r["record"]: r["expr"] for g in _rules()["groups"] for r in g["rules"] if "record" in r}


def test_failure_rules_read_the_pre_created_counters_only() -> None:
    """Rules never read the breakdown counter (its series appear on first use)."""
    for group in _rules()["groups"]:
        for rule in group["rules"]:
            assert "enrollment_failures_total" not in rule["expr"], rule.get("alert") or rule["record"]
    counts = [e for n, e in _recorded().items() if n.startswith("category:enrollment_fresh_failures:increase")]
    assert counts and all('freshness="fresh"' in e or "sum_over_time" in e for e in counts)
    urgent = next(a for a in _failure_alerts() if a["alert"] == "EnrollmentUrgentFailureReason")
    assert "enrollment_failure_details_total" in urgent["expr"]
    assert "apnsCertificateExpired" in urgent["expr"] and "adeTokenInvalid" in urgent["expr"]


def test_count_tests_follow_the_parameters() -> None:
    params = spike_rules.load_params()
    alerts = {a["alert"]: a for a in _failure_alerts()}
    for test in params["tests"]:
        alert = alerts[test["alert"]]
        window = test["window"]
        limit = spike_rules.threshold(params, window, budget=test.get("false_alerts_per_28d"))
        assert f") >= {limit}\n" in alert["expr"]
        assert f"increase{window} >= {test['min_count']}" in alert["expr"], "count guard"
        offset = test.get("baseline_offset", params["baseline"]["offset"])
        b = f"category:enrollment_failures:{params['baseline']['range']}_offset{offset}"
        assert b in _recorded(), "the baseline's own count is recorded"
        confirm = spike_rules.surprise_two_sample(
            f"category:enrollment_fresh_failures:increase{test['confirm_window']}",
            f"category:enrollment_fresh_failures:expected{test['confirm_window']}",
            b,
        )
        confirm_limit = test.get("confirm_surprise", params["confirm_surprise"])
        assert f"{confirm}\n) >= {confirm_limit}" in alert["expr"], "confirmation"
        assert alert["for"] == test["for"]
        assert f"category:enrollment_fresh_failures:expected{window}" in _recorded()
    baseline = params["baseline"]
    share = _recorded()[f"category:enrollment_failure_share:{baseline['range']}_offset{baseline['offset']}"]
    assert f"[{baseline['range']}:1h] offset {baseline['offset']}" in share
    assert params["unknown_share"]["alert"] in alerts


def test_detail_tests_follow_the_parameters() -> None:
    """One test per pre-created (category, detail reason) pair, its threshold counting every
    pair, gated by the category's fresh failures in the same window."""
    from worker.stream.metrics import DETAIL_SERIES

    params = spike_rules.load_params()
    details = params["detail_tests"]
    assert details["series"] == len(DETAIL_SERIES), "series: the pairs the worker pre-creates"
    alerts = {a["alert"]: a for a in _failure_alerts()}
    baseline = params["baseline"]
    bd = f"detail:enrollment_failures:{baseline['range']}_offset{baseline['offset']}"
    assert bd in _recorded() and f"+ {details['pseudo_count']}" in _recorded()[bd]
    for test in details["tests"]:
        alert, window = alerts[test["alert"]], test["window"]
        limit = spike_rules.threshold(
            params, window, details["series"], budget=test.get("false_alerts_per_28d")
        )
        assert f") >= {limit}\n" in alert["expr"]
        assert f"detail:enrollment_failures:increase{window} >= {test['min_count']}" in alert["expr"]
        fresh = spike_rules.surprise_two_sample(
            f"category:enrollment_fresh_failures:increase{window}",
            f"category:enrollment_fresh_failures:expected{window}",
            f"category:enrollment_failures:{baseline['range']}_offset{baseline['offset']}",
        )
        assert f"and on (failure_category) (\n  {fresh}\n) >= {params['confirm_surprise']}" in (
            alert["expr"]), "gated by the category's fresh failures"
        assert 'freshness="fresh"' in _recorded()[f"category:enrollment_fresh_failures:increase{window}"]
        assert alert["for"] == test["for"]


def test_a_test_may_spend_its_own_false_alert_budget() -> None:
    """`false_alerts_per_28d` on one test (category or per-cause) moves that threshold only."""
    params = spike_rules.load_params()
    params["tests"][0]["false_alerts_per_28d"] = 1.0
    params["detail_tests"]["tests"][0]["false_alerts_per_28d"] = 1.0
    alerts = {
        a["alert"]: a["expr"] for a in spike_rules.build_groups(params)[1]["rules"] if "alert" in a
    }
    spike, detail = params["tests"][0], params["detail_tests"]["tests"][0]
    series = params["detail_tests"]["series"]
    for test, categories in ((spike, spike_rules.CATEGORIES), (detail, series)):
        own = spike_rules.threshold(params, test["window"], categories, budget=1.0)
        shared = spike_rules.threshold(params, test["window"], categories)
        assert own < shared
        assert f") >= {own}\n" in alerts[test["alert"]]
        assert f") >= {shared}\n" not in alerts[test["alert"]]
    rising = params["tests"][1]
    assert f") >= {spike_rules.threshold(params, rising['window'])}\n" in alerts[rising["alert"]]


def test_generated_files_are_in_step() -> None:
    sync = _load_sync_module()
    for path, wanted in sync.wanted_files().items():
        assert path.read_text(encoding="utf-8") == wanted, (
            f"{path.relative_to(REPO)} is out of date: run python deploy/prometheus/sync_prometheusrule.py"
        )


def test_surprise_matches_the_poisson_tail() -> None:
    """The PromQL surprise is close to -ln P(X >= k) for the counts the alerts act on."""
    import math

    def exact(k: int, mu: float) -> float:
        tail = 1 - sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k))
        return -math.log(tail)

    def promql(k: float, mu: float) -> float:
        return k * math.log(k / mu) - k + mu + 0.5 * math.log(6.283 * k)

    assert spike_rules.surprise("K", "M") == "K * ln(K / M) - K + M + 0.5 * ln(6.283 * K)"
    for k, mu in ((4, 0.2), (5, 0.5), (8, 1.0), (20, 6.0), (60, 30.0)):
        assert abs(promql(k, mu) - exact(k, mu)) < 1.0, (k, mu)


def test_two_sample_surprise_matches_the_binomial_tail() -> None:
    """Given k + b failures in window and baseline, -ln P(K >= k) for K ~ Bin(k + b, q),
    q = mu / (mu + b): the PromQL form is within 1.5 of the exact tail, below the Poisson
    surprise when the baseline is short, and equal to it when the baseline is long."""
    import math

    def exact(k: int, mu: float, b: int) -> float:
        n, q = k + b, mu / (mu + b)
        terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 + i * math.log(q) + (n - i) * math.log(1 - q) for i in range(k, n + 1)]
        top = max(terms)
        return -(top + math.log(sum(math.exp(t - top) for t in terms)))

    def promql(k: float, mu: float, b: float) -> float:
        return (k * math.log(k * (mu + b) / ((k + b) * mu)) + b * math.log((mu + b) / (k + b))
                + 0.5 * math.log(6.283 * k * b / (k + b)))

    def poisson(k: float, mu: float) -> float:
        return k * math.log(k / mu) - k + mu + 0.5 * math.log(6.283 * k)

    assert spike_rules.surprise_two_sample("K", "M", "B") == (
        "K * ln(K * (M + B) / ((K + B) * M)) + B * ln((M + B) / (K + B))"
        " + 0.5 * ln(6.283 * K * B / (K + B))")
    for k, mu, b in ((4, 0.035, 1), (5, 0.1, 2), (4, 0.2, 50), (5, 0.5, 30), (8, 1.0, 10), (20, 6.0, 60), (437, 336.0, 1176)):
        assert abs(promql(k, mu, b) - exact(k, mu, b)) < 1.5, (k, mu, b)
        assert promql(k, mu, b) < poisson(k, mu)
    assert abs(promql(20, 6.0, 100_000) - poisson(20, 6.0)) < 0.01


def _anchors(markdown: str) -> set[str]:
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _expand_runbook_urls(url: str) -> list[str]:
    if "{{ $labels.failure_category }}" in url:
        return [url.replace("{{ $labels.failure_category }}", c) for c in GRAPH_FAILURE_CATEGORIES]
    assert "{{" not in url, f"unexpected template in runbook_url: {url}"
    return [url]


def test_runbook_links_resolve() -> None:
    anchors = _anchors(RUNBOOK.read_text(encoding="utf-8"))
    for alert in _alerts():
        for url in _expand_runbook_urls(alert["annotations"]["runbook_url"]):
            anchor = url.split("#", 1)[1]
            assert anchor in anchors, f"{alert['alert']}: {url} has no anchor in RUNBOOK.md"


def test_runbook_has_actions_for_every_category() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for category in GRAPH_FAILURE_CATEGORIES:
        marker = f'<a id="spike-{category}"></a>'
        assert marker in text, category
        section = text.split(marker, 1)[1].split('<a id="', 1)[0]
        actions = re.findall(r"^- ", section, flags=re.M)
        assert 2 <= len(actions) <= 4, f"spike-{category}: expected 2-4 actions, got {len(actions)}"
    for alert in _alerts():
        assert f"## {alert['alert']}" in text, f"RUNBOOK.md has no section for {alert['alert']}"


def _load_sync_module() -> Any:
    spec = importlib.util.spec_from_file_location("sync_prometheusrule", SYNC_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheusrule_is_generated_from_rule_file() -> None:
    sync = _load_sync_module()
    current = sync.PROMETHEUS_RULE_FILE.read_text(encoding="utf-8")
    assert current == sync.render(sync.load_rules()), (
        "deploy/kubernetes/base/prometheusrule.yaml is out of date: "
        "run python deploy/prometheus/sync_prometheusrule.py"
    )
    generated = yaml.safe_load(current)
    assert generated["spec"]["groups"] == _rules()["groups"]


def test_rendered_prometheusrule_spec_passes_promtool(
    rendered: dict[str, list[dict[str, Any]]], promtool: str, tmp_path: Path
) -> None:
    """What kustomize actually ships is valid for Prometheus and equals the rule file."""
    for name, docs in rendered.items():
        rule = next(d for d in docs if d["kind"] == "PrometheusRule")
        assert rule["spec"]["groups"] == _rules()["groups"], name
        extracted = tmp_path / f"{name}.rules.yaml"
        extracted.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
        result = run([promtool, "check", "rules", str(extracted)])
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


# --- short-window renderer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert rules_render.parse_duration(text) == seconds


def test_shorten_expr() -> None:
    expr = "rate(x[1h] offset 5m) > 3 * avg_over_time(y[1h:5m]) and z offset 1h and w[10m:]"
    assert rules_render.shorten_expr(expr) == (
        "rate(x[1m] offset 5s) > 3 * avg_over_time(y[1m:5s]) and z offset 1m and w[10s:]"
    )
    # Label values and metric names that look like durations are left alone.
    assert rules_render.shorten_expr('up{job="5m"}') == 'up{job="5m"}'


def test_short_window_rules_are_valid_and_short(promtool: str, tmp_path: Path) -> None:
    short = rules_render.short_window_rules()
    source = _rules()
    assert [g["name"] for g in short["groups"]] == [g["name"] for g in source["groups"]]
    for group in short["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                assert rules_render.parse_duration(rule["for"]) <= 30
            for window in re.findall(r"\[([0-9a-z]+)", rule["expr"]):
                # the 7-day baselines become under 3 hours: still far shorter than production
                assert rules_render.parse_duration(window) <= 3 * 3600, rule.get("alert")
    assert source == yaml.safe_load(RULES_FILE.read_text(encoding="utf-8")), "source mutated"
    path = rules_render.write_short_window_rules(tmp_path / "short.rules.yaml")
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_e2e_prometheus_config_renders(promtool: str, tmp_path: Path) -> None:
    rules = rules_render.write_short_window_rules(tmp_path / "short.rules.yaml")
    config = tmp_path / "prometheus.yml"
    config.write_text(rules_render.render_prometheus_config("127.0.0.1:9108", rules))
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = yaml.safe_load(config.read_text())
    assert parsed["scrape_configs"][0]["job_name"] == "enrollment-classifier"
    argv = rules_render.prometheus_command(config, tmp_path / "tsdb")
    assert "--query.lookback-delta=5s" in argv
    assert any(a.startswith("--web.listen-address=127.0.0.1:") for a in argv)
    with pytest.raises(ValueError):
        rules_render.render_prometheus_config("10.0.0.5:9108", rules)
    with pytest.raises(ValueError):
        rules_render.prometheus_command(config, tmp_path, listen="0.0.0.0:9090")


def test_compose_prometheus_config(promtool: str) -> None:
    result = run([promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_file_is_the_only_hand_written_copy() -> None:
    """No other YAML under deploy/ defines these alerts except the generated PrometheusRule and
    the generated Grafana-managed twins (compared in test_grafana.py)."""
    names = {a["alert"] for a in _alerts()}
    allowed = {
        RULES_FILE,
        DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml",
        spike_rules.PARAMS_FILE,  # names the alerts it generates
    }
    for path in DEPLOY.rglob("*.y*ml"):
        if path in allowed or "tests" in path.relative_to(DEPLOY).parts:
            continue
        text = path.read_text(encoding="utf-8")
        for name in names:
            assert f"alert: {name}" not in text, f"{path.relative_to(REPO)} duplicates {name}"

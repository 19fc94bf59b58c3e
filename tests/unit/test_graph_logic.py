"""The Graph source's pure parts: error classification, back-off and budget, paging, events
and the checkpoint selection (time passed in; nothing sleeps)."""

from __future__ import annotations

import datetime as dt
import email.utils

import orjson
import pytest

from tests.graph_events import autopilot_event, troubleshooting_event
from worker.sources.graph import checkpoint as cp
from worker.sources.graph.backoff import BackoffPolicy, RequestBudget
from worker.sources.graph.endpoints import COLLECTIONS
from worker.sources.graph.errors import (
    RETRY_AFTER_MAX_S,
    classify_response,
    graph_error_text,
    parse_retry_after,
    token_refused,
)
from worker.sources.graph.events import Event, Unreadable, parse_time, read_event
from worker.sources.graph.paging import collection_url, read_page

GRAPH = "https://graph.example"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
NOW = T0.timestamp() + 7200.0  # two hours after the first test event


def _graph_error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


# --- errors: the one classification ---------------------------------------------------------

@pytest.mark.parametrize(("status", "headers", "body", "action", "retry_after"), [
    (200, {}, b"{}", "ok", None),
    (429, {"retry-after": "7"}, _graph_error("TooManyRequests", "slow down"), "throttled", 7.0),
    (429, {}, b"", "throttled", None),
    (500, {}, _graph_error("InternalServerError", "Rate limit reached because of too many "
                           "requests to query broker"), "throttled", None),
    (500, {}, b"Rate limit reached because of too many requests to query broker",
     "throttled", None),
    (503, {"retry-after": "3"}, b"", "throttled", 3.0),
    (500, {}, _graph_error("InternalServerError", "boom"), "retry", None),
    (502, {}, b"<html>bad gateway</html>", "retry", None),
    (503, {}, b"", "retry", None),
    (504, {}, b"", "retry", None),
    (408, {}, b"", "retry", None),
    (401, {}, _graph_error("InvalidAuthenticationToken", "Access token validation failure."),
     "fatal", None),
    (403, {}, _graph_error("Forbidden", "not authorized"), "fatal", None),
    (400, {}, _graph_error("BadRequest", "nope"), "fatal", None),
    (404, {}, b"", "fatal", None),
])
def test_classify_response(status: int, headers: dict[str, str], body: bytes, action: str,
                           retry_after: float | None) -> None:
    verdict = classify_response(status, headers, body, permission="Perm.Read.All", now=NOW)
    assert verdict.action == action
    assert verdict.retry_after_s == retry_after


@pytest.mark.parametrize("collection", list(COLLECTIONS.values()))
def test_403_names_the_missing_permission(collection: object) -> None:
    permission = COLLECTIONS[collection.name].permission  # type: ignore[attr-defined]
    verdict = classify_response(403, {}, _graph_error("Forbidden", "x"), permission=permission,
                                now=NOW)
    assert permission in verdict.reason and "admin consent" in verdict.reason


def test_permissions_are_the_documented_ones() -> None:
    assert COLLECTIONS["troubleshootingEvents"].permission == (
        "DeviceManagementManagedDevices.Read.All")
    assert "DeviceManagementServiceConfig.Read.All" in COLLECTIONS["autopilotEvents"].permission


def test_401_says_what_to_check() -> None:
    verdict = classify_response(401, {}, b"", permission="P", now=NOW)
    assert "tenant id" in verdict.reason and "secret or certificate" in verdict.reason


@pytest.mark.parametrize(("value", "expected"), [
    ("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0), ("999999", RETRY_AFTER_MAX_S),
    (None, None), ("", None), ("soon", None), ("nan", None),
    (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
    (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
])
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_error_text_of_each_shape() -> None:
    assert graph_error_text(_graph_error("Forbidden", "no")) == "Forbidden: no"
    assert graph_error_text(orjson.dumps({"error": "invalid_client",
                                          "error_description": "AADSTS7000215: bad"})
                            ) == "invalid_client: AADSTS7000215: bad"
    assert graph_error_text(b"plain text" * 100).startswith("plain text")
    assert len(graph_error_text(b"x" * 5000)) == 300


def test_token_errors() -> None:
    assert token_refused("invalid_client", "AADSTS7000215").action == "fatal"
    assert token_refused("temporarily_unavailable", "").action == "retry"


# --- backoff and budget ---------------------------------------------------------------------

def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = BackoffPolicy(base_s=1.0, cap_s=60.0, max_attempts=8)
    low = [policy.delay(a, None, lambda: 0.0) for a in range(10)]
    high = [policy.delay(a, None, lambda: 0.999999) for a in range(10)]
    assert low[:4] == [0.5, 1.0, 2.0, 4.0]
    assert all(lo < hi <= 60.0 for lo, hi in zip(low, high, strict=True))
    assert high[-1] == pytest.approx(60.0) and low[-1] == 30.0  # capped, never zero
    assert policy.delay(3, 42.0, lambda: 0.5) == 42.0  # the server's word wins
    assert not policy.exhausted(7) and policy.exhausted(8)
    assert policy.delay(10_000, None, lambda: 1.0) <= 60.0


def test_budget_is_a_sliding_minute() -> None:
    budget = RequestBudget(per_minute=3)
    for t in (0.0, 1.0, 2.0):
        assert budget.wait_s(t) == 0.0
        budget.spend(t)
    assert budget.wait_s(2.5) == pytest.approx(57.5)
    assert budget.wait_s(60.0) == 0.0  # the request at 0.0 has left the window
    budget.spend(60.0)
    assert budget.wait_s(60.5) == pytest.approx(0.5)


# --- paging ---------------------------------------------------------------------------------

def test_page_with_next_link() -> None:
    body = orjson.dumps({"value": [{"id": "a"}], "@odata.nextLink": f"{GRAPH}/beta/x?$skiptoken=2"})
    page = read_page(body, GRAPH)
    assert not isinstance(page, str)
    assert page.items == [{"id": "a"}] and page.next_link == f"{GRAPH}/beta/x?$skiptoken=2"
    last = read_page(b'{"value": []}', GRAPH)
    assert not isinstance(last, str) and last.next_link is None


@pytest.mark.parametrize(("body", "problem"), [
    (b"<html>", "not JSON"), (b"[]", "not a JSON object"), (b'{"values": []}', "no 'value'"),
    (b'{"value": [], "@odata.nextLink": 3}', "not a URL"),
    (b'{"value": [], "@odata.nextLink": "https://evil.example/beta/x"}', "leaves the Graph host"),
    (b'{"value": [], "@odata.nextLink": "http://graph.example/beta/x"}', "leaves the Graph host"),
])
def test_malformed_pages_are_named(body: bytes, problem: str) -> None:
    page = read_page(body, GRAPH)
    assert isinstance(page, str) and problem in page


def test_collection_url() -> None:
    assert collection_url(GRAPH + "/", "deviceManagement/autopilotEvents", None) == (
        f"{GRAPH}/beta/deviceManagement/autopilotEvents")
    assert collection_url(GRAPH, "p", 50).endswith("/beta/p?$top=50")


# --- events ---------------------------------------------------------------------------------

def test_event_keeps_the_object_and_keys_like_the_worker() -> None:
    item = troubleshooting_event(1, T0)
    event = read_event(item)
    assert isinstance(event, Event)
    assert orjson.loads(event.value) == item and event.id == item["id"]
    assert event.key == item["managedDeviceIdentifier"].encode()
    assert event.time == T0.timestamp()
    del item["managedDeviceIdentifier"]
    assert read_event(item).key == item["deviceId"].encode()  # type: ignore[union-attr]
    autopilot = autopilot_event(2, T0)
    assert read_event(autopilot).key == autopilot["deviceId"].encode()  # type: ignore[union-attr]


def test_event_without_id_gets_a_content_hash() -> None:
    item = troubleshooting_event(1, T0)
    del item["id"], item["managedDeviceIdentifier"], item["deviceId"]
    first, second = read_event(item), read_event(dict(item))
    assert isinstance(first, Event) and isinstance(second, Event)
    assert first.id == second.id and first.id.startswith("sha256:")
    assert first.key == first.id.encode()


@pytest.mark.parametrize(("item", "reason"), [
    ([1, 2], "not_object"), ("text", "not_object"), ({"id": "x"}, "no_event_time"),
    ({"id": "x", "eventDateTime": "yesterday"}, "no_event_time"),
    ({"id": "x", "eventDateTime": 17}, "no_event_time"),
])
def test_unreadable_items(item: object, reason: str) -> None:
    read = read_event(item)
    assert isinstance(read, Unreadable) and read.reason == reason


@pytest.mark.parametrize(("text", "expected"), [
    ("2016-12-31T23:59:23.3984029-08:00", dt.datetime(2017, 1, 1, 7, 59, 23, 398402, dt.UTC)),
    ("2026-11-02T09:00:00Z", T0), ("2026-11-02T09:00:00", T0),
])
def test_graph_times(text: str, expected: dt.datetime) -> None:
    assert parse_time(text) == expected.timestamp()


# --- checkpoint: what is new ----------------------------------------------------------------

def _ev(n: int, minutes: float) -> Event:
    return Event(f"e{n}", T0.timestamp() + minutes * 60, b"k", b"{}")


HOUR = 3600.0


def test_first_poll_publishes_everything_once() -> None:
    events = [_ev(1, 0), _ev(2, 10), _ev(2, 10), _ev(3, -600)]
    sel = cp.select_new(cp.Checkpoint(), events, overlap_s=HOUR, now=NOW)
    assert [e.id for e in sel.new] == ["e1", "e2", "e3"]
    assert sel.skipped == {"repeated_in_read": 1}
    assert sel.checkpoint.watermark == _ev(2, 10).time
    # Only ids inside the window below the watermark are remembered.
    assert set(sel.checkpoint.published) == {"e1", "e2"}
    assert sel.checkpoint.updated_at == NOW


def test_second_poll_publishes_only_late_and_newer_events() -> None:
    first = cp.select_new(cp.Checkpoint(), [_ev(1, 0), _ev(2, 30)], overlap_s=HOUR, now=NOW)
    # e3 landed late but inside the window; e4 is newer; e0 is older than the window.
    again = [_ev(1, 0), _ev(2, 30), _ev(3, 5), _ev(4, 40), _ev(0, -120)]
    second = cp.select_new(first.checkpoint, again, overlap_s=HOUR, now=NOW + 300)
    assert [e.id for e in second.new] == ["e3", "e4"]
    assert second.skipped == {"already_published": 2, "before_window": 1}
    third = cp.select_new(second.checkpoint, again, overlap_s=HOUR, now=NOW + 600)
    assert third.new == [] and third.skipped["already_published"] == 4


def test_a_bogus_future_time_does_not_move_the_window() -> None:
    future = Event("f", NOW + 10 * 365 * 86400, b"k", b"{}")
    sel = cp.select_new(cp.Checkpoint(), [future, _ev(1, 0)], overlap_s=HOUR, now=NOW)
    assert {e.id for e in sel.new} == {"f", "e1"}
    assert sel.checkpoint.watermark == _ev(1, 0).time
    later = cp.select_new(sel.checkpoint, [future, _ev(2, 1)], overlap_s=HOUR, now=NOW)
    assert [e.id for e in later.new] == ["e2"]  # f is remembered, e2 still inside the window


def test_replaying_a_committed_checkpoint_publishes_nothing_new() -> None:
    events = [_ev(n, n) for n in range(20)]
    sel = cp.select_new(cp.Checkpoint(), events, overlap_s=HOUR, now=NOW)
    stored = cp.decode(cp.encode(sel.checkpoint, tenant="t", collection="c"))
    assert stored.watermark == pytest.approx(sel.checkpoint.watermark)
    assert stored.published.keys() == sel.checkpoint.published.keys()
    assert cp.select_new(stored, events, overlap_s=HOUR, now=NOW).new == []


@pytest.mark.parametrize("value", [
    b"nope", b"[]", b'{"version": 2, "published": {}}', b'{"version": 1, "published": []}',
    b'{"version": 1, "published": {"a": "when"}}',
    b'{"version": 1, "published": {}, "watermark": "later"}',
])
def test_unreadable_checkpoint_stops_the_source(value: bytes) -> None:
    with pytest.raises(cp.CheckpointError):
        cp.decode(value)


def test_checkpoint_record_is_readable() -> None:
    sel = cp.select_new(cp.Checkpoint(), [_ev(1, 0)], overlap_s=HOUR, now=NOW)
    doc = orjson.loads(cp.encode(sel.checkpoint, tenant="t", collection="autopilotEvents"))
    assert doc["watermark"] == "2026-11-02T09:00:00.000000Z"
    assert doc["published"] == {"e1": "2026-11-02T09:00:00.000000Z"}
    assert doc["tenantId"] == "t" and doc["collection"] == "autopilotEvents"
    assert cp.checkpoint_key("t", "autopilotEvents") == b"t/autopilotEvents"


# --- metrics and health ---------------------------------------------------------------------

def test_metrics_precreated_and_checkpoint_age_at_scrape_time() -> None:
    from prometheus_client import CollectorRegistry

    from worker.sources.graph.metrics import GraphMetrics

    now = [100.0]
    registry = CollectorRegistry()
    metrics = GraphMetrics(registry, ["autopilotEvents"], lambda: now[0])

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"collection": "autopilotEvents", **labels})

    assert value("enrollment_graph_requests_total", outcome="throttled") == 0.0
    assert value("enrollment_graph_events_skipped_total", reason="unreadable") == 0.0
    assert value("enrollment_graph_checkpoint_age_seconds") is None  # nothing committed yet
    metrics.wait("autopilotEvents", "throttled", 7.5)
    metrics.committed("autopilotEvents", 3, {"already_published": 2}, checkpoint_time=90.0)
    now[0] = 130.0
    assert value("enrollment_graph_waits_total", reason="throttled") == 1.0
    assert value("enrollment_graph_wait_seconds_total", reason="throttled") == 7.5
    assert value("enrollment_graph_events_published_total") == 3.0
    assert value("enrollment_graph_polls_total", result="committed") == 1.0
    assert value("enrollment_graph_checkpoint_age_seconds") == 40.0


def test_source_health() -> None:
    from worker.sources.graph.health import SourceHealth

    now = [0.0]
    health = SourceHealth(lambda: now[0], liveness_timeout_s=600.0)
    assert health.live() and not health.ready()
    health.started = health.checkpoints_loaded = True
    health.beat()
    assert health.ready() and health.status()["checkpointsLoaded"]
    now[0] = 601.0
    assert not health.live() and not health.ready()
    health.beat()
    health.stopping = True
    assert health.live() and not health.ready()


# --- export job: pure parts -----------------------------------------------------------------

def test_export_job_states() -> None:
    from worker.sources.graph.exportjob import Job, read_job

    assert read_job(b'{"id": "j", "status": "completed", "url": null}') == Job("j", "completed",
                                                                              None)
    assert not Job("j", "completed", None).ready() and Job("j", "completed", "https://x").ready()
    assert "no id" in str(read_job(b'{"status": "completed"}'))
    assert "not JSON" in str(read_job(b"<html>"))


def test_export_rows_from_zip() -> None:
    import io
    import zipfile

    from tests.graph_events import enrollment_activity_row
    from tests.graph_fake import report_zip
    from worker.sources.graph.exportjob import create_body, read_rows

    rows = [enrollment_activity_row(n, T0) for n in range(3)]
    assert read_rows(report_zip("job", rows)) == rows
    # A bare quote inside an unquoted field, as the service writes it, is kept.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("r.csv", '\ufeffEnrollmentActivityId,Failure\r\na1,Device "cap" reached\r\n')
    assert read_rows(buffer.getvalue()) == [
        {"EnrollmentActivityId": "a1", "Failure": 'Device "cap" reached'}]
    assert "not a readable zip" in str(read_rows(b"PK\x03\x04 broken"))
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "x")
    assert "exactly one .csv" in str(read_rows(empty.getvalue()))
    ragged = io.BytesIO()
    with zipfile.ZipFile(ragged, "w") as z:
        z.writestr("r.csv", "EnrollmentActivityId,Failure\r\na1,x,extra\r\n")
    assert "1 unreadable rows (first: line 2" in str(read_rows(ragged.getvalue()))
    body = orjson.loads(create_body("EnrollmentActivity", ("A", "B")))
    assert body == {"reportName": "EnrollmentActivity", "format": "csv", "select": ["A", "B"],
                    "localizationType": "ReplaceLocalizableValues"}

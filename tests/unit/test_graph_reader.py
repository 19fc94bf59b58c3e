"""The Graph reader (httpx + MSAL) against the local fake of Graph's contract over HTTPS on
127.0.0.1, with the clock, the sleeps and the jitter passed in: no test waits for real."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.graph_events import autopilot_event, troubleshooting_event
from tests.graph_fake import (
    FakeGraph,
    FakeState,
    Fault,
    TlsFiles,
    self_signed,
)
from worker.sources.graph.auth import MsalTokens, certificate_credential
from worker.sources.graph.backoff import BackoffPolicy, RequestBudget
from worker.sources.graph.client import GraphReader, Pacing, PollAbandoned, Stopped
from worker.sources.graph.endpoints import COLLECTIONS
from worker.sources.graph.errors import GraphFatalError
from worker.sources.graph.metrics import GraphMetrics
from worker.sources.graph.paging import collection_url

TENANT, CLIENT, SECRET = "contoso-tenant", "app-123", "s3cret-value"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
TS, AP = COLLECTIONS["troubleshootingEvents"], COLLECTIONS["autopilotEvents"]


@dataclass
class FakeTime:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)
    stop_after: int | None = None  # report "stop" on this many-th sleep

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return self.stop_after is not None and len(self.slept) >= self.stop_after


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def state() -> FakeState:
    s = FakeState(TENANT, CLIENT, client_secret=SECRET, page_size=3)
    s.collections["troubleshootingEvents"] = [
        troubleshooting_event(n, T0 + dt.timedelta(minutes=n)) for n in range(7)]
    s.collections["autopilotEvents"] = [
        autopilot_event(n, T0 + dt.timedelta(minutes=n), state="success" if n % 2 else "failure")
        for n in range(4)]
    return s


@pytest.fixture
def fake(state: FakeState, tls: TlsFiles) -> Iterator[FakeGraph]:
    with FakeGraph(state, tls) as server:
        yield server


@pytest.fixture
def http(tls: TlsFiles) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tls.cert)), timeout=10) as c:
        yield c


@dataclass
class Rig:
    reader: GraphReader
    time: FakeTime
    registry: CollectorRegistry
    fake: FakeGraph

    def read(self, collection: Any = TS) -> list[Any]:
        return list(self.reader.items(collection, collection_url(self.fake.url, collection.path,
                                                                 None)))

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def make_rig(fake: FakeGraph, http: httpx.Client, *, credential: Any = SECRET,
             per_minute: int = 600, max_attempts: int = 5) -> Rig:
    time = FakeTime()
    registry = CollectorRegistry()
    tokens = MsalTokens(authority_url=fake.url, tenant_id=TENANT, client_id=CLIENT,
                        credential=credential, graph_url=fake.url, http=http)
    reader = GraphReader(http, tokens, graph_url=fake.url,
                         policy=BackoffPolicy(base_s=2.0, cap_s=20.0, max_attempts=max_attempts),
                         budget=RequestBudget(per_minute),
                         pacing=Pacing(lambda: time.now, lambda: time.now, time.sleep,
                                       lambda: 0.5),
                         observer=GraphMetrics(registry, COLLECTIONS, lambda: time.now))
    return Rig(reader, time, registry, fake)


def test_pages_follow_next_link_and_a_repeated_event_comes_twice(
        fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    state.repeat_across_pages.add("troubleshootingEvents")
    rig = make_rig(fake, http)
    items = rig.read()
    ids = [i["id"] for i in items]
    expected = [e["id"] for e in state.collections["troubleshootingEvents"]]
    assert set(ids) == set(expected) and len(ids) == len(expected) + 1
    assert ids[2] == ids[3]  # the last of page one is the first of page two
    assert state.statuses() == [200, 200, 200]
    assert rig.time.slept == []
    assert rig.metric("enrollment_graph_requests_total", collection=TS.name, outcome="ok") == 3


def test_intune_throttling_as_500_backs_off(fake: FakeGraph, http: httpx.Client,
                                            state: FakeState) -> None:
    state.faults.extend([Fault(500), Fault(500)])
    rig = make_rig(fake, http)
    assert len(rig.read(AP)) == 4
    # No Retry-After: equal jitter around 2 s, then 4 s (random() is 0.5 here).
    assert rig.time.slept == [1.5, 3.0]
    assert state.statuses() == [500, 500, 200, 200]
    assert rig.metric("enrollment_graph_waits_total", collection=AP.name, reason="throttled") == 2
    assert rig.metric("enrollment_graph_requests_total", collection=AP.name,
                      outcome="throttled") == 2


def test_429_retry_after_is_honoured(fake: FakeGraph, http: httpx.Client,
                                     state: FakeState) -> None:
    state.faults.append(Fault(429, retry_after="7"))
    rig = make_rig(fake, http)
    rig.read()
    assert rig.time.slept == [7.0]
    assert rig.metric("enrollment_graph_wait_seconds_total", collection=TS.name,
                      reason="throttled") == 7.0


def test_a_503_burst_is_retried_with_growing_waits(fake: FakeGraph, http: httpx.Client,
                                                   state: FakeState) -> None:
    state.faults.extend(Fault(503, body=b"") for _ in range(4))
    rig = make_rig(fake, http)
    assert len(rig.read()) == 7
    assert rig.time.slept == [1.5, 3.0, 6.0, 12.0]
    assert rig.metric("enrollment_graph_requests_total", collection=TS.name, outcome="retry") == 4


def test_retries_run_out_and_the_poll_is_abandoned(fake: FakeGraph, http: httpx.Client,
                                                   state: FakeState) -> None:
    state.faults.extend(Fault(502, body=b"bad gateway") for _ in range(10))
    rig = make_rig(fake, http, max_attempts=3)
    with pytest.raises(PollAbandoned, match="gave up after 4 attempts: HTTP 502"):
        rig.read()
    assert rig.time.slept == [1.5, 3.0, 6.0]  # capped waits, never a tight loop


def test_401_stops_with_a_clear_error(fake: FakeGraph, http: httpx.Client,
                                      state: FakeState) -> None:
    state.faults.append(Fault(401))
    rig = make_rig(fake, http)
    with pytest.raises(GraphFatalError, match="did not accept the token"):
        rig.read()
    assert rig.time.slept == []
    assert rig.metric("enrollment_graph_requests_total", collection=TS.name, outcome="fatal") == 1


def test_403_names_the_permission(fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    state.forbidden.add("autopilotEvents")
    rig = make_rig(fake, http)
    with pytest.raises(GraphFatalError, match=r"DeviceManagementServiceConfig\.Read\.All"):
        rig.read(AP)


def test_a_wrong_secret_stops_at_the_token_endpoint(fake: FakeGraph, http: httpx.Client,
                                                    state: FakeState) -> None:
    rig = make_rig(fake, http, credential="not-the-secret")
    with pytest.raises(GraphFatalError, match="AADSTS7000215") as raised:
        rig.read()
    assert "not-the-secret" not in str(raised.value)
    assert state.statuses() == []  # no Graph request without a token


def test_token_endpoint_outage_is_retried(fake: FakeGraph, http: httpx.Client,
                                          state: FakeState) -> None:
    # MSAL itself holds a 5xx answer for its Retry-After (5 s without one) and returns it
    # again meanwhile; that is real time, which this test does not spend, so it says 0.
    state.faults.append(Fault(503, path="/token", body=b"{}", retry_after="0"))
    rig = make_rig(fake, http)
    assert len(rig.read()) == 7
    assert len(rig.time.slept) == 1


def test_the_token_is_cached(fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    rig = make_rig(fake, http)
    rig.read()
    rig.read(AP)
    assert state.statuses("/" + TENANT + "/oauth2") == [200]


def test_certificate_credential(fake: FakeGraph, http: httpx.Client, state: FakeState,
                                tmp_path: Path) -> None:
    pem = self_signed(tmp_path, "app-credential")
    combined = tmp_path / "app.pem"
    combined.write_text(pem.key.read_text() + pem.cert.read_text())
    credential = certificate_credential(combined)
    state.client_secret = None
    state.certificate_thumbprint = credential["thumbprint"]
    from cryptography import x509
    state.certificate_public_key = x509.load_pem_x509_certificate(
        pem.cert.read_bytes()).public_key()
    rig = make_rig(fake, http, credential=credential)
    assert len(rig.read()) == 7


def test_certificate_file_problems_are_named(tmp_path: Path) -> None:
    only_cert = self_signed(tmp_path)
    with pytest.raises(ValueError, match="no PEM private key"):
        certificate_credential(only_cert.cert)
    with pytest.raises(ValueError, match="no PEM certificate"):
        certificate_credential(only_cert.key)
    with pytest.raises(ValueError, match="cannot read"):
        certificate_credential(tmp_path / "missing.pem")


def test_budget_makes_the_reader_wait(fake: FakeGraph, http: httpx.Client) -> None:
    rig = make_rig(fake, http, per_minute=2)
    rig.read()  # three pages, two per minute
    assert len(rig.time.slept) == 1 and rig.time.slept[0] == pytest.approx(60.0)
    assert rig.metric("enrollment_graph_waits_total", collection=TS.name, reason="budget") == 1


def test_stop_during_a_wait(fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    state.faults.extend([Fault(500), Fault(500)])
    rig = make_rig(fake, http)
    rig.time.stop_after = 1
    with pytest.raises(Stopped):
        rig.read()
    assert len(state.statuses()) == 1


# --- the EnrollmentActivity report through an export job ---------------------------------

def test_export_job_rows(fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    from tests.graph_events import enrollment_activity_row
    from worker.sources.graph.events import Event, read_event
    from worker.sources.graph.export import export_rows

    state.report_rows = [enrollment_activity_row(n, T0 + dt.timedelta(minutes=n))
                         for n in range(5)]
    state.faults.append(Fault(500, path="/beta/deviceManagement/reports"))  # throttled once
    rig = make_rig(fake, http)
    report = COLLECTIONS["enrollmentActivity"]
    rows = export_rows(rig.reader, report, poll_s=5.0, timeout_s=60.0)
    assert rows == state.report_rows  # every column, the BOM gone, quotes kept
    assert rows[0]["Failure"] == 'User not licensed, "Intune"'
    # POST (throttled, then accepted), GET inProgress, GET completed without url, GET with url.
    assert state.statuses("/beta/deviceManagement/reports") == [500, 201, 200, 200, 200]
    assert state.statuses("/downloads/") == [200]  # and without the bearer token (else 400)
    # One wait after each answer that was not ready: notStarted, inProgress, completed w/o url.
    assert rig.metric("enrollment_graph_waits_total", collection=report.name,
                      reason="export") == 3
    event = read_event(rows[0], id_field=report.id_field, time_field=report.time_field,
                       shape=report.shape)
    assert isinstance(event, Event) and event.id == rows[0]["EnrollmentActivityId"]
    assert event.time == T0.timestamp()


def test_export_job_that_never_gets_ready_abandons_the_poll(
        fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    from worker.sources.graph.export import export_rows

    state.job_progress = ("inProgress",) * 50
    rig = make_rig(fake, http)
    with pytest.raises(PollAbandoned, match="still inProgress"):
        export_rows(rig.reader, COLLECTIONS["enrollmentActivity"], poll_s=10.0, timeout_s=30.0)
    assert rig.time.slept == [10.0, 10.0, 10.0]


def test_export_without_readwrite_names_the_permission(
        fake: FakeGraph, http: httpx.Client, state: FakeState) -> None:
    from worker.sources.graph.export import export_rows

    state.faults.append(Fault(403, path="/beta/deviceManagement/reports"))
    rig = make_rig(fake, http)
    with pytest.raises(GraphFatalError, match=r"DeviceManagementManagedDevices\.ReadWrite\.All"):
        export_rows(rig.reader, COLLECTIONS["enrollmentActivity"], poll_s=1.0, timeout_s=5.0)

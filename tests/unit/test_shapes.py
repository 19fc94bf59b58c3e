"""Every category member through every input shape, and the normalized output fields."""

from __future__ import annotations

import orjson
import pytest

from tests.helpers import check_outcome, classify, one_event
from worker.classify.core import Classified, DeadLetter, Skipped
from worker.classify.taxonomy import FailureCategory
from worker.contracts.examples import GRAPH_EVENT, LOG_ROW

MEMBERS = list(FailureCategory)


def graph_event(member: FailureCategory, odata: bool = True) -> dict[str, object]:
    event = {**GRAPH_EVENT, "failureCategory": member.name, "failureReason": "see portal"}
    if not odata:
        event.pop("@odata.type")
    return event


def log_row(member: FailureCategory, as_string: bool = False, **extra: str) -> dict[str, object]:
    pascal = member.name[0].upper() + member.name[1:]
    props = {**LOG_ROW["properties"], "FailureCategory": pascal, "FailureReason": "Unknown",
             **extra}
    return {**LOG_ROW, "properties": orjson.dumps(props).decode() if as_string else props}


SHAPES = {
    "graph": lambda m: graph_event(m),
    "graph_without_odata_type": lambda m: graph_event(m, odata=False),
    "log_row_object": lambda m: log_row(m),
    "log_row_json_string": lambda m: log_row(m, as_string=True),
    "flat": lambda m: {"failureCategory": m.name},
    "flat_code": lambda m: {"failureCategory": int(m)},
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
def test_member_through_shape(shape: str, member: FailureCategory) -> None:
    event = one_event(SHAPES[shape](member))
    assert event["failureCategory"] == member.name
    assert event["failureCategoryCode"] == int(member)


def test_graph_fields_are_normalized() -> None:
    event = one_event(GRAPH_EVENT)
    assert event["id"] == GRAPH_EVENT["id"] and event["idSource"] == "event"
    assert event["eventTime"] == GRAPH_EVENT["eventDateTime"]
    assert event["device"] == {"intuneDeviceId": GRAPH_EVENT["managedDeviceIdentifier"],
                               "entraDeviceId": GRAPH_EVENT["deviceId"],
                               "operatingSystem": "Windows", "osVersion": "10.0.26100.1742"}
    assert event["user"]["userId"] == GRAPH_EVENT["userId"]
    assert event["enrollment"]["enrollmentType"] == "windowsAutoEnrollment"
    assert event["enrollment"]["correlationId"] == GRAPH_EVENT["correlationId"]
    assert event["source"]["shape"] == "graphEvent"


def test_log_row_fields_are_normalized_to_the_same_shape() -> None:
    event = one_event(LOG_ROW)
    props = LOG_ROW["properties"]
    assert event["id"] == props["MessageId"]
    assert event["device"]["intuneDeviceId"] == props["IntuneDeviceId"]
    assert event["device"]["entraDeviceId"] == props["AADDeviceId"]
    assert event["device"]["operatingSystem"] == "iOS"
    assert event["enrollment"]["enrollmentType"] == "appleBulkWithUser"  # PascalCase -> Graph
    assert event["enrollment"]["tenantId"] == props["AADTenantId"]
    assert event["eventTime"] == props["EnrollmentTimeUTC"]
    assert (event["failureCategory"], event["detailReason"]) == (
        "enrollmentRestrictionsEnforced", "deviceCap")


def test_key_is_the_device_id_else_the_event_id() -> None:
    (with_device,) = classify(GRAPH_EVENT)
    assert isinstance(with_device, Classified)
    assert with_device.key == GRAPH_EVENT["managedDeviceIdentifier"].encode()
    (bare,) = classify({"id": "evt-1", "failureCategory": 1})
    assert isinstance(bare, Classified) and bare.key == b"evt-1"


def test_unknown_os_and_enrollment_type_are_kept_but_labelled_other() -> None:
    (o,) = classify({"failureCategory": 1, "operatingSystem": "HoloOS",
                     "enrollmentType": "quantumEnrollment"})
    assert isinstance(o, Classified)
    assert (o.os_label, o.enrollment_type_label) == ("other", "other")
    doc = check_outcome(o)
    assert doc is not None and doc["device"]["operatingSystem"] == "HoloOS"
    (p,) = classify({"failureCategory": 1})
    assert isinstance(p, Classified) and (p.os_label, p.enrollment_type_label) == (
        "unknown", "unknown")


def test_graph_page_gives_one_output_per_event() -> None:
    events = [graph_event(m) | {"id": f"e{int(m)}"} for m in MEMBERS]
    outcomes = classify({"@odata.context": "https://graph.microsoft.com/beta/$metadata#x",
                         "value": events})
    assert [o.category for o in outcomes if isinstance(o, Classified)] == MEMBERS
    docs = [check_outcome(o) for o in outcomes]
    assert [d["source"]["recordIndex"] for d in docs if d] == list(range(12))


def test_envelope_bad_row_is_dead_lettered_alone_with_its_index() -> None:
    rows = [log_row(FailureCategory.authentication), "not a row",
            {**LOG_ROW, "properties": "{broken json"},
            {**LOG_ROW, "resultType": "Success",
             "properties": {"FailureCategory": "Not Applicable", "FailureReason": "None"}},
            log_row(FailureCategory.userAbandonment, as_string=True)]
    outcomes = classify({"records": rows})
    assert [type(o) for o in outcomes] == [Classified, DeadLetter, DeadLetter, Skipped, Classified]
    bad = [check_outcome(o) for o in outcomes if isinstance(o, DeadLetter)]
    assert [(b["errorClass"], b["source"]["recordIndex"], b["payloadScope"]) for b in bad if b] == [
        ("not_object", 1, "record"), ("bad_nested_json", 2, "record")]
    assert bad[0] is not None and orjson.loads(bad[0]["payload"]) == "not a row"


def test_empty_envelope_is_counted_as_skipped() -> None:
    assert classify({"records": []}) == [Skipped("empty_batch", None)]


def test_pseudonymization_hides_identities_but_keeps_them_joinable() -> None:
    from worker.classify.core import CoreOptions, Source, classify_message

    event = {**GRAPH_EVENT, "userPrincipalName": "ada@contoso.com",
             "failureReason": "user ada@contoso.com has no license"}
    options = CoreOptions(pseudonymize_key=b"k" * 32)
    docs = [orjson.loads(o.value) for o in classify_message(  # type: ignore[union-attr]
        orjson.dumps(event), Source("t"), options)]
    doc = docs[0]
    text = orjson.dumps(doc).decode()
    for secret in ("ada@contoso.com", GRAPH_EVENT["userId"], GRAPH_EVENT["deviceId"],
                   GRAPH_EVENT["managedDeviceIdentifier"]):
        assert secret not in text
    assert doc["user"]["userPrincipalName"].startswith("hmac:")
    again = orjson.loads(classify_message(orjson.dumps(event), Source("t"), options)[0].value)  # type: ignore[union-attr]
    assert again["user"] == doc["user"]
    assert doc["detailReason"] == "userNotLicensed"

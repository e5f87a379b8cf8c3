"""Outgoing webhooks end to end: a press on a node agent → the hub → a signed POST to a
local subscriber that fails at first and is retried, every attempt logged in the database;
a hanging subscriber never holds up the alarm itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hub.integrations.webhooks import sign, verify
from tests.e2e.harness import LedState, wait_for, wait_hub_ready, wait_led
from tests.integrations.recorder import Recorder, Request
from tests.integrations.support import Stack, bearer

SECRET = "relay-secret-0123456789"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def hooks(url: str, **extra: object) -> dict[str, object]:
    return {"webhooks": {"retry_min_s": 0.2, "retry_max_s": 1.0, "poll_s": 0.1,
                         "timeout_s": 2.0, **extra,
                         "subscribers": [{"name": "zalo-relay", "url": url, "secret": SECRET,
                                          "events": ["incident"]}]}}


def incident_posts(reqs: list[Request]) -> list[Request]:
    return [r for r in reqs if r.headers.get("x-tiengmo-event") == "incident"]


def test_a_press_reaches_the_subscriber_signed_after_retries_and_is_logged(
        stack: Stack, recorder: Recorder) -> None:
    recorder.fail_first = 2     # every delivery fails twice before it gets through
    stack.start(hooks(recorder.url + "/hook"))
    hub = stack.hub
    assert hub is not None and stack.client is not None
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    village["na-sang-01"].press("fire")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]

    def tries(rs: list[Request]) -> list[Request]:
        posts = incident_posts(rs)
        one = posts[0].headers["x-tiengmo-delivery"] if posts else ""
        return [r for r in posts if r.headers["x-tiengmo-delivery"] == one]

    reqs = recorder.wait(lambda rs: len(tries(rs)) >= 3, what="three attempts of one delivery")
    # A retry is the same delivery, re-signed with its own timestamp.
    first, _second, third = tries(reqs)[:3]
    assert third.at - first.at >= 0.2 + 0.4 - 0.05     # back-off: 0.2 s, then 0.4 s
    body = third.body
    ts, sig = third.headers["x-tiengmo-timestamp"], third.headers["x-tiengmo-signature"]
    assert sig == sign(SECRET, ts, body) and verify(SECRET, ts, body, sig)
    assert not verify("another-secret", ts, body, sig)
    assert not verify(SECRET, ts, body + b" ", sig)
    assert not verify(SECRET, str(int(ts) - 3600), body, sign(SECRET, str(int(ts) - 3600),
                                                              body))   # replayed
    msg = json.loads(body)
    assert msg["type"] == "incident" and msg["subject"] == inc.incident_id
    assert msg["data"]["kind"] == "fire" and msg["hub_id"] == "hub-test"
    assert msg["text_vi"].startswith("BÁO ĐỘNG CHÁY tại Thôn Nà Sang")
    # Only the incident type was subscribed: no node or alarm events went out.
    assert {r.headers["x-tiengmo-event"] for r in reqs} == {"incident"}

    admin = stack.token("admin")
    client = stack.client
    rows = wait_for(lambda: [d for d in client.get(
        "/api/v1/integrations/webhooks/deliveries", headers=bearer(admin)).json()
        if d["status"] == "delivered"], what="a delivered row")
    d = next(d for d in rows if d["attempts"] == 3)
    assert d["subscriber"] == "zalo-relay" and d["response_code"] == 200
    assert client.get("/api/v1/integrations/webhooks/deliveries",
                      headers=bearer(stack.token("operator"))).status_code == 403


def test_a_subscriber_that_never_answers_well_is_given_up_and_recorded(
        stack: Stack, recorder: Recorder) -> None:
    recorder.statuses = [500] * 50
    stack.start(hooks(recorder.url, max_attempts=3))
    hub = stack.hub
    assert hub is not None
    stack.e2e.services(hub).start_drill("bach-thong/vi-huong/na-sang", "officer")
    recorder.wait(lambda rs: len(rs) >= 3, what="three attempts")
    admin = stack.token("admin")
    assert stack.client is not None
    failed = wait_for(lambda: [d for d in stack.client.get(  # type: ignore[union-attr]
        "/api/v1/integrations/webhooks/deliveries", headers=bearer(admin)).json()
        if d["status"] == "failed"], what="the delivery given up")
    assert failed[0]["attempts"] == 3 and failed[0]["response_code"] == 500
    time.sleep(1.5)   # nothing is tried after giving up
    assert len(recorder.requests) == 3


def test_a_hanging_subscriber_never_holds_up_the_alarm(stack: Stack) -> None:
    slow = Recorder(delay_s=3.0)
    try:
        stack.start(hooks(slow.url, timeout_s=1.0))
        hub = stack.hub
        assert hub is not None
        village = stack.e2e.village()
        origin = village["na-sang-01"]
        wait_hub_ready(origin)
        origin.press("theft")
        wait_for(lambda: hub.store.incidents.active(), what="the incident")
        slow.wait(lambda rs: len(rs) >= 1, what="the first webhook")
        # While the subscriber hangs, another press is stored, sounded and acked at once.
        t0 = time.monotonic()
        village["na-cha-01"].press("fire")
        wait_led(village["na-cha-01"], LedState.RECEIVED, timeout=5)
        assert time.monotonic() - t0 < 3.0
    finally:
        slow.close()

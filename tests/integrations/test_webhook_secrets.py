"""A webhook's URL often carries its token (`?token=`, `user:pass@`): a failed delivery is
logged with the URL's host and path only, never the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pytest_mock import MockerFixture

from hub.integrations.config import WebhookSettings
from hub.integrations.store import Delivery
from hub.integrations.webhooks import Webhooks, loggable_url
from tests.integrations.recorder import Recorder

TOKEN = "tok-5e3cr3t-0123456789"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder(statuses=[500] * 10)
    yield r
    r.close()


def delivery(url: str) -> Delivery:
    return Delivery(id=7, subscriber_id=1, url=url, secret="s" * 20, event_id=3,
                    event_type="incident", payload='{"v":1}', attempts=0)


def sender(mocker: MockerFixture) -> tuple[Webhooks, object]:
    store = mocker.Mock()
    hooks = Webhooks("hub-1", WebhookSettings(timeout_s=2.0, max_attempts=5), lambda: store,
                     lambda: True)
    return hooks, store


def test_a_failed_delivery_is_logged_without_the_token(
        recorder: Recorder, mocker: MockerFixture, caplog: pytest.LogCaptureFixture) -> None:
    host_port = recorder.url.split("://", 1)[1].split("/", 1)[0]
    url = f"http://{host_port}/hook?token={TOKEN}&x=1#{TOKEN}"
    hooks, _store = sender(mocker)
    with caplog.at_level(logging.WARNING, logger="tiengmo.hub.integrations.webhooks"):
        assert hooks.attempt(delivery(url)) is False
    assert len(recorder.requests) == 1   # it was really sent, with the token, and failed
    [line] = [r.getMessage() for r in caplog.records]
    assert "HTTP 500" in line and f"http://{host_port}/hook?…" in line
    assert TOKEN not in line


def test_an_error_that_quotes_the_url_does_not_leak_the_token(
        mocker: MockerFixture, caplog: pytest.LogCaptureFixture) -> None:
    url = f"relay.example/hook?token={TOKEN}"   # ValueError: unknown url type: '<the url>'

    hooks, store = sender(mocker)
    with caplog.at_level(logging.WARNING, logger="tiengmo.hub.integrations.webhooks"):
        assert hooks.attempt(delivery(url)) is False
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed" in text and TOKEN not in text
    recorded = store.record_attempt.call_args.kwargs["error"]   # type: ignore[attr-defined]
    assert TOKEN not in recorded


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example.org/a/b", "https://hooks.example.org/a/b"),
    (f"https://relay:{TOKEN}@hooks.example.org:8443/a?k=v", "https://hooks.example.org:8443/a?…"),
    ("http://[::1]:9/x#frag", "http://[::1]:9/x?…"),
    ("http://host:notaport/x", "<unparsable URL>"),
])
def test_loggable_url(url: str, shown: str) -> None:
    assert loggable_url(url) == shown

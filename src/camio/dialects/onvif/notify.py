"""Notification messages as XML, and their push delivery (WS-BaseNotification ``Notify``).

A push subscription (``wsnt:Subscribe`` with a ConsumerReference) gets one task that waits for
its queue and POSTs one-way SOAP 1.2 ``wsnt:Notify`` messages to the consumer. Any 2xx answer is
a delivery. A failed POST is retried :data:`PUSH_ATTEMPTS` times in all with a growing pause
(on the device's clock); then the batch is dropped with a warning and the next one is tried, so
a dead consumer costs a bounded amount of work until its subscription expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from lxml import etree

from camio.core.clock import NS_PER_MS
from camio.core.media import redact_text, redact_url
from camio.dialects.onvif.soap import CONTENT_TYPE, el, envelope_bytes
from camio.dialects.onvif.subscriptions import Subscription, clock_sleep, format_time
from camio.dialects.onvif.topics import DIALECT_CONCRETE_SET, OnvifMessage

_LOGGER = logging.getLogger(__name__)

NOTIFY_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify"
#: Attempts per batch (the first and the retries), and the pause before each retry.
PUSH_ATTEMPTS: Final = 3
PUSH_BACKOFF_MS: Final = (500, 2_000)
#: Seconds a consumer has to answer one POST.
PUSH_TIMEOUT_S: Final = 10.0
#: Messages per Notify at most.
PUSH_BATCH: Final = 100


def message_element(msg: OnvifMessage) -> etree._Element:
    """The ``tt:Message`` of ``msg`` (exactly one Source and one Data item, as HA reads)."""
    src_name, src_value = msg.source
    data_name, data_value = msg.data
    return el(
        "tt:Message",
        el("tt:Source", el("tt:SimpleItem", Name=src_name, Value=src_value)),
        el("tt:Data", el("tt:SimpleItem", Name=data_name, Value=data_value)),
        UtcTime=format_time(msg.wall_ns),
        PropertyOperation=msg.operation,
    )


def notification_message(
    msg: OnvifMessage, *, subscription: str | None = None, producer: str | None = None
) -> etree._Element:
    """A ``wsnt:NotificationMessage`` (PullMessagesResponse, Notify)."""
    return el(
        "wsnt:NotificationMessage",
        el("wsnt:SubscriptionReference", el("wsa:Address", subscription)) if subscription else None,
        el("wsnt:Topic", msg.topic, Dialect=DIALECT_CONCRETE_SET),
        el("wsnt:ProducerReference", el("wsa:Address", producer)) if producer else None,
        el("wsnt:Message", message_element(msg)),
    )


def notify_body(
    messages: Iterable[OnvifMessage], *, subscription: str, producer: str | None = None
) -> etree._Element:
    return el(
        "wsnt:Notify",
        *(notification_message(m, subscription=subscription, producer=producer) for m in messages),
    )


def notify_envelope(
    messages: Iterable[OnvifMessage],
    *,
    consumer: str,
    subscription: str,
    producer: str | None = None,
) -> bytes:
    """The whole SOAP 1.2 envelope POSTed to a consumer."""
    headers = [el("wsa:Action", NOTIFY_ACTION), el("wsa:To", consumer)]
    return envelope_bytes(
        notify_body(messages, subscription=subscription, producer=producer), headers
    )


def valid_consumer(address: str) -> bool:
    """Only absolute http(s) URLs are pushed to."""
    try:
        parts = urlsplit(address)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def push_loop(sub: Subscription, *, producer: str | None = None) -> None:
    """Deliver ``sub``'s messages to its consumer until the subscription ends."""
    consumer = sub.consumer
    assert consumer is not None
    shown = redact_url(consumer)  # the address may carry a password: never logged
    clock = sub.registry.clock
    headers = {"Content-Type": f'{CONTENT_TYPE}; charset=utf-8; action="{NOTIFY_ACTION}"'}
    timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT_S)
    # TLS is not verified: consumers (Home Assistant, VMSs) commonly use self-signed
    # certificates, and the URL came from an authenticated client anyway.
    connector = aiohttp.TCPConnector(ssl=False, limit=1)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        while not sub.closed:
            if not sub.queue:
                await sub.wait()
                continue
            batch = sub.take(PUSH_BATCH)
            data = notify_envelope(
                batch, consumer=consumer, subscription=sub.address, producer=producer
            )
            for attempt in range(PUSH_ATTEMPTS):
                if attempt:
                    await clock_sleep(clock, PUSH_BACKOFF_MS[attempt - 1] * NS_PER_MS)
                    if sub.closed:
                        return
                error = await _post(session, consumer, data, headers)
                if error is None:
                    break
                _LOGGER.info(
                    "ONVIF Notify to %s failed (attempt %d of %d): %s",
                    shown,
                    attempt + 1,
                    PUSH_ATTEMPTS,
                    redact_text(error),
                )
            else:
                _LOGGER.warning(
                    "ONVIF Notify to %s failed %d times: dropped %d messages",
                    shown,
                    PUSH_ATTEMPTS,
                    len(batch),
                )


async def _post(
    session: aiohttp.ClientSession, url: str, data: bytes, headers: dict[str, str]
) -> str | None:
    """POST once; None on a 2xx answer, else what went wrong."""
    try:
        async with session.post(url, data=data, headers=headers, allow_redirects=False) as resp:
            # The answer's body is not read: one-way messages have none worth a byte.
            if 200 <= resp.status < 300:
                return None
            return f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"

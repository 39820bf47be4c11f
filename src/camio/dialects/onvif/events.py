"""The ONVIF Event service: topic set, pull points (long poll), base notification (push).

Endpoints (registered with the SOAP layer at import):

* ``/onvif/event_service`` (the event XAddr): GetServiceCapabilities, GetEventProperties,
  CreatePullPointSubscription, and the base-notification ``wsnt:Subscribe``;
* ``/onvif/subscription/<id>`` (the SubscriptionReference of each subscription):
  PullMessages and SetSynchronizationPoint (``tev:``), Renew and Unsubscribe (``wsnt:``).

Topics and their mapping are in :mod:`camio.dialects.onvif.topics`, subscription lifetime,
bounds and the long poll in :mod:`camio.dialects.onvif.subscriptions`, push delivery in
:mod:`camio.dialects.onvif.notify`. Every operation but GetServiceCapabilities (PRE_AUTH) needs
the ONVIF "User" level, the camio viewer role.

Faults: an unknown or expired subscription → ``env:Receiver`` /
``wsrf-r:ResourceUnknownFault`` (HTTP 500, with the WSRF fault element as detail); too many
subscriptions → ``env:Receiver`` / ``ter:Action`` / ``ter:MaxPullPoints`` (pull points) or
``wsnt:SubscribeCreationFailedFault`` (push); a bad termination time → ``env:Sender`` /
``ter:InvalidArgVal`` / ``wsnt:UnacceptableInitialTerminationTimeFault`` (Renew:
``…UnacceptableTerminationTimeFault``); a bad filter → ``env:Sender`` / ``ter:InvalidArgVal`` /
``wsnt:TopicExpressionDialectUnknownFault`` or ``wsnt:InvalidTopicExpressionFault``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from lxml import etree

from camio.core.clock import NS_PER_S
from camio.core.events import Event
from camio.core.media import redact_url
from camio.dialects.onvif.common import EVENTS_PATH, SUBSCRIPTION_PATH, base_url
from camio.dialects.onvif.notify import notification_message, push_loop, valid_consumer
from camio.dialects.onvif.soap import Operation, SoapFault, SoapRequest, el, q, register_service
from camio.dialects.onvif.subscriptions import (
    MAX_MESSAGE_LIMIT,
    PULL,
    PUSH,
    LimitReached,
    Subscription,
    SubscriptionRegistry,
    TerminationError,
    format_time,
    parse_duration_ns,
    registry_of,
    requested_lifetime_ns,
)
from camio.dialects.onvif.topics import (
    TOPIC_DIALECTS,
    TOPICS,
    TopicDialectError,
    TopicExpressionError,
    TopicFilter,
    accepts,
)
from camio.engine.device import Device
from camio.store.users import Role

_LOGGER = logging.getLogger(__name__)

TOPIC_NAMESPACE_LOCATION: Final = "http://www.onvif.org/onvif/ver10/topics/topicns.xml"
MESSAGE_CONTENT_FILTER_DIALECT: Final = (
    "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
)
MESSAGE_CONTENT_SCHEMA_LOCATION: Final = "http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
#: PullMessages' Timeout when the client sends none.
DEFAULT_PULL_TIMEOUT_NS: Final = 10 * NS_PER_S


# -- helpers ---------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return str(tag).rpartition("}")[2] if isinstance(tag, str) else ""


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent if _local(c.tag) == name), None)


def _text(parent: etree._Element, name: str) -> str | None:
    child = _child(parent, name)
    if child is None:
        return None
    return (child.text or "").strip()


def _now(device: Device) -> str:
    return format_time(device.clock.wall_ns())


def _unknown(what: str, device: Device) -> SoapFault:
    detail = el("wsrf-r:ResourceUnknownFault", el("wsrf-bf:Timestamp", _now(device)))
    return SoapFault(
        f"no such subscription: {what[:64]}",
        code="Receiver",
        subcodes=("wsrf-r:ResourceUnknownFault",),
        status=500,
        detail=detail,
    )


def _subscription(req: SoapRequest) -> tuple[SubscriptionRegistry, Subscription]:
    registry = registry_of(req.device)
    sub_id = req.path.removeprefix(SUBSCRIPTION_PATH).strip("/")
    sub = registry.get(sub_id)
    if sub is None or sub.closed:
        raise _unknown(sub_id, req.device)
    return registry, sub


def _lifetime(text: str | None, req: SoapRequest, fault: str) -> int:
    try:
        return requested_lifetime_ns(text, req.device.clock)
    except TerminationError as exc:
        raise SoapFault(str(exc), subcodes=("ter:InvalidArgVal", fault)) from None


def _topic_filter(body: etree._Element) -> TopicFilter | None:
    """The subscription's filter: the union of its TopicExpressions (None: everything).

    MessageContent filters are accepted and ignored (every message passes them)."""
    flt = _child(body, "Filter")
    if flt is None:
        return None
    filters: list[TopicFilter] = []
    for child in flt:
        name = _local(child.tag)
        if name == "TopicExpression":
            nsmap: dict[str | None, str] = dict(child.nsmap)
            try:
                filters.append(TopicFilter.parse(child.text or "", child.get("Dialect"), nsmap))
            except TopicDialectError as exc:
                raise SoapFault(
                    str(exc),
                    subcodes=("ter:InvalidArgVal", "wsnt:TopicExpressionDialectUnknownFault"),
                ) from None
            except TopicExpressionError as exc:
                raise SoapFault(
                    str(exc), subcodes=("ter:InvalidArgVal", "wsnt:InvalidTopicExpressionFault")
                ) from None
        elif name == "MessageContent":
            _LOGGER.debug("ONVIF MessageContent filter ignored: %s", (child.text or "")[:200])
    return TopicFilter.union(filters) if filters else None


def _changed_only(body: etree._Element) -> bool:
    policy = _child(body, "SubscriptionPolicy")
    if policy is None:
        return False
    flag = _child(policy, "ChangedOnly")
    return flag is not None and (flag.text or "true").strip().lower() in ("true", "1")


def _create(
    req: SoapRequest,
    kind: str,
    *,
    lifetime_ns: int,
    consumer: str | None = None,
) -> Subscription:
    registry = registry_of(req.device)
    try:
        return registry.create(
            kind,
            base_address=base_url(req.http) + SUBSCRIPTION_PATH,
            lifetime_ns=lifetime_ns,
            topic_filter=_topic_filter(req.body),
            consumer=consumer,
            changed_only=_changed_only(req.body),
        )
    except LimitReached as exc:
        sub = "ter:MaxPullPoints" if kind == PULL else "wsnt:SubscribeCreationFailedFault"
        raise SoapFault(
            str(exc), code="Receiver", subcodes=("ter:Action", sub), status=500
        ) from None


def _times(
    sub: Subscription, *, current_first: bool = True, prefix: str = "wsnt"
) -> list[etree._Element]:
    current = el(f"{prefix}:CurrentTime", _now(sub.registry.device))
    termination = el(f"{prefix}:TerminationTime", format_time(sub.termination_wall_ns))
    return [current, termination] if current_first else [termination, current]


# -- event service ---------------------------------------------------------------------------


async def get_service_capabilities(req: SoapRequest) -> etree._Element:
    limit = str(registry_of(req.device).limit)
    return el(
        "tev:GetServiceCapabilitiesResponse",
        el(
            "tev:Capabilities",
            WSSubscriptionPolicySupport="true",
            WSPullPointSupport="true",
            WSPausableSubscriptionManagerInterfaceSupport="false",
            MaxNotificationProducers=limit,
            MaxPullPoints=limit,
            PersistentNotificationStorage="false",
        ),
    )


def present_topics(device: Device) -> set[str]:
    """The camio topics of the stateful sources this device really has."""
    found: set[str] = set()

    def collect(event: Event) -> None:
        found.add(event.topic)

    device.subscribe(collect, accept=accepts, replay_state=True).close()
    return found


def topic_set(device: Device) -> etree._Element:
    """``wstop:TopicSet``: ``tns1:Device`` > ``Trigger`` > ``DigitalInput``/``Relay`` ... with
    a property MessageDescription on each topic the device has."""
    present = present_topics(device)
    root = el("wstop:TopicSet")
    roots: dict[str, etree._Element] = {}
    for info in TOPICS:
        if info.camio_topic not in present:
            continue
        first, *rest = info.topic.split("/")
        node = roots.get(first)
        if node is None:
            node = roots[first] = el(first)
            root.append(node)
        for level in rest:
            child = _child(node, level)
            if child is None:
                # Levels below the root are unqualified (no default namespace is in scope).
                child = etree.SubElement(node, level)
            node = child
        node.set(q("wstop:topic"), "true")
        node.append(
            el(
                "tt:MessageDescription",
                el(
                    "tt:Source",
                    el("tt:SimpleItemDescription", Name=info.source_name, Type=info.source_type),
                ),
                el(
                    "tt:Data",
                    el("tt:SimpleItemDescription", Name=info.data_name, Type=info.data_type),
                ),
                IsProperty="true",
            )
        )
    return root


async def get_event_properties(req: SoapRequest) -> etree._Element:
    return el(
        "tev:GetEventPropertiesResponse",
        el("tev:TopicNamespaceLocation", TOPIC_NAMESPACE_LOCATION),
        el("wsnt:FixedTopicSet", "true"),
        topic_set(req.device),
        *(el("wsnt:TopicExpressionDialect", d) for d in TOPIC_DIALECTS),
        el("tev:MessageContentFilterDialect", MESSAGE_CONTENT_FILTER_DIALECT),
        el("tev:MessageContentSchemaLocation", MESSAGE_CONTENT_SCHEMA_LOCATION),
    )


async def create_pull_point_subscription(req: SoapRequest) -> etree._Element:
    lifetime = _lifetime(
        _text(req.body, "InitialTerminationTime"),
        req,
        "wsnt:UnacceptableInitialTerminationTimeFault",
    )
    sub = _create(req, PULL, lifetime_ns=lifetime)
    _LOGGER.info("ONVIF pull point %s created by %s", sub.id, req.user.name)
    return el(
        "tev:CreatePullPointSubscriptionResponse",
        el("tev:SubscriptionReference", el("wsa:Address", sub.address)),
        *_times(sub),
    )


async def subscribe(req: SoapRequest) -> etree._Element:
    """Base notification: push ``wsnt:Notify`` to the ConsumerReference."""
    consumer_ref = _child(req.body, "ConsumerReference")
    consumer = _text(consumer_ref, "Address") if consumer_ref is not None else None
    if not consumer or not valid_consumer(consumer):
        raise SoapFault("ConsumerReference must hold an absolute http(s) address")
    lifetime = _lifetime(
        _text(req.body, "InitialTerminationTime"),
        req,
        "wsnt:UnacceptableInitialTerminationTimeFault",
    )
    sub = _create(req, PUSH, lifetime_ns=lifetime, consumer=consumer)
    producer = base_url(req.http) + EVENTS_PATH
    task = asyncio.get_running_loop().create_task(push_loop(sub, producer=producer))
    task.add_done_callback(_push_done)
    if sub.closed:  # pragma: no cover - closed while being created
        task.cancel()
    else:
        sub.task = task
    _LOGGER.info(
        "ONVIF push subscription %s to %s by %s", sub.id, redact_url(consumer), req.user.name
    )
    return el(
        "wsnt:SubscribeResponse",
        el("wsnt:SubscriptionReference", el("wsa:Address", sub.address)),
        *_times(sub),
    )


def _push_done(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.error("ONVIF push delivery failed: %r", task.exception())


# -- subscription manager / pull point -------------------------------------------------------


async def pull_messages(req: SoapRequest) -> etree._Element:
    """A true long poll: answers at once with what is queued, else at the first message, else
    with none when Timeout passes (on the device clock)."""
    _, sub = _subscription(req)
    if sub.kind != PULL:
        raise SoapFault(
            "this subscription pushes its messages; it has no pull point",
            code="Receiver",
            subcodes=("ter:ActionNotSupported",),
            status=500,
        )
    timeout_text = _text(req.body, "Timeout")
    limit_text = _text(req.body, "MessageLimit")
    try:
        timeout_ns = parse_duration_ns(timeout_text) if timeout_text else DEFAULT_PULL_TIMEOUT_NS
        limit = int(limit_text) if limit_text else MAX_MESSAGE_LIMIT
    except ValueError:
        raise SoapFault("Timeout must be an xs:duration and MessageLimit an integer") from None
    if timeout_ns < 0:
        raise SoapFault("Timeout must not be negative")
    max_timeout = req.device.config.dialects.onvif.max_pull_timeout_s * NS_PER_S
    timeout_ns = min(timeout_ns, max_timeout)
    limit = min(max(limit, 1), MAX_MESSAGE_LIMIT)
    # A waiting pull point stays alive at least until its answer is due.
    sub.keep_alive(timeout_ns + NS_PER_S)
    superseded = await sub.wait(timeout_ns)
    if sub.closed:
        raise _unknown(sub.id, req.device)
    messages = [] if superseded else sub.take(limit)
    return el(
        "tev:PullMessagesResponse",
        *_times(sub, prefix="tev"),
        *(notification_message(m) for m in messages),
    )


async def set_synchronization_point(req: SoapRequest) -> etree._Element:
    registry, sub = _subscription(req)
    registry.synchronize(sub)
    return el("tev:SetSynchronizationPointResponse")


async def renew(req: SoapRequest) -> etree._Element:
    _, sub = _subscription(req)
    lifetime = _lifetime(
        _text(req.body, "TerminationTime"), req, "wsnt:UnacceptableTerminationTimeFault"
    )
    sub.set_lifetime(lifetime)
    return el("wsnt:RenewResponse", *_times(sub, current_first=False))


async def unsubscribe(req: SoapRequest) -> etree._Element:
    registry, sub = _subscription(req)
    registry.remove(sub)
    _LOGGER.info("ONVIF %s subscription %s unsubscribed", sub.kind, sub.id)
    return el("wsnt:UnsubscribeResponse")


register_service(
    EVENTS_PATH,
    {
        "GetServiceCapabilities": Operation(get_service_capabilities, Role.VIEWER, public=True),
        "GetEventProperties": Operation(get_event_properties, Role.VIEWER),
        "CreatePullPointSubscription": Operation(create_pull_point_subscription, Role.VIEWER),
        "Subscribe": Operation(subscribe, Role.VIEWER),
    },
)
register_service(
    SUBSCRIPTION_PATH,
    {
        "PullMessages": Operation(pull_messages, Role.VIEWER),
        "SetSynchronizationPoint": Operation(set_synchronization_point, Role.VIEWER),
        "Renew": Operation(renew, Role.VIEWER),
        "Unsubscribe": Operation(unsubscribe, Role.VIEWER),
    },
    prefix=True,
)

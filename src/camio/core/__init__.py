"""The pure domain: ports, events, rules, schedules and the clock.

Nothing in here touches sockets, files or asyncio, so the whole device can run under a
:class:`~camio.core.clock.ManualClock` in tests and produce the same result every time.
"""

"""The Axis VAPIX dialect: what the ``axis`` library, Home Assistant's Axis integration and
video management systems expect of an Axis device, mapped onto camio's ports and events.
See docs/vapix.md."""

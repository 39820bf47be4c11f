"""The ONVIF dialect: SOAP 1.2 Device, DeviceIO, Media and Event services, WS-Security and
WS-Discovery, mapped onto the Device facade (see docs/onvif.md)."""

"""camio: the alarm I/O and event system of an IP camera, NVR or camera server, as open software."""

__version__ = "0.1.0"

"""The device's HTTP side: native REST API, event stream, authentication and sessions."""

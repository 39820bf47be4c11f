"""The Hikvision ISAPI dialect. See docs/isapi.md."""

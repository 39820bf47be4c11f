"""The Foscam CGIProxy dialect. See docs/foscam.md."""

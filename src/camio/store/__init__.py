"""Persistence: the configuration document, the event log, output state and key/values on disk."""

"""Recipient kinds: one module each with its configuration model and its sender.

Importing this package registers every kind (see :mod:`camio.recipients.base`).
"""

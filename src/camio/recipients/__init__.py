"""Recipient kinds: one module each with its configuration model and its sender.

Importing this package registers every kind (see :mod:`camio.recipients.base`). The client
libraries of e-mail, FTP and SFTP load on first use (:class:`~camio.lazy.LazyModule`).
"""

from camio.recipients import email, ftp, http, sftp, share, tcp

__all__ = ["email", "ftp", "http", "sftp", "share", "tcp"]

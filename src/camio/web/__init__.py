"""The device's web interface: a single-page app served as static files.

The pages are public shells (HTML, JavaScript, CSS, icons); every piece of data they show comes
from the authenticated native API (``/api/v1``) with the browser's session cookie. The routes
that serve them are in :mod:`camio.web.routes` (``routes`` and ``register(app)``).
"""

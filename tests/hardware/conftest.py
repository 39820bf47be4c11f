"""The hardware suite: the gpio driver on a real kernel GPIO simulator, inside a tiny VM.

``guest/`` runs inside the VM only (``CAMIO_GPIO_GUEST=1``); on the host it is not collected.
"""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("CAMIO_GPIO_GUEST") == "1" else ["guest"]

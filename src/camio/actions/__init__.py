"""Action kinds: one module each with its configuration model and executor.

Importing this package registers every kind with the engine's registry; the composition root
(and anything that validates configuration) imports it once.
"""

from camio.actions import (
    notify,
    overlay_text,
    play_audio,
    record,
    set_output,
    set_virtual_input,
    snapshot,
)

__all__ = [
    "notify",
    "overlay_text",
    "play_audio",
    "record",
    "set_output",
    "set_virtual_input",
    "snapshot",
]

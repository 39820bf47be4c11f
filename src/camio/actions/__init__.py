"""Action kinds: one module each with its configuration model and executor.

Importing this package registers every kind with the engine's registry; the composition root
(and anything that validates configuration) imports it once.
"""

from camio.actions import notify, play_audio, set_output, set_virtual_input

__all__ = ["notify", "play_audio", "set_output", "set_virtual_input"]

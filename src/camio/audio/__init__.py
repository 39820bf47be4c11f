"""Audio clips: a library of uploaded WAV files and the player of the device's audio output.

The composition root builds an :class:`~camio.audio.service.AudioService` and registers it on
the device under :data:`~camio.audio.service.AUDIO`; the ``play_audio`` action and the API find
it there. The engine itself knows nothing about audio.
"""

from camio.audio.library import Clip, ClipError, ClipLibrary
from camio.audio.player import AlsaPlayer, Playback, Player, SimPlayer
from camio.audio.service import AUDIO, AudioService

__all__ = [
    "AUDIO",
    "AlsaPlayer",
    "AudioService",
    "Clip",
    "ClipError",
    "ClipLibrary",
    "Playback",
    "Player",
    "SimPlayer",
]

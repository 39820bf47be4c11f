"""The device's audio output as a service: the clip library and the player, found by the
``play_audio`` action and the API under :data:`AUDIO` in the device's service registry."""

from __future__ import annotations

import logging
from pathlib import Path

from camio.audio.library import Clip, ClipLibrary
from camio.audio.player import AlsaPlayer, Playback, Player, PlayRecord, SimPlayer
from camio.core.clock import Clock
from camio.engine.services import ServiceKey

_LOGGER = logging.getLogger(__name__)


class AudioService:
    def __init__(self, library: ClipLibrary, player: Player) -> None:
        self.library = library
        self.player = player

    @classmethod
    def create(cls, data_dir: Path, clock: Clock, output: str = "sim") -> AudioService:
        """``output``: ``sim`` (record only, the default) or ``alsa`` / ``alsa:<device>``
        (``aplay``; falls back to the simulator when alsa-utils is not installed)."""
        library = ClipLibrary(data_dir / "clips")
        kind, _, device = output.partition(":")
        player: Player = SimPlayer(clock)
        if kind == "alsa":
            aplay = AlsaPlayer.find()
            if aplay is None:
                _LOGGER.warning("audio output 'alsa' asked for but aplay is not installed")
            else:
                player = AlsaPlayer(clock, aplay, device or None)
        elif kind != "sim":
            raise ValueError(f"audio output {output!r}: use 'sim', 'alsa' or 'alsa:<device>'")
        return cls(library, player)

    def play(self, name: str, repeat: int | None, *, source: str) -> Playback:
        """Play clip ``name`` (NotFound when there is none)."""
        clip: Clip = self.library.get(name)
        return self.player.play(clip, repeat, source=source)

    def played(self) -> list[PlayRecord]:
        return self.player.history()

    def close(self) -> None:
        self.player.close()


AUDIO: ServiceKey[AudioService] = ServiceKey("audio")

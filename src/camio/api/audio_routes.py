"""The audio clip library, playing a clip now, and what the audio output played.

A clip is uploaded as the WAV file itself (``PUT`` with the bytes as the body, up to
:data:`~camio.audio.library.MAX_CLIP_BYTES`), not as JSON; the library refuses anything the
standard ``wave`` module cannot read as PCM.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field

from camio.api.context import caller, device_of
from camio.api.errors import BadRequest, read_object
from camio.api.models import parse_body
from camio.api.schemas import Out, respond
from camio.api.spec import spec
from camio.audio import AUDIO, AudioService
from camio.audio.library import MAX_CLIP_BYTES, ClipTooLarge
from camio.core.ports import Model
from camio.store.users import Role

routes = web.RouteTableDef()


class ClipOut(Out):
    name: str
    size: int
    channels: int
    sample_rate: int
    sample_bits: int
    duration_s: float


class ClipList(Out):
    output: str
    clips: list[ClipOut]


class PlayBody(Model):
    repeat: Annotated[int, Field(ge=1, le=100)] = 1


class PlayedOut(Out):
    clip: str
    duration_s: float
    repeat: int | None
    source: str
    start_wall_ns: int
    stop_wall_ns: int | None
    outcome: Literal["playing", "finished", "stopped", "failed"]


class PlayedList(Out):
    output: str
    played: list[PlayedOut]


def _audio(request: web.Request) -> AudioService:
    return device_of(request).services.need(AUDIO)


async def _read_upload(request: web.Request) -> bytes:
    """The body, refused with 413 past the limit (the app's 1 MB limit is for JSON)."""
    if request.content_length is not None and request.content_length > MAX_CLIP_BYTES:
        raise BadRequest(f"the clip is larger than {MAX_CLIP_BYTES} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_CLIP_BYTES:
            raise BadRequest(f"the clip is larger than {MAX_CLIP_BYTES} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


@routes.get("/api/v1/audio/clips")
@spec("The audio clips of the library", role=Role.VIEWER, response=ClipList, tags=("audio",))
async def list_clips(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    audio = _audio(request)
    clips = [c.to_dict() for c in audio.library.list()]
    return respond(ClipList, {"output": audio.player.name, "clips": clips})


@routes.put("/api/v1/audio/clips/{name}")
@spec(
    "Upload a clip: the body is the WAV file (PCM, up to 10 MB and 300 s)",
    role=Role.ADMIN,
    response=ClipOut,
    upload="audio/wav",
    extra_statuses=(400, 413),
    tags=("audio",),
)
async def put_clip(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    audio = _audio(request)
    data = await _read_upload(request)
    try:
        clip = audio.library.add(request.match_info["name"], data)
    except ClipTooLarge as exc:
        raise BadRequest(str(exc), status=413) from exc
    return respond(ClipOut, clip.to_dict())


@routes.delete("/api/v1/audio/clips/{name}")
@spec("Delete a clip", role=Role.ADMIN, status=204, tags=("audio",))
async def delete_clip(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    _audio(request).library.delete(request.match_info["name"])
    return web.Response(status=204)


@routes.post("/api/v1/audio/clips/{name}/play")
@spec(
    "Play a clip now on the audio output (stops the one playing)",
    role=Role.OPERATOR,
    body=PlayBody,
    response=PlayedOut,
    tags=("audio",),
)
async def play_clip(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    audio = _audio(request)
    body = parse_body(PlayBody, await read_object(request)) if request.body_exists else PlayBody()
    audio.play(request.match_info["name"], body.repeat, source=f"api:{user.name}")
    return respond(PlayedOut, audio.played()[-1].to_dict())


@routes.get("/api/v1/audio/played")
@spec(
    "What the audio output played, newest last (the simulator's record of what would play)",
    role=Role.VIEWER,
    response=PlayedList,
    tags=("audio",),
)
async def played(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    audio = _audio(request)
    items = [r.to_dict() for r in audio.played()]
    return respond(PlayedList, {"output": audio.player.name, "played": items})

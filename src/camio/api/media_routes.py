"""The video source, the storage volumes and the media on them (recordings and snapshots).

Everything here goes through the device's :data:`~camio.video.VIDEO` service; a device without
one answers 404 (``services.need`` raises :class:`~camio.engine.errors.NotFound`), so a build
without video still serves a clean API. A media file is addressed by its id
(``<volume>/<kind>/<day>/<name>``), which is also its path under ``/api/v1/media/``; the store's
:meth:`~camio.video.storage.MediaStore.resolve` is the only thing that turns an id into a file,
so nothing outside the media folders can be reached through these routes.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import ConfigDict, Field, ValidationError

from camio.api.context import caller, device_of
from camio.api.errors import BadRequest, error_response, validation_errors
from camio.api.models import Q, Query
from camio.api.schemas import Out, respond
from camio.api.spec import spec
from camio.engine.errors import NotFound
from camio.store.users import Role
from camio.video import VIDEO, VideoError, VideoService
from camio.video.storage import MediaItem

routes = web.RouteTableDef()

TAGS = ("video",)
MAX_LIMIT = 1000
#: How long the status page waits for the worker's own view before leaving it out: a worker
#: that hangs must not hang the page that shows it is in trouble.
WORKER_STATUS_TIMEOUT_S = 2.0
#: A media file never changes under its name (names carry the time to the millisecond), so a
#: browser may keep thumbnails; ``private``: the answer needed credentials.
MEDIA_CACHE_CONTROL = "private, max-age=3600"
_BEFORE = r"^\d{8}T\d{6}(?:\.\d{3}Z)?[A-Za-z0-9_.-]{0,120}$"


# -- models -----------------------------------------------------------------------------------


class StreamOut(Out):
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class WorkerOut(Out):
    """The video worker's own view. Fields the worker adds later pass through."""

    model_config = ConfigDict(extra="allow")

    state: str | None = None
    ring_s: float | None = None
    ring_packets: int | None = None
    ring_bytes: int | None = None
    bitrate_bps: float | None = None


class VideoStatus(Out):
    enabled: bool = Field(description="False when video.source is 'none' or video is turned off")
    source: str = Field(description="The configured source, any password replaced")
    state: str = Field(description="off, connecting, connected or lost")
    error: str | None
    stream: StreamOut | None = Field(None, description="Codec and size while connected")
    pre_buffer_s: int
    overlay: str | None
    recordings: list[str] = Field(description="Ids of the recordings being written")
    worker_pid: int | None
    worker_restarts: int
    worker: WorkerOut | None = Field(
        None, description="The worker's ring and bitrate while connected (null if it did not say)"
    )


class VolumeOut(Out):
    volume: Literal["local", "share"]
    path: str
    state: Literal["ok", "full", "failure"]
    error: str | None
    total_bytes: int
    free_bytes: int
    used_bytes: int = Field(description="By camio's media")
    files: int
    deleted_by_retention: int = Field(description="Since the daemon started")


class StorageStatus(Out):
    volumes: list[VolumeOut]


class MediaItemOut(Out):
    id: str = Field(description="<volume>/<kind>/<day>/<name>: GET /api/v1/media/<id> is the file")
    volume: Literal["local", "share"]
    kind: Literal["recording", "snapshot"]
    name: str
    size: int
    time: str = Field(description="ISO 8601 UTC of the moment it shows")
    content_type: Literal["video/mp4", "image/jpeg"]


class MediaList(Out):
    items: list[MediaItemOut] = Field(description="Newest first")
    next: str | None = Field(description="'before' for the next (older) page; null on the last")


class MediaQuery(Query):
    kind: Literal["recording", "snapshot"] | None = Field(None, description="Only this kind")
    volume: Literal["local", "share"] | None = Field(None, description="Only this volume")
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = Field(
        100, description=f"At most this many (1-{MAX_LIMIT})"
    )
    before: Annotated[str, Field(pattern=_BEFORE)] | None = Field(
        None,
        description="Only media older than this time (20261122T031500.123Z) or name: "
        "the 'next' of the previous page",
    )


class FileQuery(Query):
    download: Literal["0", "1", "false", "true"] | None = Field(
        None, description="1: as an attachment (Content-Disposition) rather than inline"
    )


# -- helpers ----------------------------------------------------------------------------------


def _video(request: web.Request) -> VideoService:
    return device_of(request).services.need(VIDEO)


def _query(request: web.Request, model: type[Q]) -> Q:
    """The query string validated by ``model``: a 400 naming the parameter when it is wrong.

    An empty value counts as absent and a repeated parameter counts once (the first), as for
    the event log.
    """
    values: dict[str, str] = {}
    for key, value in request.query.items():
        if value != "" and key not in values:
            values[key] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = validation_errors(exc)
        message = "; ".join(f"{e['field']}: {_plain(e['field'], e['message'])}" for e in errors)
        raise BadRequest(message, errors=errors) from None


def _plain(field: str, message: str) -> str:
    """pydantic's pattern message names a regular expression; say what is wanted instead."""
    if field == "before" and "pattern" in message:
        return "expected a media time such as 20261122T031500.123Z (or a 'next' value)"
    return message


#: Any segment reaches the handler (aiohttp's default pattern refuses ``{`` and ``}``), so the
#: role is checked before the name: a viewer's DELETE is a 403 whatever it names, never a hint
#: of what exists. :meth:`~camio.video.storage.MediaStore.resolve` then judges the id.
MEDIA_PATH = "/api/v1/media/{volume:[^/]+}/{kind:[^/]+}/{day:[^/]+}/{name:[^/]+}"


def _item_id(request: web.Request) -> str:
    info = request.match_info
    return "/".join((info["volume"], info["kind"], info["day"], info["name"]))


# -- the video source -------------------------------------------------------------------------


@routes.get("/api/v1/video")
@spec(
    "The video source: its state, stream, overlay, running recordings and the worker",
    role=Role.VIEWER,
    response=VideoStatus,
    extra_statuses=(404,),
    tags=TAGS,
)
async def video_status(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    video = _video(request)
    status: dict[str, Any] = {"stream": None, **video.status(), "worker": None}
    if video.state == "connected":
        try:
            async with asyncio.timeout(WORKER_STATUS_TIMEOUT_S):
                status["worker"] = await video.worker_status()
        except (VideoError, TimeoutError):
            pass  # the status says the rest; the worker's view is a bonus
    return respond(VideoStatus, status)


@routes.get("/api/v1/video/snapshot")
@spec(
    "A JPEG of the live picture now (not saved); 503 while the video is not available",
    role=Role.VIEWER,
    content_type="image/jpeg",
    extra_statuses=(404, 503),
    tags=TAGS,
)
async def live_snapshot(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    video = _video(request)
    if not video.enabled:
        # No video at all on this device (video.source: none, or --no-video) is a permanent
        # absence, like a device without the service: 404, not "try again later".
        raise NotFound(
            "this device has no video source (set video.source, or start without --no-video)"
        )
    try:
        snap = await video.snapshot(volume=None)
    except VideoError as exc:
        return error_response(503, "video_unavailable", str(exc))
    return web.Response(
        body=snap.data,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


# -- storage ----------------------------------------------------------------------------------


@routes.get("/api/v1/storage")
@spec(
    "The storage volumes: ok, full or failure, with their space and number of files",
    role=Role.VIEWER,
    response=StorageStatus,
    extra_statuses=(404,),
    tags=TAGS,
)
async def storage_status(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(StorageStatus, {"volumes": _video(request).storage_status()})


@routes.post("/api/v1/storage/check")
@spec(
    "Check every volume and apply retention now (otherwise done every minute)",
    role=Role.ADMIN,
    response=StorageStatus,
    extra_statuses=(404,),
    tags=TAGS,
)
async def storage_check(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    return respond(StorageStatus, {"volumes": _video(request).sweep_now()})


# -- media ------------------------------------------------------------------------------------


@routes.get("/api/v1/media")
@spec(
    "Recordings and snapshots, newest first; page with before=<next>",
    role=Role.VIEWER,
    response=MediaList,
    query=MediaQuery,
    extra_statuses=(400, 404),
    tags=TAGS,
)
async def list_media(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    params = _query(request, MediaQuery)
    media = _video(request).media
    # One more than asked tells whether an older page exists. Listing walks the volume's
    # folders: off the event loop, so a big card does not delay the alarm I/O.
    found: list[MediaItem] = await asyncio.to_thread(
        media.items,
        kind=params.kind + "s" if params.kind else None,
        volume=params.volume,
        limit=params.limit + 1,
        before=params.before,
    )
    page = found[: params.limit]
    next_before = page[-1].name if len(found) > params.limit else None
    return respond(MediaList, {"items": [item.to_dict() for item in page], "next": next_before})


@routes.get(MEDIA_PATH)
@spec(
    "The file of a recording (video/mp4) or snapshot (image/jpeg); Range requests answer 206",
    role=Role.VIEWER,
    query=FileQuery,
    content_type="application/octet-stream",
    extra_statuses=(400,),
    tags=TAGS,
)
async def get_media(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    media = _video(request).media
    params = _query(request, FileQuery)
    item = media.resolve(_item_id(request))
    disposition = "attachment" if params.download in ("1", "true") else "inline"
    return web.FileResponse(
        media.path(item),
        headers={
            "Content-Type": item.content_type,
            # The name is letters, digits, "_", "-" and "." (the store refuses anything else).
            "Content-Disposition": f'{disposition}; filename="{item.name}"',
            "Cache-Control": MEDIA_CACHE_CONTROL,
        },
    )


@routes.delete(MEDIA_PATH)
@spec(
    "Delete a recording or snapshot (audited like every change)",
    role=Role.ADMIN,
    status=204,
    tags=TAGS,
)
async def delete_media(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    video = _video(request)
    video.media.delete(_item_id(request))
    return web.Response(status=204)

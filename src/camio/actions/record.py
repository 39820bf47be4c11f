"""Action: record video, with the pre-alarm buffer, to a storage volume.

Once: ``pre_s`` seconds before the trigger (from the ring, starting at a keyframe) to
``post_s`` after it; when the rule fires again while its recording still runs, the recording is
**extended** to ``post_s`` after the new trigger instead of a second file (as Axis cameras do).
While active: the recording runs while the conditions hold, then ``post_s`` more. The clip can
be sent to recipients when its file is complete; the outbox takes files up to its attachment
limit, a bigger clip is announced by name (it stays browsable through the API).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from camio.actions.media_common import SendsMedia, video_of
from camio.actions.notify import event_key, queue_deliveries, render_texts
from camio.engine.actions import ActionContext, ActionError, ActionExecutor, register_action
from camio.recipients.base import Attachment
from camio.store.outbox import MAX_ATTACHMENT_BYTES
from camio.video import VideoError, VideoService
from camio.video.service import RecordingResult
from camio.video.storage import clean_label


class RecordAction(SendsMedia):
    kind: Literal["record"] = "record"
    pre_s: Annotated[int, Field(ge=0, le=60)] = Field(
        5, description="Seconds before the trigger (up to the video's pre_buffer_s)"
    )
    post_s: Annotated[int, Field(ge=0, le=3600)] = Field(
        10, description="Seconds after the trigger (after the conditions end, while active)"
    )
    storage: Literal["local", "share"] = "local"

    supports_while_active: ClassVar[bool] = True


@dataclass(slots=True)
class _Running:
    record_id: str | None = None  # None while the worker is starting it
    stop_post_s: int | None = None  # a while-active stop that came while it was starting


class RecordExecutor(ActionExecutor[RecordAction]):
    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}  # rule id -> its recording

    def run(self, spec: RecordAction, ctx: ActionContext) -> None:
        video = video_of(ctx)
        running = self._running.get(ctx.rule.id)
        if running is not None:
            if running.record_id is not None and video.recording(running.record_id):
                ctx.spawn(self._extend(video, running.record_id, spec, ctx))
            return  # still starting: the new trigger is the same moment
        self._begin(video, spec, ctx, spec.post_s)

    def start(self, spec: RecordAction, ctx: ActionContext) -> None:
        video = video_of(ctx)
        self.stop(spec, ctx)
        self._begin(video, spec, ctx, None)

    def stop(self, spec: RecordAction, ctx: ActionContext) -> None:
        running = self._running.get(ctx.rule.id)
        if running is not None and running.record_id is None:
            running.stop_post_s = spec.post_s
        elif running is not None and running.record_id is not None:
            video = video_of(ctx)
            record_id = running.record_id

            async def finish() -> None:
                with contextlib.suppress(VideoError):
                    await video.stop_recording(record_id, spec.post_s)

            ctx.spawn(finish())

    async def _extend(
        self, video: VideoService, record_id: str, spec: RecordAction, ctx: ActionContext
    ) -> None:
        if not await video.extend(record_id, spec.post_s):
            self._running.pop(ctx.rule.id, None)
            self._begin(video, spec, ctx, spec.post_s)

    def _begin(
        self, video: VideoService, spec: RecordAction, ctx: ActionContext, post_s: int | None
    ) -> None:
        running = _Running()
        self._running[ctx.rule.id] = running
        event, (subject, message) = render_texts(ctx, spec.subject, spec.message)
        key = event_key(ctx)

        def done(result: RecordingResult) -> None:
            if self._running.get(ctx.rule.id) is running:
                del self._running[ctx.rule.id]
            if not result.ok:
                ctx.fail(ActionError(f"recording failed: {result.error}"))
                return
            if spec.recipients and result.item is not None:
                self._send(video, spec, ctx, result, subject, message, event, key)

        async def begin() -> None:
            try:
                running.record_id = await video.record(
                    volume=spec.storage,
                    label=clean_label(f"{ctx.rule.id}-{key}"),
                    pre_s=spec.pre_s,
                    post_s=post_s,
                    on_done=done,
                    cause=ctx.cause,
                )
            except VideoError as exc:
                if self._running.get(ctx.rule.id) is running:
                    del self._running[ctx.rule.id]
                raise ActionError(f"recording failed: {exc}") from exc
            if running.stop_post_s is not None:
                with contextlib.suppress(VideoError):
                    await video.stop_recording(running.record_id, running.stop_post_s)

        ctx.spawn(begin())

    @staticmethod
    def _send(
        video: VideoService,
        spec: RecordAction,
        ctx: ActionContext,
        result: RecordingResult,
        subject: str,
        message: str,
        event: dict[str, object],
        key: str,
    ) -> None:
        item = result.item
        assert item is not None
        attachments: tuple[Attachment, ...] = ()
        if item.size <= MAX_ATTACHMENT_BYTES:
            try:
                data = video.media.path(item).read_bytes()
            except OSError as exc:
                ctx.fail(ActionError(f"reading the recording failed: {exc.strerror}"))
                return
            attachments = (Attachment(item.name, "video/mp4", data),)
        else:
            size_mb = item.size // 1_000_000
            message += f"\n\nThe recording ({size_mb} MB) is on the device: {item.id}"
        try:
            queue_deliveries(
                ctx,
                spec.recipients,
                subject,
                message,
                dict(event),
                key=key,
                attachments=attachments,
            )
        except ActionError as exc:
            ctx.fail(exc)


register_action(RecordAction, RecordExecutor())

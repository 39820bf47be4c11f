"""Video: the source and its pre-alarm ring (in a worker process), recordings, snapshots, the
overlay text, and the storage volumes they are written to. See docs/video.md."""

from camio.video.service import VIDEO, VideoError, VideoService

__all__ = ["VIDEO", "VideoError", "VideoService"]

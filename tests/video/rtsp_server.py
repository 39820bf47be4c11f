"""A tiny RTSP camera for the video tests: gst-rtsp-server serving ``rtsp://127.0.0.1:<port>/test``.

Run by Debian's ``/usr/bin/python3`` (it has ``gi``; the project's venv does not):

    /usr/bin/python3 tests/video/rtsp_server.py PORT [USER PASSWORD]

With a user and a password the stream needs RTSP Basic authentication. Prints ``ready`` on
stdout once the socket listens (or exits 1 with the reason on stderr); runs until killed.
The stream: the bouncing-ball pattern, H.264 320x180 at 10 fps, a keyframe every second, SPS/PPS
in-band on every keyframe (and in the SDP).
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true pattern=ball"
    " ! video/x-raw,width=320,height=180,framerate=10/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10"
    " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(argv[1])
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(True)  # one pipeline for every client, like a camera
    if len(argv) == 4:
        user, password = argv[2], argv[3]
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        rights = "media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        factory.add_role_from_structure(Gst.Structure.from_string(f"{user}, {rights}")[0])
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{argv[1]}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

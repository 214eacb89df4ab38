"""GStreamer's RTSP server for the tests, run by the SYSTEM Python (/usr/bin/python3) that has the
``gi`` bindings (Debian: gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0).

Usage::

    /usr/bin/python3 tests/gst_rtsp_server.py --port 8554 [--protocols tcp|udp|both]
        [--auth basic|digest --user U --password P]
        --live /cam='( udpsrc port=5000 ... ! rtph264pay name=pay0 pt=96 )'
        --file /clip='( filesrc location=a.mp4 ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )'

``--live`` mounts are shared (one pipeline for every client, like a camera: a new client joins the
running stream); ``--file`` mounts start a fresh pipeline per client and play once. ``--drop-every N``
drops every N-th RTP packet of the first stream (after the payloader: real sequence-number gaps).
With ``--auth``
every mount needs the login and there is no anonymous role, so a wrong password gets 401 (with an
anonymous default token the server answers 404 instead). Prints ``ready PORT`` once listening.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - after require_version

PROTOCOLS = {
    "tcp": GstRtsp.RTSPLowerTrans.TCP,
    "udp": GstRtsp.RTSPLowerTrans.UDP,
    "both": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
}
ROLE = "camera-user"


def _mount(value: str) -> tuple[str, str]:
    path, _, launch = value.partition("=")
    if not path.startswith("/") or not launch:
        raise argparse.ArgumentTypeError(f"expected /PATH=LAUNCH, got {value!r}")
    return path, launch


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--protocols", choices=sorted(PROTOCOLS), default="both")
    parser.add_argument("--auth", choices=("basic", "digest"))
    parser.add_argument("--user", default="viewer")
    parser.add_argument("--password", default="")
    parser.add_argument("--live", type=_mount, action="append", default=[])
    parser.add_argument("--file", type=_mount, action="append", default=[])
    parser.add_argument("--drop-every", type=int, default=0, help="lose every N-th RTP packet of pay0")
    return parser.parse_args()


def _auth(kind: str, user: str, password: str) -> GstRtspServer.RTSPAuth:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    if kind == "basic":
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    else:
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    return auth


def _drop_packets(every: int):
    """A media-configure handler that loses every ``every``-th packet leaving pay0 (network loss)."""

    def configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        count = [0]

        def probe(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
            count[0] += 1
            return Gst.PadProbeReturn.DROP if count[0] % every == 0 else Gst.PadProbeReturn.OK

        payloader = media.get_element().get_by_name("pay0")
        payloader.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)

    return configure


def _factory(launch: str, shared: bool, protocols: str, secured: bool) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(shared)
    factory.set_protocols(PROTOCOLS[protocols])
    if secured:
        access = GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS
        construct = GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT
        role = Gst.Structure.new_from_string(f"{ROLE}, {access}=(boolean)true, {construct}=(boolean)true")
        factory.add_role_from_structure(role)
    return factory


def main() -> int:
    args = _arguments()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.auth:
        server.set_auth(_auth(args.auth, args.user, args.password))
    mounts = server.get_mount_points()
    for path, launch in args.live:
        mounts.add_factory(path, _factory(launch, True, args.protocols, bool(args.auth)))
    for path, launch in args.file:
        mounts.add_factory(path, _factory(launch, False, args.protocols, bool(args.auth)))
    if args.drop_every:
        for path, _ in args.live + args.file:
            mounts.match(path)[0].connect("media-configure", _drop_packets(args.drop_every))
    if server.attach(None) == 0:
        print("cannot listen", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

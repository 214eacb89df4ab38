"""Command line: ``streamproc run INPUT...`` and friends."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

# Before numpy loads: its OpenBLAS starts a thread per core that spins ~0.1 s of CPU each at start-up,
# and nothing streamproc runs uses BLAS (the models run on LiteRT). A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from streamproc import __version__
from streamproc.cli.cluster import add_cluster_command
from streamproc.cli.events import add_events_command
from streamproc.cli.hints import parse
from streamproc.cli.logs import set_own_level, setup_logging
from streamproc.core.errors import ConfigError, StreamprocError

if TYPE_CHECKING:
    from streamproc.config.settings import Settings
    from streamproc.pipeline.run import Pipeline, RunReport

log = logging.getLogger("streamproc")

EXIT_OK = 0
CONFIG_HELP = (
    "YAML config file (default: $STREAMPROC_CONFIG, else ./streamproc.yaml if present; "
    "`streamproc config example` prints a commented one)"
)


def _add_common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more detail (-vv for debug)")
    group.add_argument("-q", "--quiet", action="count", default=0, help="only warnings (-qq: only errors)")
    group.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    group.add_argument("--debug", action="store_true", help="show tracebacks for expected errors too")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamproc",
        description="Video stream processing: BlazeFace face detection on every frame, results to "
        "JSON Lines, annotated video and more.",
    )
    parser.add_argument("--version", action="version", version=f"streamproc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run(commands)
    _add_serve(commands)
    _add_models(commands)
    _add_report(commands)
    _add_config(commands)
    add_events_command(commands, _add_common)
    add_cluster_command(commands, _add_common)
    return parser


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="process video files (and streams) through the pipeline",
        description="Detect faces on every frame of each INPUT and send the results to the configured "
        "sinks. Settings come from --config, STREAMPROC_* environment variables and these flags "
        "(flags win).",
        epilog="example: streamproc run samples/sample.mp4 --events out/events.jsonl "
        "--out-video out/annotated.mp4",
    )
    run.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="video file, image, folder or quoted glob of images, - (a stream on stdin), rtsp:// url,"
        " /dev/videoN or camera:N; replaces the config's sources",
    )
    run.add_argument("-c", "--config", type=Path, metavar="FILE", help=CONFIG_HELP)
    _add_outputs(run)
    run.add_argument("--model", choices=["short", "full"], help="BlazeFace model: short (near) or full (far)")
    run.add_argument(
        "--min-score", type=float, metavar="S", help="minimum face score, 0..1 (default 0.5 short, 0.6 full)"
    )
    run.add_argument("--threads", type=int, metavar="N", help="detector CPU threads (default 1)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (live sources run until stopped)"
    )
    run.add_argument("--rtsp-transport", choices=["auto", "tcp", "udp"], help="RTSP transport (default auto)")
    run.add_argument("--snapshots", type=Path, metavar="DIR", help="save each track's best face as JPEG here")
    run.add_argument(
        "--classify", choices=["faces", "keyframes", "both"], help="classify face crops and/or key frames"
    )
    run.add_argument("--classifier-model", metavar="NAME", help="manifest name or model path (mobilenet_v2)")
    run.add_argument("--models-dir", type=Path, metavar="DIR", help="where fetched models are")
    run.add_argument(
        "--http",
        type=_http_address,
        metavar="[HOST:]PORT",
        help="serve /metrics, /healthz, /readyz, /api/* and the live view (default host 127.0.0.1)",
    )
    _add_distributed(run)
    _add_common(run)
    run.set_defaults(handler=_cmd_run)


def _add_distributed(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("distributed (on Ray: pip install 'streamproc[ray]'; docs/distributed.md)")
    group.add_argument("--workers", type=int, metavar="N", help="process the inputs with N Ray workers here")
    group.add_argument("--cluster", metavar="ADDRESS", help="run on a Ray cluster: auto or ray://HOST:10001")
    group.add_argument("--resume", action="store_true", help="skip files whose outputs are complete")
    group.add_argument(
        "--job",
        metavar="NAME",
        help="cameras on --cluster: a named job that outlives this driver (re-attach)",
    )


def _add_outputs(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--events",
        type=Path,
        metavar="PATH",
        help="append per-frame detections and events as JSON Lines ('-': standard output)",
    )
    run.add_argument(
        "--out-video", type=Path, metavar="PATH", help="write annotated H.264 MP4 (with the input's audio)"
    )
    run.add_argument("--no-audio", action="store_true", help="annotated videos without the input's audio")
    run.add_argument(
        "--out-images",
        type=Path,
        metavar="DIR",
        help="photo inputs: write each photo here, same name and format, upright, without metadata (GPS)",
    )
    run.add_argument(
        "--redact",
        choices=["blur", "pixelate", "fill"],
        help="--out-video/--out-images hide every face's head instead of boxing it (full-range model)",
    )
    run.add_argument(
        "--draw",
        choices=["boxes", "none"],
        help="draw face boxes on --out-video/--out-images (default: boxes, none with --redact)",
    )
    run.add_argument(
        "--overwrite",
        choices=["append", "replace", "refuse"],
        help="an existing --events/--out-video file: append (events; the default), replace it when the"
        " run succeeds (videos always are), or refuse to start",
    )


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="HTTP detection API (POST /api/v1/detect), with the config's sources if any",
        description="Serve POST /api/v1/detect (faces and classifications in uploaded images), "
        "/metrics, /healthz, /readyz, /api/* and /docs until SIGINT/SIGTERM; INPUTs (or the config's "
        "sources) run through the pipeline meanwhile, with their live view.",
        epilog="example: STREAMPROC_HTTP__TOKEN=... streamproc serve --http 0.0.0.0:8080 "
        "--api-model mobilenet_v2",
    )
    serve.add_argument("inputs", nargs="*", metavar="INPUT", help="sources to run too (as for run)")
    serve.add_argument("-c", "--config", type=Path, metavar="FILE", help=CONFIG_HELP)
    serve.add_argument(
        "--http", type=_http_address, metavar="[HOST:]PORT", help="listen here (default 127.0.0.1:8080)"
    )
    serve.add_argument(
        "--api-model",
        action="append",
        default=[],
        metavar="NAME",
        help="classifier the API offers (repeatable)",
    )
    serve.add_argument("--workers", type=int, metavar="N", help="inference threads of the API (default 2)")
    serve.add_argument("--models-dir", type=Path, metavar="DIR", help="where fetched models are")
    _add_common(serve)
    serve.set_defaults(handler=_cmd_serve)


def _add_models(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="list, download and check the models streamproc uses",
        description="The models streamproc knows by name: list them, fetch (download with sha256 "
        "check) the missing ones into the models directory (default: $STREAMPROC_MODELS_DIR, else "
        "~/.cache/streamproc/models), or verify the files there.",
        epilog="example: streamproc models fetch mobilenet_v2 --models-dir ~/models",
    )
    models.add_argument("action", choices=["list", "fetch", "verify"], help="what to do")
    models.add_argument("names", nargs="*", metavar="NAME", help="models to act on (default: all)")
    models.add_argument("-c", "--config", type=Path, metavar="FILE", help="YAML config file (models_dir)")
    models.add_argument("--models-dir", type=Path, metavar="DIR", help="models directory")
    models.add_argument("--base-url", metavar="URL", help="fetch: download from this mirror (URL/FILE)")
    models.add_argument("--timeout", type=float, default=60.0, metavar="S", help="fetch: network timeout")
    _add_common(models)
    models.set_defaults(handler=_cmd_models)


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="turn JSON Lines results into a self-contained HTML report",
        description="Write one HTML page (no external files) with a face-presence timeline per source "
        "and a table of face tracks with thumbnails, classifications and durations.",
        epilog="example: streamproc report out/sample.jsonl -o report.html --video samples/sample.mp4",
    )
    report.add_argument("events", nargs="+", type=Path, metavar="EVENTS.jsonl", help="results of a run")
    report.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="HTML file to write (default: first input, .html)"
    )
    report.add_argument(
        "--video",
        action="append",
        default=[],
        metavar="[SOURCE=]VIDEO",
        help="crop thumbnails from this recording when the results have no snapshots (repeatable)",
    )
    report.add_argument("--title", help="page title (default: the input file names)")
    _add_common(report)
    report.set_defaults(handler=_cmd_report)


def _add_config(commands: Any) -> None:
    config = commands.add_parser("config", help="check a config file or print the config's JSON Schema")
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate FILE and print the effective config, secrets masked",
        description="Validate FILE (with STREAMPROC_* environment variables on top) and print the "
        "effective configuration as YAML with secrets masked. Exit code 2 and one line naming the key "
        "when something is wrong.",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    _add_common(check)
    check.set_defaults(handler=_cmd_config_check)
    schema = actions.add_parser("schema", help="print the JSON Schema of the config file")
    schema.add_argument(
        "--format", choices=["json", "markdown"], default="json", help="markdown: a table of every field"
    )
    _add_common(schema)
    schema.set_defaults(handler=_cmd_config_schema)
    example = actions.add_parser(
        "example",
        help="print a commented example config (every field with its default)",
        epilog="example: streamproc config example > streamproc.yaml",
    )
    _add_common(example)
    example.set_defaults(handler=_cmd_config_example)


def _http_address(text: str) -> dict[str, Any]:
    """'8080', '0.0.0.0:8080' or '[::1]:8080' -> the http settings that enable the server."""
    host, colon, port = text.rpartition(":")
    if not port.isdigit() or (colon and not host):
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT such as 8080 or 127.0.0.1:8080, not {text!r}")
    address: dict[str, Any] = {"enabled": True, "port": int(port)}
    if host:
        address["host"] = host.removeprefix("[").removesuffix("]")
    return address


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.inputs:
        overrides["sources"] = [{"url": url} for url in args.inputs]
    detector = {
        key: value
        for key, value in (("model", args.model), ("min_score", args.min_score), ("threads", args.threads))
        if value is not None
    }
    if detector:
        overrides["detector"] = detector
    if args.no_progress:
        overrides["progress"] = False
    if args.duration is not None:
        overrides["duration"] = args.duration
    if args.rtsp_transport:
        overrides["live"] = {"transport": args.rtsp_transport}
    if args.snapshots:
        overrides["snapshots"] = {"enabled": True, "dir": args.snapshots}
    classifier = {"enabled": True, "targets": args.classify} if args.classify else {}
    if args.classifier_model:
        classifier["model"] = args.classifier_model
    if classifier:
        overrides["classifier"] = classifier
    if args.models_dir:
        overrides["models_dir"] = args.models_dir
    if args.http:
        overrides["http"] = args.http
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.cluster:
        overrides.setdefault("distributed", {})["cluster"] = args.cluster
    if args.job:
        overrides.setdefault("distributed", {})["job"] = args.job
    return overrides


def _add_picture_outputs(args: argparse.Namespace, settings: Settings) -> None:
    """The sinks of --out-video and --out-images, redacted with --redact, boxed as --draw says."""
    from streamproc.config.settings import ImagesSinkSettings, VideoSinkSettings

    if (args.redact or args.draw) and not (args.out_video or args.out_images):
        raise ConfigError("--redact and --draw apply to --out-video and --out-images: add one of them")
    existing = "refuse" if args.overwrite == "refuse" else "replace"  # a picture is never appended to
    looks: dict[str, Any] = {"redact": args.redact}
    if args.draw:
        looks["draw_boxes"] = args.draw == "boxes"
    if args.out_video:
        video = {"type": "video", "path": args.out_video, "existing": existing, **looks}
        settings.sinks.append(VideoSinkSettings.model_validate(video))
    if args.out_images:
        images = {"type": "images", "dir": args.out_images, "existing": existing, **looks}
        settings.sinks.append(ImagesSinkSettings.model_validate(images))


def _cmd_run(args: argparse.Namespace) -> int:
    with _collector_paused():
        from streamproc.config.settings import JsonlSinkSettings, VideoSinkSettings, load_settings
        from streamproc.distributed import wanted
        from streamproc.pipeline.build import build_pipeline

        settings = load_settings(args.config, _run_overrides(args))
    if not _verbosity(args):  # -v/-q/--debug on the command line win over the config's log_level
        set_own_level(settings.log_level)
    if args.events:
        events = {"type": "jsonl", "path": args.events, "existing": args.overwrite or "append"}
        settings.sinks.append(JsonlSinkSettings.model_validate(events))
    _add_picture_outputs(args, settings)
    if args.no_audio:  # every annotated video, the config's too
        for sink in settings.sinks:
            if isinstance(sink, VideoSinkSettings):
                sink.audio = False
    if not settings.sinks and settings.sources:  # without inputs the error below says it all
        log.warning("no sinks configured: results are not saved (use --events or --out-video)")
    if wanted(settings) or args.resume or settings.distributed.job:
        return _run_on_ray(settings, args.resume)
    if settings.http.enabled:
        pipeline, report, signals = _run_serving(settings)
    else:
        pipeline = build_pipeline(settings)
        report, signals = _run_with_progress(pipeline, settings)
    _summarise(pipeline, report, signals)
    return EXIT_OK


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Imports and settings make ~55k objects that live until exit. Without collections while
    they are made, then frozen (never walked again, at exit included), start-up is ~70 ms shorter."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _run_with_progress(pipeline: Pipeline, settings: Settings) -> tuple[RunReport, list[str]]:
    """The run's report, and the signals that stopped it (if any)."""
    signals = _stop_on_signals(pipeline.stop)
    if not settings.progress:  # tqdm is imported only for a bar (~5 ms of start-up)
        return pipeline.run(), signals
    from streamproc.cli.progress import ProgressBar

    with ProgressBar(pipeline.total_frames) as bar:
        return pipeline.run(progress=bar.update), signals


def _run_serving(settings: Settings) -> tuple[Pipeline, RunReport, list[str]]:
    """``run --http``: the run with the status server, live view and detection API around it (the
    HTTP stack is imported only here: it costs ~0.2 s of start-up)."""
    from streamproc.pipeline.build import build_pipeline
    from streamproc.server import StatusServer
    from streamproc.server.access import load_token
    from streamproc.server.detect_pool import open_detect_pool
    from streamproc.sinks.live import LiveViewSink

    load_token(settings.http)  # a missing token fails before any model loads
    live = LiveViewSink(settings.http.jpeg_quality)
    pipeline = build_pipeline(settings, extra_sinks=[live])
    detect = open_detect_pool(settings) if settings.http.api.enabled else None
    try:
        with StatusServer(settings.http, pipeline, live, detect):
            return (pipeline, *_run_with_progress(pipeline, settings))
    finally:
        if detect is not None:
            detect.close()


def _summarise(pipeline: Pipeline, report: RunReport, signals: list[str]) -> None:
    """Log each source's numbers and the run's; raise when the run failed."""
    from streamproc.sinks.base import all_finished

    latencies = {name: stats["latency_ms"] for name, stats in pipeline.stats_snapshot()["sources"].items()}
    for source in report.sources:
        latency = latencies.get(source.source_id) or {}
        timing = (
            f"; capture-to-sink latency ms p50 {latency['p50']} p95 {latency['p95']} p99 {latency['p99']}"
            if latency.get("count")
            else ""
        )
        log.info(
            "%s: %d frames processed, %d dropped, %s%s",
            source.source_id,
            source.frames_processed,
            source.dropped,
            source.state,
            timing,
        )
    log.info(
        "processed %d frames in %.1f s (%.1f fps)%s",
        report.frames_processed,
        report.seconds,
        report.fps,
        _stop_reason(signals, report.interrupted, all_finished(pipeline.sinks)),
    )
    _log_sinks(report)
    problems = report.problems()
    if not report.ok:  # one line per failed source (see main)
        raise StreamprocError("\n".join(problems))
    for problem in problems:  # a camera failed while others ran: reported, not fatal
        log.warning("%s", problem)


def _log_sinks(report: RunReport) -> None:
    """One line per sink: frames received, written, and those not written with why (a warning when
    any were lost rather than left out by choice)."""
    for name, counts in report.sinks.items():
        missing = counts["not_written"]
        why = ", ".join(f"{frames} {reason}" for reason, frames in missing.items())
        level = logging.WARNING if set(missing) - {"no faces (include_empty: false)"} else logging.INFO
        log.log(
            level,
            "sink %s: %d frames received, %d written, %d not written%s",
            name,
            counts["received"],
            counts["written"],
            sum(missing.values()),
            f" ({why})" if why else "",
        )


def _cmd_serve(args: argparse.Namespace) -> int:
    from streamproc.config.settings import load_settings
    from streamproc.server.serve import serve

    http: dict[str, Any] = {**(args.http or {}), "enabled": True}
    api: dict[str, Any] = {"models": args.api_model} if args.api_model else {}
    if args.workers is not None:
        api["workers"] = args.workers
    if api:
        http["api"] = api
    overrides: dict[str, Any] = {"http": http, "progress": False}
    if args.inputs:
        overrides["sources"] = [{"url": url} for url in args.inputs]
    if args.models_dir:
        overrides["models_dir"] = args.models_dir
    settings = load_settings(args.config, overrides)
    if not _verbosity(args):
        set_own_level(settings.log_level)
    handlers: list[list[str]] = []  # the signals _stop_on_signals saw, for the summary line
    ran = serve(settings, lambda stop: handlers.append(_stop_on_signals(stop)))
    if ran is not None:
        _summarise(*ran, handlers[0] if handlers else [])
    return EXIT_OK


def _run_on_ray(settings: Settings, resume: bool) -> int:
    """``--workers`` / ``--cluster``: see streamproc.distributed."""
    from streamproc.distributed import wanted

    if not wanted(settings):
        flag = "--resume" if resume else "--job"
        raise ConfigError(f"{flag} applies to distributed runs: add --workers N or --cluster ADDRESS")
    from streamproc.distributed.run import run_distributed

    stop = threading.Event()
    _stop_on_signals(stop.set)
    run_distributed(settings, stop, resume=resume)
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from streamproc.cli.models import run_models_command

    return run_models_command(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from streamproc.report import write_report

    output = args.output or args.events[0].with_suffix(".html")
    write_report(args.events, output, videos=args.video, title=args.title)
    return EXIT_OK


def _cmd_config_check(args: argparse.Namespace) -> int:
    from streamproc.cli.config_command import check_config, effective_config_yaml

    settings = check_config(args.file)
    print(effective_config_yaml(settings, str(args.file)), end="")
    log.info("%s is valid", args.file)
    return EXIT_OK


def _cmd_config_schema(args: argparse.Namespace) -> int:
    from streamproc.cli.config_command import config_schema, schema_markdown

    schema = config_schema()
    text = schema_markdown(schema) if args.format == "markdown" else json.dumps(schema, indent=2) + "\n"
    print(text, end="")
    return EXIT_OK


def _cmd_config_example(_args: argparse.Namespace) -> int:
    from streamproc.cli.config_files import example_config

    print(example_config(), end="")
    return EXIT_OK


def _stop_on_signals(stop: Callable[[], object]) -> list[str]:
    """First SIGINT/SIGTERM: ordered shutdown (drain, flush, close). Second: stop at once.

    Returns the list the names of received signals are added to."""
    received: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        log.warning("%s received: finishing queued frames and closing outputs", received[-1])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return received


def _stop_reason(signals: list[str], interrupted: bool, readers_gone: bool) -> str:
    """Why a run ended before its sources did: a signal, every output's reader gone (``| head``),
    or --duration."""
    if signals:
        return f" (stopped by {signals[0]})"
    if readers_gone:
        return " (stopped: the reader of standard output went away)"
    return " (stopped: --duration reached)" if interrupted else ""


def _verbosity(args: argparse.Namespace) -> int:
    """-v count minus -q count; --debug implies -v (streamproc's debug lines hold the tracebacks)."""
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    if getattr(args, "debug", False):
        verbosity = max(verbosity, 1)
    return verbosity


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    _exit_past_stuck_captures(code)
    return code


def _exit_past_stuck_captures(code: int) -> None:
    """Exit at once, outputs already closed, when a capture thread is still blocked inside FFmpeg
    (a camera that never answered its connect): letting the interpreter shut down under it crashed
    the process with SIGSEGV about once in 25 Ctrl-Cs on a loaded machine."""
    if "streamproc.capture.base" not in sys.modules:  # no source was ever opened
        return
    from streamproc.capture.base import capture_threads_running

    if capture_threads_running():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
                stream.flush()
        os._exit(code)


def _last_word(text: str, json_logs: bool) -> None:
    """The line a failed or interrupted command ends with: JSON for log shippers, else plain."""
    if json_logs:
        log.error("%s", text)
    else:
        print(f"streamproc: {text}", file=sys.stderr)


def _main(argv: Sequence[str] | None) -> int:
    args = parse(build_parser(), argv)
    json_logs = getattr(args, "log_format", "text") == "json"
    setup_logging(_verbosity(args), json_format=json_logs)
    try:
        if hasattr(args, "config"):  # run, models, events: -c, $STREAMPROC_CONFIG or ./streamproc.yaml
            from streamproc.cli.config_files import find_config

            args.config = find_config(args.config)
        return args.handler(args)
    except StreamprocError as exc:
        if getattr(args, "debug", False):
            log.exception("failed")
        for line in str(exc).splitlines() or [""]:  # several problems: one line each
            _last_word(f"error: {line}", json_logs)
        return exc.exit_code
    except KeyboardInterrupt:
        _last_word(
            "interrupted before the outputs were finished: JSON Lines files hold whole lines;"
            " an annotated video stays as NAME.partial.mp4 (it plays up to the stop)",
            json_logs,
        )
        return 130
    except BrokenPipeError:  # stdout's reader went away (`config schema | head`): it read enough
        from streamproc.sinks.linefile import stdout_to_devnull

        stdout_to_devnull()  # no second error when Python flushes stdout at exit
        return EXIT_OK

"""``streamproc events``: subscribe to ``{prefix}/events`` and print events as they arrive."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from streamproc.core.errors import ConfigError

log = logging.getLogger(__name__)

EVENT_TYPES = ("new", "update", "end", "scene")
_IN_THE_HEADLINE = {"type", "source_id", "source", "track_id", "wall_time"}


def add_events_command(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    events = commands.add_parser(
        "events",
        help="print detection events from the MQTT broker as they arrive",
        description="Subscribe to the events streamproc publishes over MQTT and print them, one per line. "
        "Broker, credentials, TLS and topic prefix come from --config / STREAMPROC_MQTT__* like for "
        "'run'; these flags win. The password is only read from the config or STREAMPROC_MQTT__PASSWORD.",
        epilog="example: streamproc events --broker localhost:1883 --source frontdoor --type new",
    )
    events.add_argument("--broker", metavar="HOST[:PORT]", help="MQTT broker (default: mqtt.host/mqtt.port)")
    events.add_argument("-c", "--config", type=Path, metavar="FILE", help="YAML config with an mqtt section")
    events.add_argument("--prefix", metavar="TOPIC", help="topic prefix (default: mqtt.topic_prefix)")
    events.add_argument("--username", help="MQTT user name (default: mqtt.username)")
    events.add_argument("--source", action="append", metavar="ID", help="only this source (repeatable)")
    events.add_argument(
        "--type", action="append", choices=EVENT_TYPES, dest="types", help="only this event type (repeatable)"
    )
    events.add_argument("--json", action="store_true", help="print each event as raw JSON")
    events.add_argument("--count", type=int, metavar="N", help="exit after N events")
    add_common(events)
    events.set_defaults(handler=run_events)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    mqtt: dict[str, Any] = {}
    if args.broker:
        host, _, port = args.broker.rpartition(":") if ":" in args.broker else (args.broker, "", "")
        mqtt["host"] = host
        if port:
            if not port.isdigit():
                raise ConfigError(f"--broker {args.broker}: the port must be a number, as in localhost:1883")
            mqtt["port"] = int(port)
    if args.prefix:
        mqtt["topic_prefix"] = args.prefix
    if args.username:
        mqtt["username"] = args.username
    return {"mqtt": mqtt} if mqtt else {}


def matches(event: dict[str, Any], sources: list[str] | None, types: list[str] | None) -> bool:
    source = event.get("source_id", event.get("source"))
    return (not sources or source in sources) and (not types or event.get("type") in types)


def readable(event: dict[str, Any]) -> str:
    """One line: time, source, type, track, then the event's other plain fields as key=value."""
    when = datetime.fromtimestamp(float(event.get("wall_time") or time.time())).strftime("%H:%M:%S.%f")[:-3]
    source = event.get("source_id", event.get("source", "?"))
    line = f"{when}  {source}  {event.get('type', '?'):<6}"
    if event.get("track_id") is not None:
        line += f"  track {event['track_id']}"
    details = [
        f"{key}={round(value, 3) if isinstance(value, float) else value}"
        for key, value in event.items()
        if key not in _IN_THE_HEADLINE and isinstance(value, str | int | float | bool)
    ]
    return "  ".join([line, *details])


def run_events(args: argparse.Namespace) -> int:
    from streamproc.config.settings import load_settings
    from streamproc.mqtt.client import build_client, connect, default_client_id, describe_broker
    from streamproc.mqtt.topics import Topics

    settings = load_settings(args.config, _overrides(args)).mqtt
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    topic = Topics(settings.topic_prefix).events
    client = build_client(settings, default_client_id("events"))
    printed = 0

    def on_connect(client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:  # also after a reconnect: the broker may have forgotten us
            client.subscribe(topic, qos=2)

    def on_subscribe(_client: Any, _userdata: Any, _mid: int, _reasons: Any, _properties: Any) -> None:
        log.info("subscribed to %s on %s", topic, describe_broker(settings))

    def on_message(client: Any, _userdata: Any, message: Any) -> None:
        nonlocal printed
        try:
            event = json.loads(message.payload)
        except ValueError:
            log.warning("skipping a message on %s that is not JSON", message.topic)
            return
        if not isinstance(event, dict) or not matches(event, args.source, args.types):
            return
        print(json.dumps(event) if args.json else readable(event), flush=True)
        printed += 1
        if args.count is not None and printed >= args.count:
            client.disconnect()

    connect(client, settings)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.subscribe(topic, qos=2)
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        client.disconnect()
    return 0

"""``streamproc events``: subscribe to ``{prefix}/events`` and print events as they arrive."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamproc.cli.event_text import Malformed, TrackNumbers, parse_event, readable, safe_text
from streamproc.core.errors import ConfigError

log = logging.getLogger(__name__)

EVENT_TYPES = ("new", "update", "end", "scene")


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
    events.add_argument(
        "--full-ids",
        action="store_true",
        help="show full track and event ids (default: tracks numbered 1, 2, 3... per source)",
    )
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


class _Skipped:
    """Messages that are not events: each logged with its reason (the first few), counted for the end."""

    LOGGED = 10

    def __init__(self) -> None:
        self.count = 0

    def add(self, topic: str, problem: Malformed) -> None:
        self.count += 1
        if self.count <= self.LOGGED:
            more = "; later ones are only counted" if self.count == self.LOGGED else ""
            log.warning("skipping a message on %s: %s%s", safe_text(topic), safe_text(problem), more)

    def summary(self) -> None:
        if self.count:
            log.warning("skipped %d malformed message(s)", self.count)


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
    skipped = _Skipped()
    numbers = None if args.full_ids else TrackNumbers()

    def on_connect(client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:  # also after a reconnect: the broker may have forgotten us
            client.subscribe(topic, qos=2)

    def on_subscribe(_client: Any, _userdata: Any, _mid: int, _reasons: Any, _properties: Any) -> None:
        log.info("subscribed to %s on %s", topic, describe_broker(settings))

    def on_message(client: Any, _userdata: Any, message: Any) -> None:
        nonlocal printed
        try:
            event = parse_event(message.payload)
        except Malformed as problem:
            skipped.add(message.topic, problem)
            return
        if not matches(event, args.source, args.types):
            return
        print(json.dumps(event) if args.json else readable(event, numbers), flush=True)
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
    skipped.summary()
    return 0

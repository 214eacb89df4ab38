"""Home Assistant MQTT discovery: each source becomes a device with a 'Face detected' binary sensor
and a 'Faces' sensor, both read from ``{prefix}/{source}/faces`` and available while
``{prefix}/available`` says ``online`` and the source's status says ``streaming``."""

from __future__ import annotations

import re
from typing import Any

from streamproc import __version__
from streamproc.config.settings import HomeAssistantSettings
from streamproc.mqtt.topics import OFFLINE, ONLINE, Topics

_NOT_IN_AN_ID = re.compile(r"[^A-Za-z0-9_-]")


def object_id(name: str) -> str:
    """Home Assistant's node and object ids allow only letters, digits, '_' and '-'."""
    return _NOT_IN_AN_ID.sub("_", name)


def discovery_configs(
    topics: Topics, source_id: str, settings: HomeAssistantSettings
) -> dict[str, dict[str, Any]]:
    """Config topic -> config payload for one source's entities."""
    node = object_id(settings.node_id or topics.prefix)
    source = object_id(source_id)
    common = {
        "state_topic": topics.source(source_id, "faces"),
        # available while streamproc runs and the camera streams: a camera away behind its relay
        # (reconnecting) shows as unavailable, not as "no face"
        "availability": [
            {"topic": topics.available, "payload_available": ONLINE, "payload_not_available": OFFLINE},
            {
                "topic": topics.source(source_id, "status"),
                "value_template": "{{ 'online' if value_json.state == 'streaming' else 'offline' }}",
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
        ],
        "availability_mode": "all",
        "device": {
            "identifiers": [f"{node}_{source}"],
            "name": f"{source_id} (streamproc)",
            "manufacturer": "streamproc",
            "model": "face detection",
            "sw_version": __version__,
        },
    }
    prefix = settings.discovery_prefix
    return {
        f"{prefix}/binary_sensor/{node}/{source}_face/config": {
            **common,
            "name": "Face detected",
            "unique_id": f"{node}_{source}_face",
            "device_class": "occupancy",
            "value_template": "{{ 'ON' if value | int > 0 else 'OFF' }}",
        },
        f"{prefix}/sensor/{node}/{source}_faces/config": {
            **common,
            "name": "Faces",
            "unique_id": f"{node}_{source}_faces",
            "unit_of_measurement": "faces",
            "state_class": "measurement",
            "icon": "mdi:face-recognition",
        },
    }

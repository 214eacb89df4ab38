"""MQTT: topic layout, the publisher behind the mqtt sink, and the ``streamproc events`` subscriber."""

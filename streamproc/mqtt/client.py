"""paho-mqtt clients built from the ``mqtt`` settings, a blocking connect with errors that say what to
fix, and one round of network work for clients driven by our own thread."""

from __future__ import annotations

import logging
import os
import secrets
import select
import socket
import ssl
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from streamproc.config.settings import MqttSettings, MqttTlsSettings
from streamproc.core.errors import ConfigError, OutputError
from streamproc.mqtt.outbox import Message

log = logging.getLogger(__name__)

# CONNACK answers that mean "who are you?" rather than "broker trouble" (MQTT 3.1.1 codes 4/5, 5.0 0x86/0x87)
_AUTH_REFUSALS = {"Bad user name or password", "Not authorized"}


def default_client_id(role: str) -> str:
    """Unique per connection: a broker drops the older of two connections with the same id."""
    return f"streamproc-{role}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def describe_broker(settings: MqttSettings) -> str:
    scheme = "mqtts" if settings.tls.enabled else "mqtt"
    return f"{scheme}://{settings.host}:{settings.port}"


def build_client(settings: MqttSettings, client_id: str, will: Message | None = None) -> paho.Client:
    """A configured but unconnected client; raises ConfigError for unusable TLS files."""
    protocol = paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    # paho reports a lost connection as an error; we report it once, readably: keep its own lines at DEBUG
    client.on_log = lambda _client, _userdata, _level, text: log.debug("paho: %s", text)
    client.connect_timeout = settings.connect_timeout
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls.enabled:
        client.tls_set_context(tls_context(settings.tls))
    if will is not None:
        client.will_set(will.topic, will.payload, will.qos, will.retain)
    return client


def tls_context(tls: MqttTlsSettings) -> ssl.SSLContext:
    """Verify the broker against ca_file (or the system CAs); present the client certificate if set."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"invalid setting 'mqtt.tls.ca_file': {tls.ca_file} holds no usable PEM CA certificate ({exc})"
        ) from None
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"invalid setting 'mqtt.tls.cert_file': {tls.cert_file} with key "
                f"{tls.key_file or '(in the same file)'} is not a usable PEM certificate and key ({exc})"
            ) from None
    context.check_hostname = not tls.insecure
    return context


def connect(client: paho.Client, settings: MqttSettings) -> Properties:
    """Connect and wait for the broker's answer (CONNACK), in the caller's thread; returns its properties.

    Raises OutputError naming the setting to check: unreachable broker, TLS failure, refused login.
    """
    where = f"MQTT broker {describe_broker(settings)}"
    answers: list[tuple[ReasonCode, Properties]] = []
    own_callback = client.on_connect
    client.on_connect = lambda _client, _userdata, _flags, reason, properties: answers.append(
        (reason, properties)
    )
    try:
        _open_socket(client, settings, where)
        deadline = time.monotonic() + settings.connect_timeout
        while not answers and client.socket() is not None and time.monotonic() < deadline:
            service(client, 0.1)
    finally:
        client.on_connect = own_callback
    if not answers:
        client.disconnect()
        raise OutputError(
            f"{where} did not accept the connection (no answer within {settings.connect_timeout:g} s, or it"
            " hung up): check that mqtt.port is an MQTT port and mqtt.tls matches it (TLS on or off)"
        )
    reason, properties = answers[0]
    if reason.is_failure:
        hint = (
            "check mqtt.username and the password (STREAMPROC_MQTT__PASSWORD)"
            if str(reason) in _AUTH_REFUSALS
            else "check the broker's log"
        )
        raise OutputError(f"{where} refused the connection: {reason}: {hint}")
    return properties


def receive_maximum(properties: Properties | None) -> int:
    """How many unacknowledged QoS>=1 messages an MQTT 5 broker accepts (its CONNACK says)."""
    return getattr(properties, "ReceiveMaximum", 65_535)


def _open_socket(client: paho.Client, settings: MqttSettings, where: str) -> None:
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
    except ssl.SSLCertVerificationError as exc:
        raise OutputError(
            f"TLS: {where} presented a certificate that does not verify ({exc.verify_message}): check "
            "mqtt.tls.ca_file, and that mqtt.host is a name the certificate was issued for"
        ) from None
    except ssl.SSLError as exc:
        raise OutputError(
            f"TLS handshake with {where} failed ({exc.reason or exc}): check that mqtt.port speaks TLS"
            " and the mqtt.tls settings"
        ) from None
    except socket.gaierror:
        raise OutputError(f"cannot resolve mqtt.host '{settings.host}': check the broker's name") from None
    except TimeoutError:
        raise OutputError(
            f"{where} did not answer within {settings.connect_timeout:g} s: check mqtt.host and mqtt.port"
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot connect to {where}: {exc.strerror or exc}: check mqtt.host and mqtt.port, and that"
            " the broker is running"
        ) from None


def service(client: paho.Client, timeout: float, wake: socket.socket | None = None) -> None:
    """One round of paho's external-loop API: wait up to ``timeout`` for the socket (or for ``wake``
    to be written), then read, write and keep the connection alive."""
    sock = client.socket()
    if sock is None:
        return
    buffered = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0  # TLS may hold decrypted bytes
    readers = [sock] if wake is None else [sock, wake]
    writers = [sock] if client.want_write() else []
    try:
        readable, writable, _ = select.select(readers, writers, [], 0 if buffered else timeout)
    except (OSError, ValueError):  # the socket was closed under us: paho notices below
        readable, writable = [], []
    if wake is not None and wake in readable:
        _drain(wake)
    if buffered or sock in readable:
        client.loop_read()
    if sock in writable and client.socket() is sock:
        client.loop_write()
    if client.socket() is sock:
        client.loop_misc()


def _drain(wake: socket.socket) -> None:
    try:
        while wake.recv(4096):
            pass
    except BlockingIOError:
        pass

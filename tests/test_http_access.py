"""Access control and the HTTP stack's manners, against real served ports: the token (required beyond
loopback), the Host allow-list, HEAD, the Server header, CORS, TLS and the OpenAPI docs."""

from __future__ import annotations

import base64
import json
import logging
import re
import signal
import socket
import ssl
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CliRunner
from http_helpers import cli_server, serve, wait_for
from mqtt_support import Pki

from streamproc.config.settings import HttpSettings
from streamproc.core.errors import ConfigError
from streamproc.server import StatusServer
from streamproc.server.refusals import NAMED_KEYS
from streamproc.server.view import NoSources

TOKEN = "correct-horse-battery-staple-42"


@contextmanager
def bare_server(refusal_summary_s: float = 60.0, **http: Any) -> Iterator[StatusServer]:
    """A server without sources or API on a free loopback port."""
    settings = HttpSettings(enabled=True, port=0, **http)
    with StatusServer(
        settings, NoSources(), require_sources=False, refusal_summary_s=refusal_summary_s
    ) as server:
        yield server


def test_no_token_beyond_loopback_refuses_to_start(run_cli: CliRunner) -> None:
    result = run_cli("serve", "--http", "0.0.0.0:0", timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "STREAMPROC_HTTP__TOKEN" in result.stderr
    with pytest.raises(ConfigError, match="shorter than 16"):
        StatusServer(HttpSettings(host="127.0.0.1", port=0, token="short"), NoSources())


def test_token_is_required_on_every_route_but_healthz(tmp_path: Path) -> None:
    """streamproc serve on 0.0.0.0 with the token from the environment, as deployed."""
    env = {"STREAMPROC_HTTP__TOKEN": TOKEN}
    with cli_server("serve", "--http", "0.0.0.0:0", env=env) as (process, port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        for path in ("/readyz", "/metrics", "/api/stats", "/api/sources", "/", "/docs", "/openapi.json"):
            refused = httpx.get(base + path)
            assert refused.status_code == 401, path
            assert "Bearer" in refused.headers["WWW-Authenticate"]
            assert httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        wrong = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        assert httpx.post(f"{base}/api/v1/detect", content=b"x").status_code == 401
        assert httpx.post(f"{base}/api/v1/redact", content=b"x").status_code == 401
        basic = base64.b64encode(f"viewer:{TOKEN}".encode()).decode()  # what a browser sends
        assert httpx.get(f"{base}/readyz", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
        assert process.returncode == 0
        assert TOKEN not in rest
        assert "without TLS" in rest, "a token in clear text on the network is worth a warning"


def test_wrong_host_gets_400() -> None:
    with bare_server() as server:
        url = server.url + "readyz"
        rebinding = httpx.get(url, headers={"Host": f"attacker.example:{server.port}"})
        assert rebinding.status_code == 400 and "Host" in rebinding.json()["error"]
        for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]"):
            assert httpx.get(url, headers={"Host": host}).status_code == 200, host
    with bare_server(allowed_hosts=["camera.lan"]) as server:
        url = server.url + "readyz"
        assert httpx.get(url, headers={"Host": "camera.lan"}).status_code == 200
        assert httpx.get(url, headers={"Host": "localhost"}).status_code == 400
        # an address cannot come from DNS rebinding: a LAN user types the camera box's address
        for address in ("192.168.1.20:8080", "10.0.0.7", "[fe80::1]:8080", "[2001:db8::5]"):
            answer = httpx.get(url, headers={"Host": address})
            assert answer.status_code == 200, address
            assert answer.headers["x-content-type-options"] == "nosniff"
        refused = httpx.get(url, headers={"Host": "192.168.1.20.attacker.example"})
        assert refused.status_code == 400 and "http.allowed_hosts" in refused.json()["error"]
        assert refused.headers["x-content-type-options"] == "nosniff"


def test_head_answers_like_get_without_a_body(sample_video: Path) -> None:
    with serve([sample_video]) as served:
        served.wait_done()
        for path in ("healthz", "readyz", "metrics", "api/stats", "api/sources", "", "live/sample.jpg"):
            got = httpx.get(served.url(path))
            head = httpx.head(served.url(path))
            assert head.status_code == got.status_code == 200, path
            assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
            assert got.headers["server"] == "streamproc", "no versions in Server:"
        stream = httpx.head(served.url("live/sample.mjpeg"), timeout=5)
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("multipart/")
        wrong_method = httpx.post(served.url("healthz"))
        missing = httpx.get(served.url("nope"))
        docs = httpx.get(served.url("docs"))
        schema = httpx.get(served.url("openapi.json")).json()
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert wrong_method.headers["allow"] == "GET, HEAD", "every GET route answers HEAD too"
    assert missing.json() == {"error": "no such page: /nope"}, "every error has the same shape"
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/api/v1/detect" in schema["paths"] and "/metrics" in schema["paths"]


def test_cors_is_off_unless_configured() -> None:
    origin = {"Origin": "https://dashboard.example"}
    with bare_server() as server:
        assert "access-control-allow-origin" not in httpx.get(server.url + "healthz", headers=origin).headers
    with bare_server(cors_origins=["https://dashboard.example"], token=TOKEN) as server:
        allowed = httpx.get(server.url + "healthz", headers=origin).headers
        assert allowed["access-control-allow-origin"] == "https://dashboard.example"
        preflight = httpx.options(
            server.url + "api/v1/detect",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )  # browsers send it without credentials
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert httpx.get(server.url + "readyz", headers=origin).status_code == 401, "the token still counts"


def test_tls_serves_https_with_the_configured_certificate(pki: Pki) -> None:
    with bare_server(tls_cert=pki.server_cert, tls_key=pki.server_key) as server:
        assert server.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=pki.ca)
        reply = httpx.get(server.url + "healthz", verify=trusted)
        assert reply.status_code == 200 and reply.json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "healthz", verify=ssl.create_default_context(cafile=pki.other_ca))


def test_answers_come_without_nagle_delay_and_connections_are_limited() -> None:
    """A small answer in well under the 40 ms a delayed ACK costs; beyond max_connections, 503."""
    with bare_server(max_connections=8) as server, httpx.Client() as client:
        spent = []
        for _ in range(20):
            started = time.perf_counter()
            assert client.get(server.url + "healthz").status_code == 200
            spent.append(time.perf_counter() - started)
        assert statistics.median(spent) < 0.015, f"median {statistics.median(spent) * 1000:.1f} ms"
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        try:
            with httpx.Client() as fresh:
                refused = fresh.get(server.url + "healthz")
        finally:
            for conn in idle:
                conn.close()
        assert refused.status_code == 503


def test_405_allow_names_every_method_of_the_path() -> None:
    with bare_server() as server:
        for method, path, allowed in (
            ("DELETE", "readyz", "GET, HEAD"),
            ("PUT", "live/cam.jpg", "GET, HEAD"),
            ("POST", "docs", "GET, HEAD"),
            ("GET", "api/v1/detect", "POST"),
        ):
            reply = httpx.request(method, server.url + path)
            assert reply.status_code == 405, (method, path)
            assert reply.headers["allow"] == allowed, (method, path)
            for method_allowed in allowed.split(", "):
                answered = httpx.request(method_allowed, server.url + path).status_code
                assert answered != 405, (method_allowed, path)


ASSET_REF = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


def test_api_docs_and_their_assets_are_served_offline_and_need_the_token() -> None:
    """/docs and /redoc reference nothing outside the server; every asset they name is served, and
    with a token configured the pages, the assets and the schema all need it."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with bare_server(token=TOKEN) as server, httpx.Client(headers=auth) as client:
        sizes = {}
        for page in ("docs", "redoc"):
            html = client.get(server.url + page)
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
            assert "http:" not in html.text and "https:" not in html.text and "//" not in html.text
            refs = ASSET_REF.findall(html.text)
            assert "/openapi.json" in refs and len(refs) >= 3, refs
            for ref in refs:
                assert ref.startswith("/"), f"{page} references {ref}"
                reply = client.get(server.url + ref.lstrip("/"))
                assert reply.status_code == 200 and reply.content, ref
                sizes[ref] = len(reply.content)
                for refused in (httpx.get(server.url + ref.lstrip("/")), httpx.get(server.url + page)):
                    assert refused.status_code == 401, ref
        assert sizes["/docs/assets/swagger-ui-bundle.js"] > 500_000, "the real Swagger UI, not a stub"
        assert client.get(server.url + "openapi.json").json()["info"]["title"] == "streamproc"
        assert 'href="docs"' in client.get(server.url).text, "the live page links to the API docs"
        icon = client.get(server.url + "favicon.ico")
        assert icon.headers["content-type"] == "image/png" and icon.content.startswith(b"\x89PNG")
        script = client.get(server.url + "docs/assets/swagger-ui-bundle.js")
        assert script.headers["content-type"].startswith("text/javascript")
        again = client.get(script.url, headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        for unknown in ("docs/assets/index.html", "docs/assets/..%2Fcore.py", "docs/assets/%2e%2e"):
            assert client.get(server.url + unknown).status_code == 404, unknown


def refusal_counts(records: list[logging.LogRecord]) -> tuple[int, list[str]]:
    """How many refusals the log lines account for: one per first line, N per summary line."""
    lines = [r.getMessage() for r in records if r.getMessage().startswith("http: refused")]
    summed = 0
    for line in lines:
        summary = re.match(r"http: refused (\d+) more requests", line)
        summed += int(summary.group(1)) if summary else 1
    return summed, lines


def test_refused_hosts_cannot_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """1000 DNS-rebinding requests (900 with one Host, 100 with made-up ones): a few log lines that
    still add up to 1000; the metric counts every one."""
    caplog.set_level(logging.WARNING, logger="streamproc.server")
    with bare_server() as server, httpx.Client() as client:
        for i in range(1000):
            host = f"name{i}.example" if i % 10 == 0 else "rebind.example"
            assert client.get(server.url + "readyz", headers={"Host": host}).status_code == 400
        metrics = client.get(server.url + "metrics").text
    summed, lines = refusal_counts(caplog.records)
    assert len(lines) <= NAMED_KEYS + 1, lines
    assert summed == 1000, lines
    assert "'rebind.example' 899" in lines[-1], "the summary names the Host refused most"
    assert 'streamproc_http_refused_total{reason="host"} 1000.0' in metrics


def test_refusal_summaries_come_while_serving_and_wrong_tokens_are_counted_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="streamproc.server")
    with bare_server(refusal_summary_s=0.3, token=TOKEN) as server, httpx.Client() as client:
        wrong = {"Authorization": f"Bearer {TOKEN[:-1]}"}
        for _ in range(50):
            assert client.get(server.url + "api/stats", headers=wrong).status_code == 401
            assert client.get(server.url + "api/stats").status_code == 401  # no token: not logged
        wait_for(lambda: refusal_counts(caplog.records)[0] == 50, timeout=5, what="a summary")
        _, lines = refusal_counts(caplog.records)
        assert len(lines) == 2 and "wrong token" in lines[0] and "'127.0.0.1' 49" in lines[1], lines
        auth = {"Authorization": f"Bearer {TOKEN}"}
        metrics = client.get(server.url + "metrics", headers=auth).text
    assert 'streamproc_http_refused_total{reason="wrong_token"} 50.0' in metrics
    assert 'streamproc_http_refused_total{reason="no_token"} 50.0' in metrics
    assert all(TOKEN[:-1] not in r.getMessage() for r in caplog.records), "no token in the log"


def test_openapi_declares_the_bearer_token_for_swagger_authorize() -> None:
    """With a token, the schema names an HTTP bearer scheme on every route that needs it (not
    /healthz), so /docs offers "Authorize"; the header built from the declared scheme is accepted."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with bare_server(token=TOKEN) as server:
        schema = httpx.get(server.url + "openapi.json", headers=auth).json()
        schemes = schema["components"]["securitySchemes"]
        assert len(schemes) == 1
        ((name, scheme),) = schemes.items()
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        operations = {
            (path, method): operation
            for path, methods in schema["paths"].items()
            for method, operation in methods.items()
        }
        assert ("/api/stats", "get") in operations and ("/healthz", "get") in operations
        for (path, method), operation in operations.items():
            expected = None if path == "/healthz" else [{name: []}]
            assert operation.get("security") == expected, (path, method)
        # what Swagger UI sends for an http/bearer scheme: "Authorization: Bearer <value entered>"
        declared = {"Authorization": f"{scheme['scheme'].capitalize()} {TOKEN}"}
        for path, method in operations:
            if method == "get" and "{" not in path and path != "/healthz":
                assert httpx.get(server.url + path.lstrip("/"), headers=declared).status_code == 200, path
                assert httpx.get(server.url + path.lstrip("/")).status_code == 401, path
    with bare_server() as server:  # no token, nothing to authorize: the schema says none
        schema = httpx.get(server.url + "openapi.json").json()
        assert "securitySchemes" not in schema.get("components", {})
        assert not any("security" in op for methods in schema["paths"].values() for op in methods.values())


def test_optional_query_parameters_have_plain_types_in_the_schema() -> None:
    """Swagger UI showed `string | (string | null)` for `str | None` parameters: a query parameter is
    sent or not, never null, so each one's schema is its own type, enum and bounds."""
    with bare_server() as server:
        schema = httpx.get(server.url + "openapi.json").json()
    parameters = {
        parameter["name"]: parameter
        for methods in schema["paths"].values()
        for operation in methods.values()
        for parameter in operation.get("parameters", ())
    }
    assert "null" not in json.dumps(parameters), parameters
    detect_operation = schema["paths"]["/api/v1/detect"]["post"]
    detect_parameters = {parameter["name"]: parameter for parameter in detect_operation["parameters"]}
    detect = {name: detect_parameters[name]["schema"] for name in ("classify", "model", "min_score", "top_k")}
    assert detect["classify"]["type"] == "string" and detect["classify"]["enum"] == ["faces", "image", "both"]
    assert detect["model"]["type"] == "string" and "anyOf" not in detect["model"]
    assert (detect["min_score"]["type"], detect["min_score"]["minimum"], detect["min_score"]["maximum"]) == (
        "number",
        0.0,
        1.0,
    )
    assert not any(detect_parameters[name]["required"] for name in detect)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_startup_line_on_every_interface_lists_addresses_to_open(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """http://0.0.0.0:PORT/ cannot be opened: the one start-up line also names this machine's
    addresses, the same as `hostname -I` finds (IPv4 for 0.0.0.0; IPv6 too for ::), and each answers."""
    with (
        caplog.at_level(logging.INFO, logger="streamproc.server"),
        bare_server(host=host, token=TOKEN) as server,
    ):
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP server on ")]
        assert len(lines) == 1 and "\n" not in lines[0], lines
        assert lines[0].startswith(f"HTTP server on {server.url} ")
        expected = [
            address
            for address in subprocess.run(
                ["hostname", "-I"], capture_output=True, text=True, check=True
            ).stdout.split()
            if host == "::" or ":" not in address
        ]
        opened = re.search(r"\(open (\S+) here, (.+?) from the network; ", lines[0])
        if not expected:  # a machine without a network: it says so, and names the loopback
            assert "here; no network address found;" in lines[0], lines[0]
            return
        assert opened is not None, lines[0]
        here, network = opened.group(1), opened.group(2).split(", ")
        listed = [re.sub(r"^http://\[?(.*?)\]?:\d+/$", r"\1", url) for url in network[:4]]
        assert listed and set(listed) <= set(expected), (listed, expected)
        assert len(listed) == min(4, len(expected)), (listed, expected)
        for url in [here, *network[:4]]:
            assert url.endswith(f":{server.port}/") and "0.0.0.0" not in url and "[::]" not in url
            reply = httpx.get(url + "healthz", timeout=5)
            assert reply.status_code == 200, url
    print(lines[0])

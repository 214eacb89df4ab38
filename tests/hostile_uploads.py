"""Hostile uploads for the detection API, made byte by byte (tests and benchmarks/bench_api_hostile.py):
a progressive JPEG of thousands of tiny scans, a JPEG of millions of comment segments, a multipart
body of a million empty parts, a truncated JPEG with its end marker put back, an encrypted TLS key."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def scan_bomb(width: int = 7000, height: int = 7000, scans: int = 2000) -> bytes:
    """A greyscale progressive JPEG whose scans each carry one byte: the decoder still walks every
    block of the image once per scan (libjpeg-turbo's documented scan-count attack). 7000x7000 (49 MP,
    under the 50 MP limit) with 2000 scans is 22 KB and costs about 9 s of CPU."""
    frame = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    dc_table = b"\x00" + bytes([1] + [0] * 15) + b"\x00"  # one code, '0', for difference 0
    dc_scan = segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + b"\x00"  # Ss=Se=0: DC first, again and again
    tables = segment(0xDB, b"\x00" + bytes([1] * 64)) + segment(0xC4, dc_table)
    return SOI + tables + segment(0xC2, frame) + dc_scan * scans + EOI


def comment_bomb(jpeg: bytes, count: int = 4_000_000) -> bytes:
    """``jpeg`` with ``count`` empty comment segments (4 bytes each) before its frame header."""
    assert jpeg.startswith(SOI)
    return SOI + b"\xff\xfe\x00\x02" * count + jpeg[2:]


def empty_parts_form(count: int = 1_000_000, boundary: bytes = b"b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body of ``count`` empty parts without headers, and its content type."""
    first = b"--" + boundary + b"\r\n\r\n"
    body = first + (b"\r\n" + first) * (count - 1) + b"\r\n--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def truncated_jpeg(jpeg: bytes, keep: float = 0.6) -> bytes:
    """The first ``keep`` of ``jpeg``'s bytes with an end marker appended: it looks complete."""
    return jpeg[: int(len(jpeg) * keep)] + EOI


def self_signed(folder: Path, passphrase: str | None = None) -> tuple[Path, Path]:
    """A localhost certificate and its key (encrypted with AES-256 under ``passphrase`` if given)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost", "-nodes"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    if passphrase is not None:
        encrypted = folder / "encrypted-key.pem"
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", f"pass:{passphrase}",
             "-out", str(encrypted)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        key = encrypted
    return cert, key

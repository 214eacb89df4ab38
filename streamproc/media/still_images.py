"""Still images from bytes: the format from its magic bytes, the size from its header (read before
any pixel is decoded, so a decompression bomb is refused cheaply), then decoding with OpenCV, which
applies the EXIF orientation. Used by photo sources and by the HTTP detection API."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

FORMATS = ("jpeg", "png", "webp", "bmp")
# every SOFn marker except DHT (C4), JPG (C8) and DAC (CC), which share the range
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_SOS = b"\xff\xda"
# segments read before the frame header: a real photo has a dozen (APPn, DQT, DHT, COM); a file of
# millions of tiny ones would keep the walk busy for seconds
MAX_JPEG_SEGMENTS = 1000


class ImageError(ValueError):
    """Bytes that are not a usable image; ``kind`` says why (for the HTTP status)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "format" (not an image we read), "damaged", "too_big", "costly"


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    # JPEG: start-of-scan markers in the data (an upper bound: an EXIF thumbnail's count too). A
    # progressive decoder walks every block of the image once per scan, so scans cost like pixels.
    scans: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff_format(data: bytes) -> str | None:
    """jpeg, png, webp or bmp from the first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    return None


def read_header(data: bytes) -> ImageHeader:
    """Format and size without decoding; ImageError when it is not an image or the header is cut."""
    kind = sniff_format(data)
    if kind is None:
        raise ImageError("format", "not a JPEG, PNG, WebP or BMP image")
    try:
        width, height = _SIZE_READERS[kind](data)
    except (struct.error, IndexError):
        width = height = 0
    if width <= 0 or height <= 0:
        raise ImageError("damaged", f"the {kind.upper()} header is truncated or damaged")
    scans = data.count(_JPEG_SOS) if kind == "jpeg" else 1  # counted in C: cheap for 20 MB
    return ImageHeader(kind, width, height, scans)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if at + 9 >= len(data):
            return 0, 0
        if data[at] != 0xFF:
            return 0, 0
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, at + 5)
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return 0, 0
        (length,) = struct.unpack_from(">H", data, at + 2)
        at += 2 + length
    raise ImageError("costly", f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments before its frame header")


def _png_size(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        return 0, 0
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return 0, 0


def _bmp_size(data: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return width, abs(height)  # negative height: rows stored top-down


_SIZE_READERS = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size, "bmp": _bmp_size}


def _complete(header: ImageHeader, data: bytes) -> bool:
    """Whether the data reaches its format's end: decoders fill a cut JPEG with grey silently."""
    if header.format == "jpeg":
        return b"\xff\xd9" in data[-64:]
    if header.format == "png":
        return b"IEND" in data[-32:]
    if header.format == "webp":
        return struct.unpack_from("<I", data, 4)[0] + 8 <= len(data)
    return True  # BMP: OpenCV refuses a file shorter than its rows


def decode_image(data: bytes, max_pixels: int) -> tuple[np.ndarray, ImageHeader]:
    """BGR uint8 pixels, EXIF orientation applied; ImageError when not an image, damaged or too big."""
    header = read_header(data)
    if header.pixels > max_pixels:
        raise ImageError(
            "too_big",
            f"the image is {header.width}x{header.height} ({header.pixels / 1e6:.1f} megapixels), "
            f"more than the limit of {max_pixels / 1e6:.1f}",
        )
    if not _complete(header, data):
        raise ImageError("damaged", f"the {header.format.upper()} data is truncated")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError("damaged", f"the {header.format.upper()} data cannot be decoded (damaged)")
    return bgr, header

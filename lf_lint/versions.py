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

from .records import Record

SUPPORTED_LLAMAFACTORY = ("0.9.2", "0.9.3", "0.9.4", "0.9.5", "0.9.6.dev0")
DEFAULT_LLAMAFACTORY = "0.9.5"  # the newest on PyPI: what `pip install llamafactory` gives
OLDEST_TRANSFORMERS = "4.45.0"
NEWEST_TRANSFORMERS = "5.8.1"

# LLaMA-Factory's git main, which its README installs (`git clone` + `pip install -e .`): not on PyPI, so modelled
# as one recorded commit (release -> (commit, date)). A newer main is modelled as that commit, with a note.
MAIN_COMMITS = {"0.9.6.dev0": ("ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30", "2026-08-18")}

# The newest transformers each LLaMA-Factory release allows (its Requires-Dist).
_NEWEST_TRANSFORMERS_FOR = {"0.9.2": "4.49.0", "0.9.3": "4.52.4", "0.9.4": "4.57.1", "0.9.5": "5.6.0",
                            "0.9.6.dev0": "5.8.0"}  # fmt: skip

# The transformers releases each LLaMA-Factory release starts with: ``extras/misc.py::check_dependencies`` runs
# ``check_version`` on them when hparams/parser.py is imported, and stops unless DISABLE_VERSION_CHECK is set.
TRANSFORMERS_CHECK = {
    "0.9.2": ">=4.41.2,<=4.49.0,!=4.46.0,!=4.46.1,!=4.46.2,!=4.46.3,!=4.47.0,!=4.47.1,!=4.48.0",
    "0.9.3": ">=4.45.0,<=4.52.4,!=4.46.0,!=4.46.1,!=4.46.2,!=4.46.3,!=4.47.0,!=4.47.1,!=4.48.0,!=4.52.0",
    "0.9.4": ">=4.51.0,<=4.57.1",
    "0.9.5": ">=4.55.0,<=5.6.0",
    "0.9.6.dev0": ">=4.55.0,<=5.8.0,!=4.57.0,!=5.6.0",
}


class VersionError(ValueError):
    """A version string lf-lint cannot read."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"4.57.1"`` -> ``(4, 57, 1)``; pre-release and local tails are ignored (``0.9.6.dev0`` -> ``(0, 9, 6)``)."""
    return _parse_version(str(text))


@lru_cache(maxsize=256)  # rules ask for the same few versions over and over (Target.lf, Target.tf)
def _parse_version(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if not match:
        raise VersionError(f"not a version number: {text!r}")
    parts = tuple(int(p) for p in match.group(1).split("."))
    return parts + (0,) * (3 - len(parts)) if len(parts) < 3 else parts


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


class Target(Record):
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
        main = MAIN_COMMITS.get(self.llamafactory)
        at = f" (main at {main[0][:9]}, {main[1]})" if main else ""
        return f"LLaMA-Factory {self.llamafactory}{at}, transformers {self.transformers}"


class Resolution(Record):
    """A target plus how it was chosen, for the 'versions modelled' line and notes."""

    target: Target
    source: str  # "option", "environment" or "default"
    notes: tuple[str, ...] = ()
    transformers_release: str | None = None  # the release asked for or installed, before clamping to a modelled one


def releases(first: str | None = None, last: str | None = None) -> tuple[str, ...]:
    """The supported LLaMA-Factory releases from ``first`` to ``last`` (inclusive; a feature added in ``first``
    stays in every newer release, main included, unless ``last`` says when it went)."""
    low = parse_version(first) if first else (0,)
    high = parse_version(last) if last else None
    return tuple(v for v in SUPPORTED_LLAMAFACTORY if low <= parse_version(v) and (high is None or parse_version(v) <= high))


def satisfies(version: str, specifier: str) -> bool:
    """``version`` against a comma-separated PEP 440 specifier of ``>=``, ``<=``, ``>``, ``<``, ``==`` and ``!=``
    clauses (``!=4.46.*`` excludes a series), as ``check_version`` applies it to final releases."""
    have = parse_version(version)
    for clause in specifier.split(","):
        clause = clause.strip()
        op = next(o for o in (">=", "<=", "==", "!=", ">", "<") if clause.startswith(o))
        text = clause[len(op) :].strip()
        if text.endswith(".*"):
            prefix = parse_version(text[:-2])[: text.count(".")]
            same = have[: len(prefix)] == prefix
            if (op == "!=" and same) or (op == "==" and not same):
                return False
            continue
        want = parse_version(text)
        ok = {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want, "==": have == want,
              "!=": have != want}[op]  # fmt: skip
        if not ok:
            return False
    return True


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


def _metadata_dirs():
    """(normalised project name, version text, folder) of every ``*.dist-info`` / ``*.egg-info`` on ``sys.path``,
    in import order: the version is the one in the folder's name, or empty."""
    import os
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if suffix in ("dist-info", "egg-info") and dot:
                project, _, rest = stem.partition("-")
                yield _normalise(project), rest.split("-")[0], os.path.join(entry or ".", name)


@lru_cache(maxsize=1)
def _installed_versions() -> dict[str, str]:
    """Versions of the installed distributions, from their ``*.dist-info`` / ``*.egg-info`` names.

    ``importlib.metadata`` would cost more than the whole lint; the wheel-standard directory
    name ``<name>-<version>.dist-info`` on ``sys.path`` carries the same information. The
    first entry on ``sys.path`` wins, as for imports.
    """
    found: dict[str, str] = {}
    for key, version, folder in _metadata_dirs():
        if key not in found:
            version = version or _pkg_info_version(folder)
            if version:
                found[key] = version
    return found


def installed_checkout_commit(distribution: str) -> str | None:
    """The git commit of an installed distribution that was installed from a checkout (``pip install -e .``,
    ``pip install git+...``), read from its ``direct_url.json`` and the checkout's ``.git`` without running git."""
    import json
    import os

    key = _normalise(distribution)
    folder = next((f for k, _, f in _metadata_dirs() if k == key and f.endswith(".dist-info")), None)
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, "direct_url.json"), encoding="utf-8") as handle:
            origin = json.load(handle)
    except (OSError, ValueError):
        return None
    commit = (origin.get("vcs_info") or {}).get("commit_id")
    url = str(origin.get("url", ""))
    return commit or (_git_head(url[len("file://") :]) if url.startswith("file://") else None)


def _git_head(checkout: str) -> str | None:
    """HEAD's commit of a git checkout (a worktree's ``.git`` file names its git directory)."""
    import os

    git = os.path.join(checkout, ".git")
    try:
        if os.path.isfile(git):
            with open(git, encoding="utf-8") as handle:
                git = handle.read().strip().removeprefix("gitdir:").strip()
        with open(os.path.join(git, "HEAD"), encoding="utf-8") as handle:
            head = handle.read().strip()
        if not head.startswith("ref:"):
            return head
        ref = head[4:].strip()
        for root in (git, os.path.join(git, "..", "..")):  # a worktree keeps its refs in the main git directory
            try:
                with open(os.path.join(root, ref), encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError:
                continue
    except OSError:
        return None
    return None


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
        lf_text = DEFAULT_LLAMAFACTORY
        sources.append("default")
    lf_model = nearest_llamafactory(lf_text)
    main = MAIN_COMMITS.get(lf_model)
    if main and "environment" in sources and lf_text == lf_model:
        commit = installed_checkout_commit("llamafactory")
        if commit and not main[0].startswith(commit):
            notes.append(f"the installed LLaMA-Factory main is at commit {commit[:9]}, lf-lint models main at "
                         f"{main[0][:9]} ({main[1]}): its rules and arithmetic are that commit's, its arguments "
                         "are read from the installed source")  # fmt: skip
    if lf_text.strip().lstrip("v") != lf_model and version_text(parse_version(lf_text)) != lf_model:
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
    return Resolution(Target(lf_model, tf_model), source, tuple(notes), version_text(parse_version(tf_text)))

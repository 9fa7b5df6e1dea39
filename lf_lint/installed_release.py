"""The arguments of an installed release newer than any lf-lint models, read from its source.

``versions.resolve`` models the newest supported release when the installed one is newer. Its rules
and step arithmetic are the best guess there, but its argument list is not: every argument the newer
release added would be an unknown key (LF101). So for such a release (and only then) its own
dataclasses are read from its installed source (source_fields.py) and laid over the modelled
FieldTable (schema.py): keys both know keep the modelled checks, keys only the source has are
accepted with the type it gives, and keys the source no longer has are refused, as LLaMA-Factory
refuses them. Reads are cached per (distribution, version, package folder) in lf-lint's cache
directory and trusted while every file read keeps its size and modification time.
"""

from __future__ import annotations

import json
import os
import re
import sys

from . import versions
from .versions import NEWEST_TRANSFORMERS, SUPPORTED_LLAMAFACTORY, Target, installed_version, parse_version

FORMAT = 1  # of the cache entries: bump when the reader changes what it records
_LABELS = {"llamafactory": "LLaMA-Factory", "transformers": "transformers"}
_SHOWN = 8  # names listed in the note


class InstalledArguments:
    """The arguments one installed distribution's source declares, standing in for those of ``modelled``.

    Hashed by identity: ``schema.field_table`` caches a table per instance, and one instance is made
    per installed (distribution, version, folder) and process.
    """

    def __init__(self, distribution: str, version: str, modelled: str, read):
        self.distribution = distribution
        self.version = version
        self.modelled = modelled  # the modelled release whose rules apply ("0.9.5", "5.6.0")
        self.read = read  # source_fields.SourceRead, in its JSON form (SourceRead.to_json(), as cached)
        self.owner = distribution  # fields.json's owner of the fields this replaces

    @property
    def complete(self) -> bool:
        return self.read["complete"]

    @property
    def readable(self) -> bool:
        return bool(self.read["groups"])

    @property
    def problems(self) -> list[str]:
        return self.read["problems"]

    def rows(
        self, command: str, groups: tuple, arguments: str = "default", known_groups: frozenset = frozenset()
    ) -> dict:
        """The fields the source gives a FieldTable of ``command`` made of ``groups`` (their ``owner`` says whose).

        A group the installed hparams/parser.py has the command parse but lf-lint knows nowhere (a release
        newer than lf-lint) is taken too. transformers' fields are Seq2SeqTrainingArguments', without its own
        under USE_MCA (``arguments == "mca"``: mcore_adapter builds on TrainingArguments).
        """
        if self.distribution == "transformers":
            if command != "train":
                return {}
            rows = self._fields(["TrainingArguments"])
            if arguments == "mca":
                rows = {n: r for n, r in rows.items() if not r["defined_in"].endswith(".Seq2SeqTrainingArguments")}
        else:
            extra = [g for g in self.read["commands"].get(command, []) if g not in known_groups and g not in groups]
            rows = self._fields([*groups, *extra])
        return rows

    def _fields(self, groups) -> dict[str, dict]:
        """The fields of some groups, the first group's definition winning (as HfArgumentParser sees them)."""
        found: dict = {}
        for group in groups:
            for name, row in self.read["groups"].get(group, {}).items():
                found.setdefault(name, row)
        return found

    def label(self) -> str:
        return f"{_LABELS[self.distribution]} {self.version}"

    def modelled_label(self) -> str:
        if self.distribution == "transformers":
            return ".".join(self.modelled.split(".")[:2])
        return self.modelled

    def note(self, table) -> str:
        """What the output says about it; ``table`` is the train FieldTable laid over with it."""
        rules = "rules" if self.distribution == "llamafactory" else "rules and step arithmetic"
        tail = f"{rules} are {_LABELS[self.distribution]} {self.modelled_label()}'s."
        head = f"{self.label()} is newer than any modelled release"
        if not self.readable:
            problem = self.problems[0] if self.problems else "no argument classes found"
            unread = f"its installed source could not be read ({problem})"
            return f"{head}, and {unread}: the arguments it added are reported as unknown; {tail}"
        added = sorted(n for n in table.added.get(self.owner, ()) if table.fields[n].init)
        parts = [f"{len(added)} not in {self.modelled_label()}{_names(added)}"]
        if self.complete:
            gone = sorted(n for n, f in table.gone.items() if f.owner == self.owner and f.init)
            if gone:
                parts.append(f"{len(gone)} of {self.modelled_label()}'s gone{_names(gone)}")
        else:
            problems = "; ".join(self.problems[:2])
            parts.append(f"read in part: {problems}; so {self.modelled_label()}'s arguments are all still accepted")
        return f"{head}: its arguments are read from its installed source ({'; '.join(parts)}); {tail}"


def _names(names: list[str]) -> str:
    if not names:
        return ""
    return ": " + ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


# ---------------------------------------------------------------- when


def installed_arguments(
    target: Target, llamafactory: str | None = None, transformers: str | None = None, use_cache: bool = True
) -> tuple[InstalledArguments, ...]:
    """The installed releases newer than the modelled ones whose arguments stand in for the target's.

    ``llamafactory``/``transformers`` are the versions asked for by option: a release other than the
    installed one is not read. Costs nothing when the installed releases are modelled ones.
    """
    found = []
    for distribution, option, modelled in (
        ("llamafactory", llamafactory, target.llamafactory),
        ("transformers", transformers, target.transformers),
    ):
        version = _newer_installed(distribution, option)
        if version is not None and _stands_in(distribution, modelled):
            found.append(_arguments(distribution, version, modelled, use_cache))
    return tuple(found)


def _newer_installed(distribution: str, option: str | None) -> str | None:
    if option is not None and not _beyond_modelled(distribution, option):
        return None  # the common case with an explicit version: nothing to look up
    installed = installed_version(distribution)
    if installed is None or not _beyond_modelled(distribution, installed):
        return None
    if option is not None and parse_version(option) != parse_version(installed):
        return None  # another release is asked for; the installed source does not describe it
    return installed


def _stands_in(distribution: str, modelled: str) -> bool:
    """Only the newest modelled release stands in for a newer one."""
    if distribution == "llamafactory":
        return modelled == SUPPORTED_LLAMAFACTORY[-1]
    return parse_version(modelled)[:2] == parse_version(NEWEST_TRANSFORMERS)[:2]


def _beyond_modelled(distribution: str, version: str) -> bool:
    try:
        if distribution == "transformers":  # fields.json models each minor (patches add no arguments)
            return parse_version(version)[:2] > parse_version(NEWEST_TRANSFORMERS)[:2]
        newest = SUPPORTED_LLAMAFACTORY[-1]
        if parse_version(version) < parse_version(newest):
            return False  # the usual case, decided without the pre-release tails
        if _release_key(version) > _release_key(newest):
            return True
        return _release_key(version) == _release_key(newest) and _newer_commit(distribution, newest)
    except versions.VersionError:
        return False


def _release_key(version: str) -> tuple:
    """Orders 0.9.6.dev0 < 0.9.6 < 0.9.6.post1 (parse_version drops the tails)."""
    tail = re.sub(r"^\s*v?\d+(\.\d+)*", "", version).lower()
    return parse_version(version), not re.match(r"[.\-_]?(dev|a|alpha|b|beta|c|rc|pre|preview)\d*", tail)


def _newer_commit(distribution: str, modelled_release: str) -> bool:
    """A development release lf-lint models (LLaMA-Factory's main, ``versions.MAIN_COMMITS``) installed from
    another commit (``versions.installed_checkout_commit``: a git install or an editable checkout). An unknown
    installed commit is taken to be the modelled one, as ``versions.resolve`` takes it."""
    modelled = getattr(versions, "MAIN_COMMITS", {}).get(modelled_release)
    find_commit = getattr(versions, "installed_checkout_commit", None)
    if distribution != "llamafactory" or not modelled or find_commit is None:
        return False
    installed = find_commit(distribution)
    return bool(installed) and not modelled[0].startswith(installed) and not installed.startswith(modelled[0])


# ---------------------------------------------------------------- reading and caching

_MEMO: dict[tuple, InstalledArguments] = {}


def _arguments(distribution: str, version: str, modelled: str, use_cache: bool) -> InstalledArguments:
    from .package_dirs import find_package_dir

    roots = [entry or "." for entry in sys.path]
    folder = find_package_dir(distribution, roots)
    key = (distribution, version, modelled, str(folder), use_cache)
    if key not in _MEMO:
        read = _cached_read(distribution, version, str(folder)) if use_cache else None
        if read is None:
            read = _read(distribution, roots)
            if use_cache:
                _store(distribution, version, str(folder), read)
        _MEMO[key] = InstalledArguments(distribution, version, modelled, read)
    return _MEMO[key]


def _read(distribution: str, roots: list[str]) -> dict:
    from . import source_fields

    reader = source_fields.read_llamafactory if distribution == "llamafactory" else source_fields.read_transformers
    try:
        read = reader(roots).to_json()
    except Exception as exc:  # a reader bug must not stop the lint: the note says what happened
        if os.environ.get("LF_LINT_DEBUG"):
            raise
        problem = f"lf-lint failed to read it: {type(exc).__name__}: {exc}"
        return {"distribution": distribution, "groups": {}, "commands": {}, "complete": False,
                "problems": [problem], "files": {}}  # fmt: skip
    # Another distribution's fields (transformers' in LLaMA-Factory's TrainingArguments) only need their owner.
    read["groups"] = {group: {name: row if row["owner"] == distribution else {"owner": row["owner"]}
                              for name, row in rows.items()} for group, rows in read["groups"].items()}  # fmt: skip
    return read


def _cache_file(distribution: str, version: str, folder: str):
    import zlib  # hashlib would cost more than the rest of a cache hit; the entry is checked anyway

    from .cache_paths import cache_dir

    digest = zlib.crc32(folder.encode("utf-8", "surrogateescape"))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version)
    return cache_dir() / "source-fields" / f"{distribution}-{safe}-{digest:08x}.json"


def _cached_read(distribution: str, version: str, folder: str) -> dict | None:
    try:
        data = json.loads(_cache_file(distribution, version, folder).read_text(encoding="utf-8"))
        read = data["read"]
        if data.get("format") != FORMAT or data.get("folder") != folder:
            return None
        for path, (mtime_ns, size) in read["files"].items():
            stat = os.stat(path)
            if (stat.st_mtime_ns, stat.st_size) != (mtime_ns, size):
                return None
        return read if _well_formed(read, distribution) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, stale or damaged: read the source again


_ROW_KEYS = {"group": str, "type": str, "defined_in": str, "init": bool,
             "json_types": (list, type(None)), "choices": (list, type(None))}  # fmt: skip


def _well_formed(read: dict, distribution: str) -> bool:
    """A cache entry as _read writes it (a damaged one is read again rather than trusted)."""
    shapes = (("groups", dict), ("commands", dict), ("complete", bool), ("problems", list))
    if not all(isinstance(read.get(key), kind) for key, kind in shapes):
        return False
    for rows in read["groups"].values():
        for row in rows.values() if isinstance(rows, dict) else [None]:
            if not isinstance(row, dict) or not isinstance(row.get("owner"), str):
                return False
            if row["owner"] == distribution and not all(isinstance(row.get(k), t) for k, t in _ROW_KEYS.items()):
                return False
    return all(isinstance(groups, list) for groups in read["commands"].values())


def _store(distribution: str, version: str, folder: str, read) -> None:
    import tempfile

    path = _cache_file(distribution, version, folder)
    try:
        text = json.dumps({"format": FORMAT, "folder": folder, "read": read})
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(handle.name, path)
    except (OSError, TypeError, ValueError):
        pass  # a read-only home is no reason to fail a lint

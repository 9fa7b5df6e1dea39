"""The JSON tables shipped in ``lf_lint/data``.

Read from the package folder directly: ``importlib.resources`` would import tempfile, shutil and the
compression modules, which cost more than a schema-only lint of a config.
"""

from __future__ import annotations

import json
import os

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def read_json(name: str):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)

"""Where lf-lint keeps what it caches between runs (dataset scans, arguments read from installed source).

Outside any config repository: ``$LF_LINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lf-lint``, else
``~/.cache/lf-lint``. ``--no-cache`` bypasses it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("LF_LINT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lf-lint"

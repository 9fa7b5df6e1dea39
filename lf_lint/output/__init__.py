"""One renderer per output format; each turns lint results into text and computes nothing.

``RENDERERS[fmt]`` imports only the renderer asked for.
"""

from __future__ import annotations

_MODULES = {"full": "full", "concise": "concise", "json": "json_format", "github": "github", "sarif": "sarif"}


class _Renderers(dict):
    def __missing__(self, fmt: str):
        render = __import__(f"{__name__}.{_MODULES[fmt]}", fromlist=["render"]).render
        self[fmt] = render
        return render


RENDERERS = _Renderers()

__all__ = ["RENDERERS"]

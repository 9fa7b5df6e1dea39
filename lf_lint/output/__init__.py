"""One renderer per output format; each turns lint results into text and computes nothing."""

from __future__ import annotations

from . import concise, full, github, json_format, sarif

RENDERERS = {
    "full": full.render,
    "concise": concise.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
}

__all__ = ["RENDERERS"]

"""quick_args.py reads the check command's plain command lines to exactly what argparse gives, and leaves the rest
to argparse."""

from __future__ import annotations

import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from lf_lint.cli import _add_check_options, _check_parser
from lf_lint.quick_args import QuickParser


def _argparse(argv: list[str]):
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(_check_parser().parse_args(argv))
    except SystemExit:
        return "exit"


def _agree(argv: list[str]) -> bool:
    quick = QuickParser(_add_check_options).parse(argv)
    if quick is None:
        return False
    assert vars(quick) == _argparse(argv), argv
    return True


def test_plain_command_lines_are_read_quickly():
    for argv in (
        ["cfg.yaml"],
        ["--isolated", "--no-datasets", "cfg.yaml"],
        ["a.yaml", "b.yaml", "--format", "json", "--set", "lr=1", "--set=epochs=2", "--num-gpus", "8"],
        ["--gpu", "A100-80G", "--gpu-memory=80", "--params", "7e9", "--workdir", "w", "cfg.yaml", "--explain"],
        ["--select", "LF1", "--ignore", "LF2,LF3", "--env", "USE_MCA=1", "--num-examples", "a=3", "cfg.yaml"],
        [],
    ):
        assert _agree(argv), argv


def test_everything_else_is_left_to_argparse():
    parser = QuickParser(_add_check_options)
    for argv in (["--help"], ["-h"], ["--version"], ["--form", "json", "c"], ["a", "--isolated", "b"], ["--", "c"],
                 ["--num-gpus", "x", "c"], ["--num-gpus", "-1", "c"], ["--format", "xml", "c"], ["--isolated=1", "c"],
                 ["-"], [""], ["--gpu"], ["--bogus", "c"]):  # fmt: skip
        assert parser.parse(argv) is None, argv


_TOKENS = st.sampled_from([
    "cfg.yaml", "b.yaml", "--isolated", "--no-datasets", "--explain", "--format", "json", "full", "xml",
    "--format=concise", "--set", "lr=1", "--set=a=b", "--num-gpus", "8", "-1", "x", "--num-gpus=2", "--gpu-memory",
    "40.5", "--workdir", "w", "--select", "LF1", "--fail-on", "warning", "--command", "export", "--env", "A=1",
    "--no-cache", "--online", "--config", "p.toml", "--", "-", "--form", "--isol", "--help", "",
])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=7))
def test_generated_command_lines_read_alike(argv):
    _agree(argv)

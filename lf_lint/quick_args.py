"""Command lines read without building an argparse parser.

argparse formats every option's help while the parser is built and looks up translations through gettext and
locale: a few milliseconds, which is a good part of a schema-only lint. ``QuickParser`` takes the same
``add_argument`` calls, reads the plain forms (exact option names, ``--opt value`` and ``--opt=value``, flags,
appended options, one run of file names) to the same values, and returns None for anything else (``--help``,
``--version``, abbreviations, short options, ``--``, values starting with ``-``, bad values, ...), which the
caller hands to argparse: its messages and exit codes stay argparse's.
"""

from __future__ import annotations

from types import SimpleNamespace

_ACTIONS = ("store", "store_true", "append")


class QuickParser:
    def __init__(self, add_options):
        """``add_options(parser)``: the function that adds the options to an argparse parser."""
        self.options: dict[str, dict] = {}
        self.defaults: dict[str, object] = {}
        self.positional: str | None = None
        add_options(self)

    def add_argument(self, *names: str, **kwargs) -> None:
        if not names[0].startswith("-"):  # the one positional, nargs="*"
            self.positional = names[0]
            self.defaults[names[0]] = []
            return
        action = kwargs.get("action", "store")
        dest = kwargs.get("dest") or next((n for n in names if n.startswith("--")), names[0]).lstrip("-").replace(
            "-", "_"
        )
        if action in _ACTIONS:  # --version and --help set nothing
            self.defaults[dest] = False if action == "store_true" else kwargs.get("default")
        for name in names:
            self.options[name] = {**kwargs, "action": action, "dest": dest}

    def parse(self, argv: list[str]) -> SimpleNamespace | None:
        """The values argparse would give, or None where argparse has to decide."""
        values = {dest: list(value) if isinstance(value, list) else value for dest, value in self.defaults.items()}
        runs, in_run = 0, False
        index = 0
        while index < len(argv):
            token = argv[index]
            index += 1
            if token and not token.startswith("-"):
                runs += not in_run
                if runs > 1 or self.positional is None:
                    return None  # argparse stops on file names after options that follow file names
                in_run = True
                values[self.positional].append(token)
                continue
            in_run = False
            name, equals, value = token.partition("=")
            option = self.options.get(name)
            if option is None or option["action"] not in _ACTIONS:
                return None
            if option["action"] == "store_true":
                if equals:
                    return None
                values[option["dest"]] = True
                continue
            if not equals:
                if index == len(argv) or argv[index].startswith("-"):
                    return None
                value = argv[index]
                index += 1
            try:
                value = option.get("type", str)(value)
            except (TypeError, ValueError):
                return None
            if option.get("choices") is not None and value not in option["choices"]:
                return None
            dest = option["dest"]
            values[dest] = [*(values[dest] or []), value] if option["action"] == "append" else value
        return SimpleNamespace(**values)

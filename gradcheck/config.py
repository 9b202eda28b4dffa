"""Project configuration: `[tool.gradcheck]` in pyproject.toml, and GRADCHECK_* environment variables.

Found like ruff finds its own: from the first path given (its folder; the current folder for `-`),
upward, the nearest pyproject.toml that has a `[tool.gradcheck]` table. Every option of a command can be
set there by its long name (`rtol`, `max-memory`, `settings-from`, `format`, `jobs`, `strict`, `exclude`,
`extend-exclude`, ...; `_` may stand for `-`). Precedence, highest first:

    command line  >  GRADCHECK_<OPTION> (environment)  >  [tool.gradcheck]  >  the spec's `check:`  >  defaults

except for the tolerances and step (`rtol`, `atol`, `eps`): a spec's own `check:` value beats the
configuration's, which is only the project's default for specs that do not say (a spec that needs
its own tolerance keeps it). `--settings-from cli` ignores `check:`, and then the configuration decides.

Reading TOML needs `tomllib` (Python 3.11+); on 3.10 a pyproject.toml with a `[tool.gradcheck]` table
is a usage error saying so (no new runtime dependency), and one without it is ignored.
"""

from __future__ import annotations

import os

import click

from .suggest import did_you_mean

FILE = "pyproject.toml"
TOLERANCES = ("rtol", "atol", "eps")  # a spec's own check: beats the configuration for these
ENV_PREFIX = "GRADCHECK_"


def find(start: str) -> tuple[str | None, dict]:
    """(the pyproject.toml used, its [tool.gradcheck] table), searching upward from `start`; (None, {}) if none."""
    folder = os.path.abspath(start if os.path.isdir(start) else (os.path.dirname(start) or os.curdir))
    while True:
        candidate = os.path.join(folder, FILE)
        if os.path.isfile(candidate):
            table = read(candidate)
            if table is not None:
                return candidate, table
        parent = os.path.dirname(folder)
        if parent == folder:
            return None, {}
        folder = parent


def read(path: str) -> dict | None:
    """The [tool.gradcheck] table of one pyproject.toml, or None when it has none."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    if b"gradcheck" not in raw:  # the common case: another project's file, not parsed at all
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        if b"[tool.gradcheck" in raw:
            raise click.UsageError(f"{path}: [tool.gradcheck] needs Python 3.11 or later to be read (tomllib); "
                                   f"use command-line options or GRADCHECK_* variables on 3.10") from None
        return None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("gradcheck") if isinstance(data.get("tool"), dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise click.UsageError(f"{path}: tool.gradcheck must be a table")
    return table


def option_names(command: click.Command) -> dict[str, click.Option]:
    """A command's options by long name, also with `_` for `-`: the keys a configuration may use."""
    names = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts + param.secondary_opts:
                if opt.startswith("--"):
                    names[opt[2:]] = names[opt[2:].replace("-", "_")] = param
    return names


def env_var(param: click.Option) -> str:
    """GRADCHECK_ and the option's long name: GRADCHECK_RTOL, GRADCHECK_MAX_MEMORY, GRADCHECK_FORMAT."""
    long = next(opt for opt in param.opts if opt.startswith("--"))
    return ENV_PREFIX + long[2:].upper().replace("-", "_")


class ConfiguredCommand(click.Command):
    """A command whose options also come from GRADCHECK_* variables and [tool.gradcheck]."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, click.Option) and param.envvar is None and any(o.startswith("--") for o in param.opts):
                param.envvar = env_var(param)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        paths = first_paths(self, ctx, args)
        path, table = find(paths[0] if paths and paths[0] != "-" else os.curdir)
        ctx.meta["gradcheck.config"] = path
        ctx.default_map, ctx.meta["gradcheck.project"] = self.defaults(ctx, path, table)
        ctx.meta["gradcheck.extend_exclude"] = tuple(table.get("extend-exclude", table.get("extend_exclude", ())))
        return super().parse_args(ctx, args)

    def defaults(self, ctx: click.Context, path: str | None, table: dict) -> tuple[dict, dict]:
        """(click's default_map, the tolerances for RunOptions.project) from one configuration table."""
        mine = option_names(self)
        everyone = {name for command in getattr(ctx.parent.command, "commands", {}).values()
                    for name in option_names(command)} if ctx.parent else set(mine)
        default_map, project = {}, {}
        for key, value in table.items():
            if key in ("extend-exclude", "extend_exclude"):
                value = [value] if isinstance(value, str) else value
                if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                    raise click.UsageError(f"{path}: [tool.gradcheck] {key} must be a list of globs")
                continue
            if key not in mine:
                if key in everyone:
                    continue  # an option of another command (rtol, read by run, is no concern of validate)
                hint = did_you_mean(key, sorted(everyone)) or ""
                raise click.UsageError(f"{path}: unknown key \"{key}\" in [tool.gradcheck]{hint}")
            param = mine[key]
            try:
                converted = param.type_cast_value(ctx, value)
            except click.BadParameter as exc:
                raise click.UsageError(f"{path}: [tool.gradcheck] {key}: {exc.message}") from None
            if param.name in TOLERANCES:
                project[param.name] = converted
            else:
                default_map[param.name] = value
        return default_map, project


def first_paths(command: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """The path arguments, read by a parse that neither fails nor runs callbacks (the real parse follows)."""
    try:
        parser = command.make_parser(ctx)
        opts, _, _ = parser.parse_args(args=list(args))
    except click.UsageError:
        return []
    found = opts.get("paths") or opts.get("spec")
    if isinstance(found, str):
        return [found]
    return list(found) if isinstance(found, (list, tuple)) else []  # click marks "not given" with a sentinel

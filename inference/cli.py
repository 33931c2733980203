"""The backend flags of every entry point (app, console chat, evaluation), built from the registry.

    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args()
    kind, options = backend_options(parser, args)      # flags > TUTOR_* variables > defaults
    backend = load_backend(kind, **options)

Each backend option becomes one flag (``--base-model``) and one environment variable
(``TUTOR_BASE_MODEL``); options that several backends share are one flag. A bad value exits through
``parser.error`` naming both the flag and the variable; a flag that the chosen backend does not take
is an error too, rather than silently ignored.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from typing import Any

from inference import registry

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class OptionInfo(typing.NamedTuple):
    name: str                 # the options field
    flag: str                 # --base-model
    env: str                  # TUTOR_BASE_MODEL
    kind: type                # str, int, float or bool
    field: Any
    backends: tuple[str, ...]


def _base_type(annotation: Any) -> type:
    """``int | None`` -> int; ``str`` -> str."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in args if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return type(args[0])
    return annotation


def option_table(sources: list[tuple[str, type]] | None = None) -> dict[str, OptionInfo]:
    """Options by field name from ``(owner, dataclass)`` pairs (default: every registered backend),
    merged by name across owners; the first declaration gives the help text."""
    if sources is None:
        sources = [(s.name, s.options) for s in registry.specs().values()]
    table: dict[str, OptionInfo] = {}
    for owner, options_type in sources:
        hints = typing.get_type_hints(options_type)
        for name, f in registry.option_fields(options_type).items():
            flag = f.metadata.get("flag")
            if flag == "":
                continue  # Python-only option
            if name in table:
                table[name] = table[name]._replace(backends=(*table[name].backends, owner))
                continue
            flag = flag or "--" + name.replace("_", "-")
            env = "TUTOR_" + flag.removeprefix("--").replace("-", "_").upper()
            table[name] = OptionInfo(name, flag, env, _base_type(hints[name]), f, (owner,))
    return table


def add_options(group: Any, table: dict[str, OptionInfo], aliases: dict[str, list[str]] | None = None,
                defaults: dict[str, Any] | None = None, owners: int | None = None) -> None:
    """One flag per option (default None, so that "given" is known), help showing its variable."""
    for info in table.values():
        default = (defaults or {}).get(info.name, registry.default_of(info.field))
        shown = "" if default in (None, False) or info.field.metadata.get("secret") else f"; default: {default}"
        where = "" if owners is None or len(info.backends) == owners else f" ({', '.join(info.backends)})"
        text = f"{info.field.metadata['help']}{where} [{info.env}{shown}]".replace("%", "%%")
        names = [info.flag, *(aliases or {}).get(info.name, [])]
        if info.kind is bool:
            group.add_argument(*names, dest=info.name, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        else:
            choices = info.field.metadata.get("choices")
            metavar = "{" + ",".join(choices) + "}" if choices else info.name.split("_")[-1].upper()
            group.add_argument(*names, dest=info.name, default=None, metavar=metavar, help=text)


def add_backend_arguments(parser: argparse.ArgumentParser, aliases: dict[str, list[str]] | None = None,
                          defaults: dict[str, Any] | None = None) -> None:
    """Add ``--backend`` and every backend option flag.

    ``aliases`` adds extra flag names for an option (evaluation's ``--model`` for ``--base-model``);
    ``defaults`` overrides an option's default for this entry point.
    """
    group = parser.add_argument_group(
        "model and backend", "Every flag here is also an environment variable (in brackets); flags win.")
    kinds = ", ".join(registry.names())
    summaries = "; ".join(f"{s.name}: {s.summary}" for s in registry.specs().values())
    group.add_argument("--backend", default=None,
                       help=f"one of {kinds} [TUTOR_BACKEND; default: auto]. {summaries}")
    add_options(group, option_table(), aliases, defaults, owners=len(registry.specs()))


def _convert(parser: argparse.ArgumentParser, info: OptionInfo, raw: Any, source: str) -> Any:
    where = f"{info.flag} (or {info.env})"
    meta = info.field.metadata
    if info.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in _TRUE + _FALSE:
            parser.error(f"{where} must be 1/true/yes or 0/false/no, got {raw!r} from {source}")
        return text in _TRUE
    text = str(raw).strip()
    if info.kind is int or info.kind is float:
        try:
            value = info.kind(text)
        except ValueError:
            value = None
        low, high = meta.get("low"), meta.get("high")
        bad = value is None or (isinstance(value, float) and not math.isfinite(value)) \
            or (low is not None and value < low) or (high is not None and value > high)
        if bad:
            kind = "a whole number" if info.kind is int else "a number"
            span = f" from {low} to {high}" if low is not None and high is not None else ""
            parser.error(f"{where} must be {kind}{span}, got {raw!r} from {source}")
        return value
    choices = meta.get("choices")
    if choices and text not in choices:
        parser.error(f"{where} must be one of {', '.join(choices)}, got {raw!r} from {source}")
    return text


def given_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  table: dict[str, OptionInfo] | None = None) -> dict[str, Any]:
    """The options the user set, converted and checked: flags first, then ``TUTOR_*`` variables."""
    given: dict[str, Any] = {}
    for name, info in (option_table() if table is None else table).items():
        raw, source = getattr(args, name, None), info.flag
        if raw is None:
            raw, source = registry.environment_value(info.env.removeprefix("TUTOR_")), info.env
        if raw is not None:
            given[name] = _convert(parser, info, raw, source)
    return given


def read_options(parser: argparse.ArgumentParser, args: argparse.Namespace, options_type: type) -> Any:
    """An instance of ``options_type`` (a dataclass of ``option()`` fields) from flags, variables, defaults."""
    table = option_table([("app", options_type)])
    return options_type(**given_options(parser, args, table))


def backend_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    defaults: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The backend to load and the options to load it with; exits through ``parser.error`` on bad input."""
    kind = args.backend or registry.environment_value("BACKEND") or registry.AUTO
    if kind not in registry.names():
        source = "--backend" if args.backend else "TUTOR_BACKEND"
        parser.error(f"--backend (or TUTOR_BACKEND) must be one of {', '.join(registry.names())}, "
                     f"got {kind!r} from {source}")
    given = given_options(parser, args)
    options = {**{k: v for k, v in (defaults or {}).items() if k not in given}, **given}
    if kind == registry.AUTO:
        return kind, options
    table = option_table()
    accepted = registry.option_fields(registry.spec(kind).options)
    for name in given:
        if name not in accepted:
            parser.error(f"{table[name].flag} does not apply to --backend {kind}: it is an option of "
                         f"{', '.join(table[name].backends)}")
    return kind, {k: v for k, v in options.items() if k in accepted}

"""Command line and YAML recipes -> a run's config (``TrainConfig``, ``DPOTrainConfig``): defaults < recipe < flags.

YAML values are coerced by the field's type, so ``learning_rate: 2e-4`` (a string to PyYAML) works, and a
wrong value names the recipe, the key and what was expected. Every function takes the config class, so
``sft`` and ``dpo`` parse the same way; ``--help`` lists the flags by settings group (model, LoRA, data,
the method's own, training).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

from training.config import DPOTrainConfig, Settings, TrainConfig
from training.errors import TrainingError, fail

COMMANDS = {TrainConfig: "python -m training sft", DPOTrainConfig: "python -m training dpo"}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _field_types(cls: type[Settings] = TrainConfig) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _coerce_scalar(tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        number = _number(value, "expected a whole number")
        if not float(number).is_integer():
            raise ValueError("expected a whole number")
        return int(number)
    if tp is float:
        return float(_number(value, "expected a number"))
    if typing.get_origin(tp) is typing.Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"expected one of {', '.join(map(str, typing.get_args(tp)))}")
        return value
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ValueError("expected a single value")
        return str(value)
    return value


def _number(value: Any, expected: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(expected)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)  # PyYAML leaves 2e-4 as a string
            except ValueError:
                raise ValueError(expected) from None
    return value


def coerce_value(name: str, value: Any, cls: type[Settings] = TrainConfig) -> Any:
    """``value`` converted to the type of ``cls.<name>`` (ValueError says what was expected)."""
    tp, optional = _unwrap_optional(_field_types(cls)[name])
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("null", "none", "")):
        if optional:
            return None
        raise ValueError("a value is required")
    if typing.get_origin(tp) is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError("expected a list")
        return [_coerce_scalar(typing.get_args(tp)[0], item.strip() if isinstance(item, str) else item)
                for item in items]
    return _coerce_scalar(tp, value)


def _other_command(key: str, cls: type[Settings]) -> str | None:
    """The command whose settings include ``key`` when ``cls``'s do not (``beta`` given to sft)."""
    for other, command in COMMANDS.items():
        if other is not cls and key in {f.name for f in dataclasses.fields(other)}:
            return command
    return None


def load_recipe(path: str, cls: type[Settings] = TrainConfig) -> dict[str, Any]:
    """Read a YAML recipe into typed values; unknown keys and bad values are errors naming the key."""
    import yaml

    recipe = Path(path)
    if not recipe.is_file():
        raise TrainingError(f"recipe {path!r} not found: pass an existing YAML file to --config (see recipes/)")
    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrainingError(f"recipe {path!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise TrainingError(f"recipe {path!r} is not UTF-8 text: pass a YAML file of setting: value lines") from None
    except RecursionError:
        raise TrainingError(f"recipe {path!r} nests deeper than Python can read: a recipe is a flat mapping of "
                            "setting: value") from None
    if not isinstance(data, dict):
        raise TrainingError(f"recipe {path!r} must be a mapping of setting: value")
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            other = None if close else _other_command(str(key), cls)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (it is a setting of {other})" if other else ""
            raise TrainingError(f"recipe {path!r}: unknown setting {key!r}{hint}; see {COMMANDS[cls]} --help")
        try:
            values[key] = coerce_value(key, value, cls)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"recipe {path!r}: {key}: {exc}, got {value!r}") from None
    return values


DESCRIPTIONS = {TrainConfig: "Supervised fine-tuning with LoRA / QLoRA.",
                DPOTrainConfig: "Preference training (DPO) of a LoRA / QLoRA adapter on chosen/rejected pairs."}


def _group_of(cls: type[Settings]) -> dict[str, str]:
    """Field name -> the title of the settings group that first declares it."""
    titles: dict[str, str] = {}
    for group in cls.groups():
        for name in getattr(group, "__annotations__", {}):
            titles.setdefault(name, group.GROUP)
    return titles


def build_parser(prog: str | None = None, cls: type[Settings] = TrainConfig) -> argparse.ArgumentParser:
    """One ``--<field>`` flag per field of ``cls``, in its settings group, help text from the field's metadata.

    Plain argparse rather than transformers' HfArgumentParser: parsing must not import transformers,
    because Unsloth has to be imported before it to patch it (training/backends.py).
    """
    parser = argparse.ArgumentParser(prog=prog or COMMANDS[cls], description=DESCRIPTIONS[cls],
                                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    parser.add_argument("--config", help="YAML recipe whose values replace the defaults (flags win)")
    hints = _field_types(cls)
    titles = _group_of(cls)
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        title = titles.get(f.name, "other")
        if title not in groups:
            groups[title] = parser.add_argument_group(f"{title} settings")
        tp, _ = _unwrap_optional(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = "required" if default == "" else f"default: {default}"
        kwargs: dict[str, Any] = {"help": f"{f.metadata.get('help', '')} ({shown})", "dest": f.name}
        if tp is bool:
            kwargs.update(nargs="?", const="true", metavar="true|false")
        elif "flag_alone" in f.metadata:  # the flag without a value means this
            kwargs.update(nargs="?", const=f.metadata["flag_alone"])
        elif typing.get_origin(tp) is list:
            kwargs.update(nargs="+", metavar="NAME")
        elif typing.get_origin(tp) is typing.Literal:
            kwargs.update(choices=typing.get_args(tp))
        groups[title].add_argument(f"--{f.name}", **kwargs)
    return parser


def parse_args(cls: type[Settings], argv: list[str], prog: str | None = None) -> Any:
    """Flags (and an optional ``--config`` recipe) -> a validated config of class ``cls``."""
    prog = prog or COMMANDS[cls]
    parser = build_parser(prog, cls)
    parser.error = lambda message: fail(f"{message} (see {prog} --help)")  # type: ignore[method-assign]
    namespace, remaining = parser.parse_known_args(argv)
    if remaining:
        raise TrainingError(f"unknown argument {remaining[0]!r}{_suggest(remaining[0], cls)} (see {prog} --help)")
    flags = vars(namespace)
    values = load_recipe(flags.pop("config"), cls) if flags.get("config") else {}
    flags.pop("config", None)
    for name, raw in flags.items():
        try:
            values[name] = coerce_value(name, raw, cls)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"--{name}: {exc}, got {raw!r}") from None
    return cls(**values)


def parse_sft_args(argv: list[str], prog: str = "python -m training sft") -> TrainConfig:
    """Flags (and an optional ``--config`` recipe) -> a validated ``TrainConfig``."""
    return parse_args(TrainConfig, argv, prog)


def parse_dpo_args(argv: list[str], prog: str = "python -m training dpo") -> DPOTrainConfig:
    """Flags (and an optional ``--config`` recipe) -> a validated ``DPOTrainConfig``."""
    return parse_args(DPOTrainConfig, argv, prog)


def _suggest(flag: str, cls: type[Settings] = TrainConfig) -> str:
    name = flag.split("=")[0]
    names = [f"--{f.name}" for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"; did you mean {close[0]}?"
    other = _other_command(name.lstrip("-"), cls)
    return f"; it is a setting of {other}" if other else ""

"""Command line and YAML recipes -> ``TrainConfig``: defaults < recipe < flags.

YAML values are coerced by the field's type, so ``learning_rate: 2e-4`` (a string to PyYAML) works, and a
wrong value names the recipe, the key and what was expected.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.errors import TrainingError, fail

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


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


def coerce_value(name: str, value: Any) -> Any:
    """``value`` converted to the type of ``TrainConfig.<name>`` (ValueError says what was expected)."""
    tp, optional = _unwrap_optional(_field_types()[name])
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


def load_recipe(path: str) -> dict[str, Any]:
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
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TrainingError(f"recipe {path!r}: unknown setting {key!r}{hint}; see python -m training sft --help")
        try:
            values[key] = coerce_value(key, value)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"recipe {path!r}: {key}: {exc}, got {value!r}") from None
    return values


def build_parser(prog: str = "python -m training sft") -> argparse.ArgumentParser:
    """One ``--<field>`` flag per ``TrainConfig`` field, help text from the field's metadata.

    Plain argparse rather than transformers' HfArgumentParser: parsing must not import transformers,
    because Unsloth has to be imported before it to patch it (training/backends.py).
    """
    parser = argparse.ArgumentParser(prog=prog, description="Supervised fine-tuning with LoRA / QLoRA.",
                                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    parser.add_argument("--config", help="YAML recipe whose values replace the defaults (flags win)")
    hints = _field_types()
    for f in dataclasses.fields(TrainConfig):
        tp, _ = _unwrap_optional(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kwargs: dict[str, Any] = {"help": f"{f.metadata.get('help', '')} (default: {default})", "dest": f.name}
        if tp is bool:
            kwargs.update(nargs="?", const="true", metavar="true|false")
        elif "flag_alone" in f.metadata:  # the flag without a value means this
            kwargs.update(nargs="?", const=f.metadata["flag_alone"])
        elif typing.get_origin(tp) is list:
            kwargs.update(nargs="+", metavar="NAME")
        elif typing.get_origin(tp) is typing.Literal:
            kwargs.update(choices=typing.get_args(tp))
        parser.add_argument(f"--{f.name}", **kwargs)
    return parser


def parse_sft_args(argv: list[str], prog: str = "python -m training sft") -> TrainConfig:
    """Flags (and an optional ``--config`` recipe) -> a validated ``TrainConfig``."""
    parser = build_parser(prog)
    parser.error = lambda message: fail(f"{message} (see {prog} --help)")  # type: ignore[method-assign]
    namespace, remaining = parser.parse_known_args(argv)
    if remaining:
        raise TrainingError(f"unknown argument {remaining[0]!r}{_suggest(remaining[0])} (see {prog} --help)")
    flags = vars(namespace)
    values = load_recipe(flags.pop("config")) if flags.get("config") else {}
    flags.pop("config", None)
    for name, raw in flags.items():
        try:
            values[name] = coerce_value(name, raw)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"--{name}: {exc}, got {raw!r}") from None
    return TrainConfig(**values)


def _suggest(flag: str) -> str:
    names = [f"--{f.name}" for f in dataclasses.fields(TrainConfig)]
    close = difflib.get_close_matches(flag.split("=")[0], names, n=1)
    return f"; did you mean {close[0]}?" if close else ""

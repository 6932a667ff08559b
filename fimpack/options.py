"""Command-line options generated from the config dataclasses: a field's flag, default, choices
and help come from the field itself (``option(...)``), so each setting is written once.

    @dataclass
    class EvalConfig:
        seed: int = option(0, "sampling seed")                 # --seed, int, default 0
        device: str = option("cpu", "torch device")            # --device
        as_json: bool = option(False, "JSON on stdout", flag="--json")

``add_options(parser, Config)`` adds one flag per field (nested config dataclasses too, their
flags beside their parent's); ``from_args(Config, args)`` builds the config back from the
parsed flags. The rules, in order:

* the flag is ``--field-name`` (with the parent field's ``prefix``), unless ``flag=`` names
  another; ``flag=False``: no flag (the field keeps its default); a flag without dashes is a
  positional argument;
* a bool defaulting to False is a ``--flag`` that sets it; one defaulting to True needs a
  ``--no-...`` flag, which clears it;
* ``off=(FLAG, VALUE, HELP)``: a second flag that sets the field to VALUE (``--no-nl-filter``:
  ``nl=None``);
* a flag left at None keeps the field's default (tuple and list fields: their flags default to
  None, so the default is the field's); ``to_field`` turns the flag's value into the field's
  (``--keep-generated`` KINDS into ``drop_generated``);
* ``group``: the help section; a nested config's fields inherit its group. A command takes
  the groups it names (``fimpack dedup``: input and deduplication).

This module is stdlib only (the bottom layer, like fimpack.config).
"""
from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, field, fields, is_dataclass

_KEYS = ("flag", "choices", "metavar", "parse", "to_field", "group", "off", "nargs", "const",
         "action", "prefix", "required")


def option(default=MISSING, help: str = "", *, factory=MISSING, **meta) -> Field:
    """A dataclass field with its command-line option: HELP and META (``flag``, ``choices``,
    ``metavar``, ``parse`` (str -> value; ValueError is the user's mistake), ``to_field``,
    ``group``, ``off``, ``nargs``, ``const``, ``action``, ``prefix`` for a nested config's
    flags, ``required`` for a flag that must be given although the field has a default);
    FACTORY for a mutable or nested default."""
    unknown = set(meta) - set(_KEYS)
    if unknown:
        raise TypeError(f"unknown option keys {sorted(unknown)}")
    metadata = {"help": help, **meta}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def default_of(f: Field):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def nested(f: Field):
    """The config dataclass class a field holds (possibly None: ``quality``), else None."""
    value = default_of(f)
    return type(value) if is_dataclass(value) else None


def flag_of(f: Field, prefix: str = "") -> str | None:
    """The field's own flag (``--near-threshold``), None when it has none."""
    flag = f.metadata.get("flag")
    if flag is False:
        return None
    return flag or "--" + prefix + f.name.replace("_", "-")


def dest_of(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def walk(cls, groups=None, prefix: str = "", group: str | None = None, offs: bool = False):
    """(field, its class, flag or None, group) of every leaf field of CLS and its nested
    configs, in declaration order, keeping only GROUPS (None: all). OFFS: also each ``off``
    switch, as (field, its class, (flag, value, help), group), before the fields it turns off."""
    for f in fields(cls):
        own = f.metadata.get("group", group)
        inner = nested(f)
        if offs and "off" in f.metadata and (groups is None or own in groups):
            yield f, cls, f.metadata["off"], own
        if inner is not None:
            yield from walk(inner, groups, prefix + f.metadata.get("prefix", ""), own, offs)
        elif groups is None or own in groups:
            yield f, cls, flag_of(f, prefix), own


def _scalar(cls, f: Field):
    """int, float or str: the field's type without None; None for anything else."""
    hint = typing.get_type_hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] \
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else [hint]
    return args[0] if len(args) == 1 and args[0] in (int, float, str) else None


def _parser(parse):
    """PARSE with its ValueError shown as argparse's one-line usage error."""
    def convert(value: str):
        try:
            return parse(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_options(parser: argparse.ArgumentParser, cls, groups=None, *,
                cli_default=None) -> dict[str, argparse._ArgumentGroup]:
    """Add a flag for every field of CLS (and its nested configs) in GROUPS; the help sections
    made, by group. CLI_DEFAULT: {field name: the flag's default} where it is not the field's
    (a field a preset may set defaults to None, so a flag given can be told apart)."""
    sections: dict[str, argparse._ArgumentGroup] = {}

    def section(name):
        if name is None:
            return parser
        if name not in sections:
            sections[name] = parser.add_argument_group(name)
        return sections[name]

    for f, owner, flag, group in walk(cls, groups, offs=True):
        if isinstance(flag, tuple):  # an off switch: (flag, value, help)
            section(group).add_argument(flag[0], action="store_true", help=flag[2])
            continue
        if flag is None:
            continue
        meta, default = f.metadata, default_of(f)
        kw = {"help": meta.get("help") or None}
        if isinstance(default, bool):
            if default and not flag.startswith("--no-"):
                raise TypeError(f"{owner.__name__}.{f.name}: a bool defaulting to True "
                                "needs a --no-... flag")
            kw["action"] = "store_true"
        else:
            if "action" in meta:
                kw["action"] = meta["action"]
            else:
                kind = _parser(meta["parse"]) if "parse" in meta else _scalar(owner, f)
                if kind not in (None, str):
                    kw["type"] = kind
            for key in ("choices", "metavar", "nargs", "const"):
                if key in meta:
                    kw[key] = meta[key]
            if default is MISSING or meta.get("required"):
                if flag.startswith("-"):
                    kw["required"] = True
            elif f.name in (cli_default or {}):
                kw["default"] = cli_default[f.name]
                if kw["default"] is None and default is not None:
                    kw["help"] = f"{kw['help'] or ''} (default: {default})".strip()
            else:
                kw["default"] = None if isinstance(default, (tuple, list)) else default
        if not flag.startswith("-"):  # positional: named as the user sees it
            kw.pop("required", None)
            section(group).add_argument(f.name, metavar=flag, **kw)
        else:
            section(group).add_argument(flag, dest=dest_of(flag), **kw)
    return sections


def from_args(cls, args: argparse.Namespace, groups=None, prefix: str = "",
              group: str | None = None, **given):
    """CLS from ``add_options``' parsed ARGS: each field from its flag, a field of another
    group (or whose flag was left at None) at its default; GIVEN: values that win."""
    values = {}
    for f in fields(cls):
        if f.name in given:
            values[f.name] = given[f.name]
            continue
        meta, own = f.metadata, f.metadata.get("group", group)
        if "off" in meta and (groups is None or own in groups) \
                and getattr(args, dest_of(meta["off"][0]), False):
            values[f.name] = meta["off"][1]
            continue
        inner = nested(f)
        if inner is not None:
            values[f.name] = from_args(inner, args, groups, prefix + meta.get("prefix", ""),
                                       own)
            continue
        flag = flag_of(f, prefix)
        if flag is None or not (groups is None or own in groups):
            continue
        value = getattr(args, f.name if not flag.startswith("-") else dest_of(flag))
        if isinstance(default_of(f), bool):
            value = (not value) if flag.startswith("--no-") else value
        elif value is None:
            continue
        elif "to_field" in meta:
            value = meta["to_field"](value)
        values[f.name] = value
    return cls(**values)

"""Which editor class implements which method name, and its hyperparameters from conf.

The registry is data: adding a method is one line here, one module and one
`conf/method/<name>.yaml`. Classes are named as import paths so that importing the registry
(the CLI does) pulls in no torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["METHODS", "CONF_DIR", "load_method_conf", "resolve_hparams", "get_editor", "editor_class"]

METHODS: dict[str, str] = {
    "none": "editsweep.editing.none:NoEditor",
    "ft": "editsweep.editing.ft:FTEditor",
    "grace": "editsweep.editing.grace:GraceEditor",
    "rome": "editsweep.editing.rome:RomeEditor",
    "memit": "editsweep.editing.memit:MemitEditor",
    "pmet": "editsweep.editing.pmet:PmetEditor",
}

# conf/ sits at the repository root, beside the package (editable install, the supported setup).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _check_name(name: str) -> None:
    if name not in METHODS:
        raise KeyError(f"unknown editing method {name!r}; known: {', '.join(METHODS)}")


def editor_class(name: str) -> type:
    """The editor class registered for `name`."""
    _check_name(name)
    module_name, class_name = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_method_conf(name: str, conf_dir: Path | None = None) -> dict[str, Any]:
    """`conf/method/<name>.yaml` as a dict with keys name, hparams, per_model (checked)."""
    import yaml

    _check_name(name)
    path = (conf_dir or CONF_DIR) / "method" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"method config {path} not found (is editsweep installed editable from its repo?)")
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if data.get("name") != name:
        raise ValueError(f"{path}: `name` is {data.get('name')!r}, expected {name!r}")
    for key in ("hparams", "per_model"):
        value = data.setdefault(key, {}) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{path}: `{key}` must be a mapping, got {type(value).__name__}")
        data[key] = value
    for model, overrides in data["per_model"].items():
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError(f"{path}: per_model.{model} must be a mapping, got {type(overrides).__name__}")
        data["per_model"][model] = overrides or {}
    return data


def resolve_hparams(
    method_name: str,
    model_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    conf_dir: Path | None = None,
) -> dict[str, Any]:
    """Defaults of the method, then its `per_model[model_name]` entry, then `overrides`.

    An unknown `model_name` gets the plain defaults (they are the 7B values); the method class
    checks every key, so a typo fails here with the list of known keys.
    """
    conf = load_method_conf(method_name, conf_dir)
    values = dict(conf["hparams"])
    if model_name is not None:
        values.update(conf["per_model"].get(model_name, {}))
    values.update(overrides or {})
    editor_class(method_name).hparams_class.from_dict(method_name, values)  # validate early
    return values


def get_editor(name: str, **hparams: Any):
    """An editor for method `name`; `hparams` override `conf/method/<name>.yaml`'s defaults."""
    conf = load_method_conf(name)
    values = {**conf["hparams"], **hparams}
    return editor_class(name)(**values)

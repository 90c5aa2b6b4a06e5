"""`editsweep models train|list`: build the small local models, show what models are available."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="small local models: train, list")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="train (or reuse from cache) the small models and report them")
    train.add_argument("--arch", nargs="+", default=None, help="architectures (default: llama qwen2)")
    train.add_argument("--rebuild", action="store_true", help="delete the cached entry first and train again")
    train.add_argument("--json", action="store_true", help="print one JSON object per model")
    train.set_defaults(func=_train)

    lister = sub.add_parser("list", help="paper models, small models (cached or not) and tiny models")
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.set_defaults(func=_list)


def _train(args: argparse.Namespace) -> int:
    import shutil

    from editsweep.models.small import SMALL_ARCHS, small_model_path, small_model_status

    archs = args.arch or list(SMALL_ARCHS)
    unknown = [a for a in archs if a not in SMALL_ARCHS]
    if unknown:
        log.error("unknown architecture(s) %s; choose from %s", unknown, ", ".join(SMALL_ARCHS))
        return 2
    for arch in archs:
        if args.rebuild:
            status = small_model_status(arch)
            shutil.rmtree(status["path"], ignore_errors=True)
        path = small_model_path(arch)
        manifest = small_model_status(arch)["manifest"] or {}
        summary = {
            "name": f"small:{arch}",
            "path": str(path),
            "train_seconds": manifest.get("train_seconds"),
            "demo_greedy_reproduction": manifest.get("demo_greedy_reproduction"),
            "demo_loss": manifest.get("demo_loss"),
        }
        if args.json:
            print(json.dumps(summary))
        else:
            print(
                f"small:{arch}: {path}\n  trained in {summary['train_seconds']} s, "
                f"greedy reproduction of demo solutions {100 * (summary['demo_greedy_reproduction'] or 0):.0f}%"
            )
    return 0


def _list(args: argparse.Namespace) -> int:
    from editsweep.models.configs import KNOWN_MODELS
    from editsweep.models.small import SMALL_ARCHS, small_model_status

    rows = []
    for key, known in KNOWN_MODELS.items():
        values = known.values
        rows.append({
            "name": key, "kind": "paper", "location": known.hub_id, "arch": known.model_type,
            "layers": values["num_hidden_layers"], "hidden": values["hidden_size"],
            "intermediate": values["intermediate_size"],
        })
    for arch in SMALL_ARCHS:
        status = small_model_status(arch)
        rows.append({
            "name": f"small:{arch}", "kind": "small", "location": status["path"], "arch": arch,
            "cached": status["valid"],
            "demo_greedy_reproduction": (status["manifest"] or {}).get("demo_greedy_reproduction"),
        })
    for arch in SMALL_ARCHS:
        rows.append({"name": f"tiny:{arch}", "kind": "tiny", "location": "(built in memory)", "arch": arch})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        extra = ""
        if row["kind"] == "paper":
            extra = f"{row['layers']} layers, d={row['hidden']}, m={row['intermediate']}"
        elif row["kind"] == "small":
            extra = "cached" if row["cached"] else "not built yet (editsweep models train)"
        print(f"{row['name']:<22} {row['arch']:<6} {row['location']}  {extra}")
    return 0

"""Command line: `python -m training train [--config FILE] [key=value ...]` writes the checkpoint,
ONNX, metadata and resolved config to the config's `out` folder; `python -m training evaluate
DIR` prints the held-out metrics of a trained encoder; `python -m training evaluate-real` prints the
real-data metrics of readers on the held-out people and clips (`split-real` rewrites that split).
Errors are one line naming what is wrong; the exit status is 0 on success, 2 on a usage error
(arguments or config) and 1 on any other failure (an unusable face-model file among them), as
`python -m inference`'s."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inference.errors import FieldsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="train the encoder and export it")
    train_cmd.add_argument("--config", type=Path, help="YAML file of overrides (strict: unknown keys are errors)")
    train_cmd.add_argument("--device", help="cpu or cuda (overrides the config)")
    train_cmd.add_argument("--ship", action="store_true",
                           help="also copy encoder.onnx and encoder.json into inference/models/ (the shipped weights)")
    train_cmd.add_argument("overrides", nargs="*", help="section.key=value, e.g. data.train_samples=1000")
    evaluate_cmd = commands.add_parser("evaluate", help="print the held-out metrics of a trained encoder")
    evaluate_cmd.add_argument("weights", type=Path, help="folder holding encoder.pt and config.yaml")
    real_cmd = commands.add_parser("evaluate-real", help="real-data metrics on the held-out people and clips")
    real_cmd.add_argument("--readers", default="shipped,logistic",
                          help="comma-separated: shipped, logistic, encoder=RUN_FOLDER, previous=ONNX_OR_FOLDER")
    real_cmd.add_argument("--cache", type=Path, help="perception cache folder (default ~/.cache/fields/real)")
    real_cmd.add_argument("--json", type=Path, help="also write the full report as JSON here")
    commands.add_parser("split-real", help="rewrite training/real_split.json from the shared data's labels")
    args = parser.parse_args(argv)
    if args.command in ("evaluate-real", "split-real"):
        from .real_cli import real_command

        return real_command(args)

    from .config import ConfigError, load_config

    try:
        if args.command == "train":
            from .train import train

            overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
            config = load_config(args.config, overrides)
            metrics = train(config)
            if args.ship:
                from .export import ship

                ship(Path(config.out))
        else:
            from .train import evaluate_folder

            metrics = evaluate_folder(args.weights)
    except ConfigError as error:  # the command line or config itself is wrong
        print(f"error: {error}", file=sys.stderr)
        return 2
    except FieldsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # one line for the log, whatever broke
        print(f"error: training failed: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

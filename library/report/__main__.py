"""`python -m library.report SWEEP [--wandb]`: rebuild a sweep's report, and publish its W&B report if asked."""
from __future__ import annotations

import argparse
from pathlib import Path

from library.report import build_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m library.report",
                                     description="Build results/SWEEP/report.html (self-contained) and plots/.")
    parser.add_argument("sweep", help="sweep name: the folder under --results-dir")
    parser.add_argument("--results-dir", default="results", type=Path, help="default: results")
    parser.add_argument("--wandb", action="store_true", help="also publish the W&B report (needs `wandb login`)")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    args = parser.parse_args(argv)
    folder = args.results_dir / args.sweep
    if not folder.is_dir():
        parser.error(f"{folder} does not exist: run the sweep first")
    print(build_report(folder))
    if args.wandb:
        from library.wandb_report import publish_results  # wandb-workspaces takes seconds to import: only if asked

        try:
            print(publish_results(folder, args.entity))
        except RuntimeError as e:  # not logged in, no sweep.json: what to do, without a traceback
            parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()

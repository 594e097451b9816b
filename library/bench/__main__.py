"""`python -m library.bench` (the figures) and `python -m library.bench --gpu` (the GPU paths): see library.bench."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import library.bench
from library.bench import REPO
from library.bench.figures import evaluation, loaders, markdown, startup, step_time, sweep_throughput
from library.bench.gpu import gpu_check
from library.bench.gpu_packing import gpu_packing
from library.bench.multinode import markdown as multinode_markdown
from library.bench.multinode import multinode
from library.bench.scale import markdown as scale_markdown
from library.bench.scale import scale
from library.files import write_json, write_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m library.bench", description=library.bench.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller files")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--gpu", action="store_true", help="check the GPU paths instead (needs a GPU; see above)")
    parser.add_argument("--multinode", action="store_true",
                        help="time the multi-node paths instead (needs `slurm/cluster.sh up --nodes=3`)")
    parser.add_argument("--gpu-packing", action="store_true",
                        help="trials per GPU-hour with 1, 2, 4, 8 trials sharing a GPU instead (needs a GPU)")
    parser.add_argument("--scale", action="store_true",
                        help="time sweeps of 10, 100, 1,000 trials on the dev cluster instead (slurm/cluster.sh up)")
    args = parser.parse_args(argv)
    if args.gpu:
        sys.exit(gpu_check(args.out))
    if args.gpu_packing:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            sys.exit(gpu_packing(args.out, Path(tmp)))
    for wanted, measure, markdown_of, name in ((args.scale, scale, scale_markdown, "scale.md"),
                                               (args.multinode, multinode, multinode_markdown, "multinode.md")):
        if wanted:
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
                text = markdown_of(measure(Path(tmp)))
            print(text)
            write_text(args.out / name, text)
            return
    started = time.time()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    results = {"machine": f"{platform.node()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        stages = [
            ("step", lambda: step_time(20 if args.quick else 40, 64, 1 if args.quick else 7, work)),
            ("startup", lambda: startup(1 if args.quick else 3, work)),
            ("evaluation", lambda: evaluation(work)),
            ("loaders", lambda: loaders(work, 6000 if args.quick else 60000, results["step"]["images_per_s"])),
            ("sweep", lambda: sweep_throughput(work)),
        ]
        for name, stage in stages:
            t = time.time()
            results[name] = stage()
            print(f"bench: {name} done in {time.time() - t:.0f} s", flush=True)
    results["bench_s"] = time.time() - started
    text = markdown(results)
    print(text)
    write_json(args.out / "bench.json", results)
    write_text(args.out / "bench.md", text)
    print(f"written to {args.out}/bench.json and bench.md")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Baseline for bench/model_bench.cpp: PyTorch's Python eager torchvision GoogLeNet, fp32.

Measures, at batch 32 and 224x224 like the C++ benchmark:
  infer  eval mode, torch.no_grad(), forward                              -> images/s
  train  train mode, forward + cross-entropy + backward + SGD(momentum 0.9) step -> images/s
and the peak resident memory of each (every measurement runs in its own process, so
ru_maxrss is that measurement's peak). Aux heads are off in both programs (transfer learning
replaces them), so both train the same network.

With --cpp-json (the output of bench_model --benchmark_out=FILE --benchmark_out_format=json)
it also prints the combined table: variant x mode x layout -> images/s, ratio to this baseline,
peak RSS.

Needs python3-torch and python3-torchvision (Debian: apt-get install python3-torch
python3-torchvision); not part of CI. Example (see bench/README.md):
  /usr/bin/python3 bench/googlenet_baseline.py --threads 2 --cpp-json cpp.json
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

DEFAULT_WEIGHTS = (pathlib.Path(__file__).resolve().parent / "../../shared/fixtures/torchvision"
                   / "googlenet-random-legacy.pth")


def measure(mode, threads, batch, min_time, min_iters, layout, weights):
    """Runs one measurement in this process; returns a dict of results."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    if weights:  # the same weights as the C++ bench (torchvision's own init fades to ~1e-12,
        # where denormal arithmetic could distort timings)
        net.load_state_dict(torch.load(weights), strict=False)
    x = torch.rand(batch, 3, 224, 224) * 4 - 2
    labels = torch.randint(0, 1000, (batch,))
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    if mode == "infer":
        net.eval()

        def step():
            with torch.no_grad():
                net(x)
    else:
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x), labels).backward()
            opt.step()

    step()  # warm-up: oneDNN primitive creation, allocator
    iters, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        iters += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and iters >= min_iters:
            break
    cpu = time.process_time() - cpu_start
    return {
        "mode": mode,
        "layout": layout,
        "threads": torch.get_num_threads(),
        "iterations": iters,
        "seconds": elapsed,
        "images_per_s": batch * iters / elapsed,
        "images_per_cpu_s": batch * iters / cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def run_child(args, mode, layout):
    cmd = [sys.executable, __file__, "--child", mode, "--layout", layout,
           "--threads", str(args.threads), "--batch", str(args.batch),
           "--min-time", str(args.min_time), "--min-iters", str(args.min_iters),
           "--weights", args.weights]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpp_rows(path):
    """Rows from Google Benchmark's JSON; names are 'BM_<Mode>/<variant>/<setup>/...'."""
    with open(path) as f:
        data = json.load(f)
    rows = []
    for b in data["benchmarks"]:
        parts = b["name"].split("/")
        if len(parts) < 3 or b.get("run_type", "iteration") != "iteration":
            continue
        rows.append({
            "who": f"{parts[1]} (ours, C++)", "mode": parts[0].replace("BM_", "").lower(),
            "layout": parts[2], "images_per_s": b.get("items_per_second", 0.0),
            "images_per_cpu_s": b.get("images_per_cpu_s", 0.0),
            "peak_rss_mb": b.get("peak_rss_mb", 0.0), "error": b.get("error_message", ""),
        })
    return rows, data.get("context", {})


def print_table(base, rows):
    ref = {r["mode"]: r for r in base if r["layout"] == "nchw"}
    print("| program | mode | setup | images/s | × baseline | images/CPU-s | × baseline | peak RSS MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.get("error"):
            print(f"| {r['who']} | {r['mode']} | {r['layout']} | failed: {r['error']} | | | | |")
            continue
        b = ref.get(r["mode"])
        wall = r["images_per_s"] / b["images_per_s"] if b else float("nan")
        cpu = r["images_per_cpu_s"] / b["images_per_cpu_s"] if b else float("nan")
        print(f"| {r['who']} | {r['mode']} | {r['layout']} | {r['images_per_s']:.2f} | {wall:.2f} | "
              f"{r['images_per_cpu_s']:.2f} | {cpu:.2f} | {r['peak_rss_mb']:.0f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--min-time", type=float, default=8.0, help="seconds per measurement (default 8)")
    p.add_argument("--min-iters", type=int, default=3, help="at least this many steps (default 3)")
    p.add_argument("--layouts", default="nchw", help="comma list of nchw,channels_last (default nchw)")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else "",
                   help="state_dict to load (default: ../shared torchvision fixture; '' = random init)")
    p.add_argument("--cpp-json", help="bench_model JSON output to compare against")
    p.add_argument("--json", help="write the baseline results here")
    p.add_argument("--child", choices=["infer", "train"], help=argparse.SUPPRESS)
    p.add_argument("--layout", default="nchw", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.batch, args.min_time, args.min_iters, args.layout,
                                 args.weights)))
        return

    base = [run_child(args, m, l) for m in ("infer", "train") for l in args.layouts.split(",")]
    for r in base:
        r["who"] = "torchvision (PyTorch Python eager)"
    print(f"baseline: PyTorch {base[0]['torch']} Python eager torchvision googlenet, batch "
          f"{args.batch}, {base[0]['threads']} threads, load average before/after "
          f"{base[0]['load']} / {base[-1]['load']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(base, f, indent=1)
    rows = base
    if args.cpp_json:
        cpp, context = cpp_rows(args.cpp_json)
        rows = base + cpp
        print(f"ours: {args.cpp_json} ({context.get('date', '')}, load average "
              f"{context.get('load_avg', '?')} at its start)")
    print()
    print_table(base, rows)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Ours (build/bench/bench_model) against PyTorch from Python on the same machine, interleaved.

  /usr/bin/python3 bench/compare.py                       # both archs, infer + train, 2 rounds
  /usr/bin/python3 bench/compare.py --batch 10 --modes train --archs bvlc
  /usr/bin/python3 bench/compare.py --profile             # per layer type, ours and the peer

Each round runs, for every architecture and mode, our fp32 setups (nchw, channels_last, and for
inference frozen = model::FrozenNet) and the
peer's (googlenet_baseline.py: eager nchw/channels_last, frozen TorchScript for inference), every
measurement in its own process, ours first in odd rounds and last in even ones so that a load that
drifts does not favour one side. It prints every row, then per architecture and mode the ratio
ours (best fp32 setup) / fastest peer, by wall clock and by CPU time (images per CPU-second, the
figure that means something on a machine shared with other work), and the fraction of fp32 peak.

Peak per core = FMA lanes (avx512f: 16 fp32, avx2+fma: 8) x 2 FMA units x 2 FLOP x clock
(lscpu 'CPU max MHz', else /proc/cpuinfo 'cpu MHz'). Two FMA units per core is an assumption
(Zen 3/4, most Xeons). Zen 4 executes a 512-bit FMA as two 256-bit halves, so its real peak is
half this: the fraction printed is then half of what the hardware allows (see bench/README.md).
FLOP per image from googlenet_baseline.py --flops (conv + fc MACs x 2): training = 3 x forward.
"""
import argparse
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import googlenet_baseline as peer  # noqa: E402


def load():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def peak_gflops_per_core():
    """(GFLOP/s per core, description) from the CPU flags and clock."""
    info = pathlib.Path("/proc/cpuinfo").read_text()
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split())
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    mhz = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"CPU max MHz:\s*([\d.]+)", out)
        mhz = float(m.group(1)) if m else None
    except OSError:
        pass
    src = "lscpu CPU max MHz"
    if mhz is None:
        mhz, src = float(re.search(r"cpu MHz\s*:\s*([\d.]+)", info).group(1)), "/proc/cpuinfo cpu MHz"
    peak = lanes * 2 * 2 * mhz / 1e3
    return peak, f"{lanes} fp32 lanes x 2 FMA units x 2 FLOP x {mhz:.0f} MHz ({src}) = {peak:.0f} GFLOP/s per core"


def run_ours(args, arch, mode):
    """Our fp32 setups for one arch and mode -> rows (googlenet_baseline's row format)."""
    images = 192 if mode == "infer" else 96
    iters = max(3, math.ceil(images / args.batch))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.json")
        cmd = [args.bench, f"--threads={args.threads}", f"--batch={args.batch}",
               f"--iters_{mode}={iters}", f"--benchmark_filter=^BM_{mode.capitalize()}/{arch}/(nchw|channels_last|frozen)/",
               f"--benchmark_out={out}", "--benchmark_out_format=json"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return peer.cpp_rows(out)[0]


def run_peer(args, arch, mode):
    ns = argparse.Namespace(threads=args.threads, batch=args.batch, min_time=args.min_time, min_iters=3,
                            weights=str(peer.DEFAULT_WEIGHTS) if peer.DEFAULT_WEIGHTS.exists() else "")
    return [peer.run_child(ns, *c) for c in peer.peer_configs([arch], ["nchw", "channels_last"],
                                                             ["eager", "frozen"], [mode])]


def compare(args):
    peak, peak_text = peak_gflops_per_core()
    gflop = {a: sum(peer.count_flops(a).values()) for a in args.archs}
    print(f"peak: {peak_text}; forward GFLOP/image: "
          + ", ".join(f"{a} {g:.3f}" for a, g in gflop.items()) + " (training 3x)")
    print(f"load average at start: {load()}")
    rows = []
    for rnd in range(1, args.rounds + 1):
        for arch in args.archs:
            for mode in args.modes:
                sides = [run_ours, run_peer] if rnd % 2 else [run_peer, run_ours]
                for side in sides:
                    for r in side(args, arch, mode):
                        r.update(round=rnd, load_after=load())
                        rows.append(r)
                        print(f"  round {rnd} {r['who']:<28} {mode:<5} {r['layout']:<13} "
                              f"{r['images_per_s']:7.2f} images/s {r['images_per_cpu_s']:7.2f} images/CPU-s "
                              f"load {r['load_after']}", flush=True)
    print(f"load average at end: {load()}\n")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    for rnd in range(1, args.rounds + 1):
        print(f"round {rnd}, batch {args.batch}, {args.threads} threads:\n")
        peer.print_table([r for r in rows if r["round"] == rnd])
        print()
    print("| arch | mode | round | ours best (setup) images/CPU-s | fastest peer (impl, setup) images/CPU-s "
          "| ours/peer CPU | ours/peer wall | ours frozen/eager CPU (wall) | ours % of peak | peer % of peak |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|")
    for arch in args.archs:
        for mode in args.modes:
            flop = gflop[arch] * (1 if mode == "infer" else 3)
            for rnd in range(1, args.rounds + 1):
                sel = [r for r in rows if r["round"] == rnd and r["arch"] == arch and r["mode"] == mode
                       and not r.get("error")]
                ours = [r for r in sel if r["impl"] == "ours"]
                theirs = [r for r in sel if r["impl"] != "ours"]
                if not ours or not theirs:
                    continue
                o = max(ours, key=lambda r: r["images_per_cpu_s"])
                p = max(theirs, key=lambda r: r["images_per_cpu_s"])
                ow = max(r["images_per_s"] for r in ours) / max(r["images_per_s"] for r in theirs)
                frozen = [r for r in ours if r["layout"] == "frozen"]
                eager = [r for r in ours if r["layout"] != "frozen"]
                fe = "-"
                if frozen and eager:
                    fe = (f"{frozen[0]['images_per_cpu_s'] / max(r['images_per_cpu_s'] for r in eager):.2f} "
                          f"({frozen[0]['images_per_s'] / max(r['images_per_s'] for r in eager):.2f})")
                print(f"| {arch} | {mode} | {rnd} | {o['images_per_cpu_s']:.2f} ({o['layout']}) | "
                      f"{p['images_per_cpu_s']:.2f} ({p['impl']}, {p['layout']}) | "
                      f"{o['images_per_cpu_s'] / p['images_per_cpu_s']:.2f} | {ow:.2f} | {fe} | "
                      f"{100 * o['images_per_cpu_s'] * flop / peak:.1f} | "
                      f"{100 * p['images_per_cpu_s'] * flop / peak:.1f} |")


# --- profile -------------------------------------------------------------------------------------

CATEGORIES = [  # (regex on the operator key, layer type); first match wins
    (r"conv.*backward.*\[1x1\]", "conv 1x1 backward"),
    (r"conv.*backward.*\[(3x3|5x5)\]", "conv 3x3/5x5 backward"),
    (r"conv.*backward.*\[7x7\]", "conv1 7x7 backward"),
    (r"conv.*\[1x1\]", "conv 1x1 forward"),
    (r"conv.*\[(3x3|5x5)\]", "conv 3x3/5x5 forward"),
    (r"conv.*\[7x7\]", "conv1 7x7 forward"),
    (r"max_pool.*backward", "max pool backward"),
    (r"max_pool", "max pool forward"),
    (r"(?i)lrn|local_response", "LRN backward (ours: fused kernel, a CppNode)"),
    (r"avg_pool3d|constant_pad_nd|aten::(pow|div|neg)\b", "LRN (composite: pad, avg_pool3d, pow, div)"),
    (r"threshold_backward", "ReLU backward"),
    (r"relu|clamp_min", "ReLU forward"),
    (r"aten::cat", "concat forward"),
    (r"aten::(slice|narrow)|CatBackward", "concat backward (slices)"),
    (r"batch_norm", "BatchNorm"),
    (r"aten::(addmm|mm|linear|t)\b|AddmmBackward", "fc"),
    (r"aten::(add_|mul_|add|mul|zero_|fill_|copy_|_foreach)", "elementwise (SGD, grad sums, copies; peer: LRN mul/add)"),
    (r"^outside", "not in any operator (ours: the fused LRN forward)"),
]


def categorize(key):
    for pattern, cat in CATEGORIES:
        if re.search(pattern, key):
            return cat
    return "other (allocation, autograd engine, dropout, pooling, loss)"


def conv_gflop(arch, batch):
    """Forward GFLOP per step by profile category (for GFLOP/s); backward = 2 x forward."""
    k = peer.count_flops(arch)
    fwd = {"conv 1x1 forward": k.get("conv 1x1", 0),
           "conv 3x3/5x5 forward": k.get("conv 3x3", 0) + k.get("conv 5x5", 0),
           "conv1 7x7 forward": k.get("conv 7x7", 0)}
    out = {c: batch * g for c, g in fwd.items()}
    for c, g in fwd.items():
        # conv1 needs no input gradient (the image does not require grad): weight gradient only.
        out[c.replace("forward", "backward")] = batch * g * (1 if "7x7" in c else 2)
    return out


def ours_profile(args, spec, batch):
    out = subprocess.run([args.bench, f"--threads={args.threads}", f"--batch={batch}",
                          f"--profile={spec}"], check=True, capture_output=True, text=True).stdout
    wall = float(re.search(r"([\d.]+) ms/step wall", out).group(1))
    outside = float(re.search(r"([-\d.]+) ms/step outside", out).group(1))
    rows = [("outside", outside)]
    for line in out.splitlines():
        m = re.match(r"^(.*?)\s+([\d.]+)\s+[\d.]+%\s+\d+$", line)
        if m:
            rows.append((m.group(1).strip(), float(m.group(2))))
    return wall, rows


def peer_profile(args, spec, batch):
    arch, mode, layout = spec.split("/")
    cmd = [sys.executable, str(HERE / "googlenet_baseline.py"), "--child", mode, "--arch", arch, "--impl", "eager",
           "--layout", layout, "--threads", str(args.threads), "--batch", str(batch),
           "--profile-child"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    d = json.loads(out.strip().splitlines()[-1])
    return d["wall_ms"], [("outside", d["wall_ms"] - sum(ms for _, ms in d["rows"]))] + d["rows"]


PROFILES = [("bvlc/train/channels_last", 10), ("bvlc/train/channels_last", 32),
            ("bvlc/infer/channels_last", 32), ("torchvision/infer/channels_last", 32)]


def profile(args):
    print(f"load average at start: {load()}")
    for spec, batch in PROFILES:
        arch = spec.split("/")[0]
        flops = conv_gflop(arch, batch)
        result = {}
        for who, fn in (("ours", ours_profile), ("peer", peer_profile)):
            wall, rows = fn(args, spec, batch)
            cats = {}
            for key, ms in rows:
                cats[categorize(key)] = cats.get(categorize(key), 0.0) + ms
            result[who] = (wall, cats)
        print(f"\n{spec}, batch {batch}, {args.threads} threads (ours {result['ours'][0]:.0f} ms/step, "
              f"PyTorch eager {result['peer'][0]:.0f} ms/step, under the profiler; load {load()}):\n")
        print("| layer type | ours ms/step | ours share | ours GFLOP/s | peer ms/step | peer share | peer GFLOP/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        names = sorted(set(result["ours"][1]) | set(result["peer"][1]),
                       key=lambda c: -result["ours"][1].get(c, 0.0))
        for c in names:
            cells = []
            for who in ("ours", "peer"):
                wall, cats = result[who]
                ms = cats.get(c, 0.0)
                gf = f"{flops[c] / (ms / 1e3):.0f}" if c in flops and ms > 0 else ""
                cells += [f"{ms:.1f}", f"{100 * ms / wall:.1f}%", gf]
            print(f"| {c} | " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default=str(HERE / "../build/bench/bench_model"), help="our bench_model binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--archs", default="bvlc,torchvision")
    p.add_argument("--modes", default="infer,train")
    p.add_argument("--min-time", type=float, default=5.0, help="seconds per peer measurement (default 5)")
    p.add_argument("--json", help="write every row here")
    p.add_argument("--profile", action="store_true",
                   help="per layer type instead: bvlc train at batch 10 and 32, inference of both (channels_last)")
    args = p.parse_args()
    args.archs, args.modes = args.archs.split(","), args.modes.split(",")
    if args.profile:
        profile(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()

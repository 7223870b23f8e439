#!/usr/bin/env python3
"""Peer baseline for bench/model_bench.cpp: GoogLeNet in PyTorch from Python, fp32.

Two architectures, each as a PyTorch user writes it:
  torchvision  torchvision.models.googlenet (aux heads off), the fixture weights from ../shared
  bvlc         BVLC GoogLeNet (Caffe's deploy.prototxt) in plain PyTorch: conv+bias+ReLU,
               F.local_response_norm after pool1 and conv2, ceil-mode max pools, 5x5 in branch 3,
               dropout 0.4; the BVLC weights read from the .caffemodel (a seeded init if absent)
and two implementations:
  eager        Python eager mode
  frozen       (inference only) torch.jit.trace + torch.jit.freeze + torch.jit.optimize_for_inference
Measures, at --batch (default 32) and 224x224 like the C++ benchmark:
  infer  eval mode, torch.no_grad(), forward                              -> images/s
  train  train mode, forward + cross-entropy + backward + SGD(momentum 0.9) step -> images/s
with images per CPU-second and the peak resident memory (every measurement runs in its own
process, so ru_maxrss is that measurement's peak).

With --cpp-json (the output of bench_model --benchmark_out=FILE --benchmark_out_format=json)
it also prints the combined table. bench/compare.py runs ours and this interleaved.

Needs python3-torch and python3-torchvision (Debian: apt-get install python3-torch
python3-torchvision); not part of CI. Example (see bench/README.md):
  /usr/bin/python3 bench/googlenet_baseline.py --threads 2 --archs bvlc,torchvision --cpp-json cpp.json
  /usr/bin/python3 bench/googlenet_baseline.py --flops     # count conv/fc MACs per image
"""
import argparse
import json
import os
import pathlib
import resource
import struct
import subprocess
import sys
import time

SHARED = pathlib.Path(__file__).resolve().parent / "../../shared"
DEFAULT_WEIGHTS = SHARED / "fixtures/torchvision/googlenet-random-legacy.pth"
BVLC_WEIGHTS = SHARED / "weights/bvlc_googlenet.caffemodel"

# Inception blocks 3a..5b: in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj (paper, table 1).
INCEPTION = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
             (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
             (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
             (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
             (832, 384, 192, 384, 48, 128, 128)]


def bvlc_googlenet(num_classes=1000):
    """BVLC GoogLeNet as a PyTorch user writes it (modules in the caffemodel's layer order)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def conv(cin, cout, k, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU(inplace=True))

    class Inception(nn.Module):
        def __init__(self, cin, b1, b2r, b2, b3r, b3, b4):
            super().__init__()
            self.b1 = conv(cin, b1, 1)
            self.b2 = nn.Sequential(conv(cin, b2r, 1), conv(b2r, b2, 3))
            self.b3 = nn.Sequential(conv(cin, b3r, 1), conv(b3r, b3, 5))
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv(cin, b4, 1))

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    class BvlcGoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = conv(3, 64, 7, 2)
            self.conv2 = conv(64, 64, 1)
            self.conv3 = conv(64, 192, 3)
            self.inc = nn.ModuleList(Inception(*c) for c in INCEPTION)
            self.dropout = nn.Dropout(0.4)
            self.fc = nn.Linear(1024, num_classes)

        def forward(self, x):
            pool = lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True)  # noqa: E731
            lrn = lambda t: F.local_response_norm(t, 5, 1e-4, 0.75, 1.0)  # noqa: E731
            x = lrn(pool(self.conv1(x)))
            x = pool(lrn(self.conv3(self.conv2(x))))
            x = self.inc[1](self.inc[0](x))
            x = pool(x)
            for i in range(2, 7):
                x = self.inc[i](x)
            x = self.inc[8](self.inc[7](pool(x)))
            x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
            return self.fc(self.dropout(x))

    return BvlcGoogLeNet()


def _fields(buf):
    """Yields (field number, wire type, value or bytes) of one protobuf message."""
    pos = 0

    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while pos < len(buf):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            yield num, wire, varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            yield num, wire, buf[pos:pos + 4]
            pos += 4
        elif wire == 2:
            n = varint()
            yield num, wire, buf[pos:pos + n]
            pos += n
        else:
            raise ValueError(f"protobuf wire type {wire} at {pos}")


def read_caffemodel_blobs(path):
    """[(layer name, [float blob, ...])] in file order; NetParameter layers=2 (V1) / layer=100."""
    out = []
    for num, wire, layer in _fields(memoryview(pathlib.Path(path).read_bytes())):
        if num not in (2, 100) or wire != 2:
            continue
        name_f, blob_f = (4, 6) if num == 2 else (1, 7)
        name, blobs = "", []
        for n, w, v in _fields(layer):
            if n == name_f and w == 2:
                name = bytes(v).decode()
            elif n == blob_f and w == 2:
                data = [bytes(d) for bn, bw, d in _fields(v) if bn == 5 and bw == 2]
                blobs.append(b"".join(data))
        if blobs:
            out.append((name, blobs))
    return out


def load_bvlc_weights(net, path):
    """Copies the caffemodel's conv/fc blobs (aux heads loss1/loss2 skipped) into net in order."""
    import torch

    layers = [(n, b) for n, b in read_caffemodel_blobs(path) if not n.startswith(("loss1/", "loss2/"))]
    params = [(m.weight, m.bias) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    if len(layers) != len(params):
        raise ValueError(f"{path}: {len(layers)} layers with weights, the net has {len(params)}")
    with torch.no_grad():
        for (name, blobs), pair in zip(layers, params):
            for blob, p in zip(blobs, pair):
                t = torch.frombuffer(bytearray(blob), dtype=torch.float32)
                if t.numel() != p.numel():
                    raise ValueError(f"{path}: layer {name} has {t.numel()} values, expected {p.numel()}")
                p.copy_(t.view_as(p))


def make_net(arch, weights):
    import torch

    torch.manual_seed(0)
    if arch == "bvlc":
        net = bvlc_googlenet()
        if BVLC_WEIGHTS.exists():
            load_bvlc_weights(net, BVLC_WEIGHTS)
        return net
    import torchvision

    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    if weights:  # the same weights as the C++ bench (torchvision's own init fades to ~1e-12,
        # where denormal arithmetic could distort timings)
        net.load_state_dict(torch.load(weights), strict=False)
    return net


def count_flops(arch):
    """Forward MACs per 224x224 image of conv and fc layers, by kind -> {kind: GFLOP (2 x MAC)}."""
    import torch

    net = make_net(arch, "").eval()
    kinds = {}

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            kind = f"conv {m.kernel_size[0]}x{m.kernel_size[1]}"
            macs = out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        else:
            kind, macs = "fc", out.numel() * m.in_features
        kinds[kind] = kinds.get(kind, 0.0) + 2e-9 * macs

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    return kinds


def profile_steps(step, steps=2):
    """Self time per operator over `steps` steps under the autograd profiler, convolutions keyed
    by kernel size like bench_model --profile -> {"wall_ms": per step, "rows": [(key, ms/step)]}."""
    import torch

    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - start
    rows = {}
    for e in prof.key_averages(group_by_input_shape=True):
        key = e.key
        if "conv" in key:
            w = 2 if "backward" in key else 1
            shapes = e.input_shapes or []
            if len(shapes) > w and len(shapes[w]) == 4:
                key += f" [{shapes[w][2]}x{shapes[w][3]}]"
        rows[key] = rows.get(key, 0.0) + e.self_cpu_time_total / 1e3 / steps
    return {"wall_ms": 1e3 * wall / steps, "rows": sorted(rows.items(), key=lambda r: -r[1])}


def measure(arch, impl, mode, threads, batch, min_time, min_iters, layout, weights, profile=False):
    """Runs one measurement in this process; returns a dict of results."""
    import torch

    torch.set_num_threads(threads)
    net = make_net(arch, weights)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, 224, 224) * 4 - 2
    labels = torch.randint(0, 1000, (batch,))
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    if mode == "infer":
        net.eval()
        if impl == "frozen":
            with torch.no_grad():
                net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))

        def step():
            with torch.no_grad():
                net(x)
    else:
        if impl != "eager":
            raise ValueError("training runs in eager mode only")
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x), labels).backward()
            opt.step()

    step()  # warm-up: oneDNN primitive creation, allocator (and the JIT's profiling runs)
    if impl == "frozen":
        step()
    if profile:
        return profile_steps(step)
    iters, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        iters += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and iters >= min_iters:
            break
    cpu = time.process_time() - cpu_start
    return {
        "arch": arch,
        "impl": impl,
        "mode": mode,
        "layout": layout,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "iterations": iters,
        "seconds": elapsed,
        "images_per_s": batch * iters / elapsed,
        "images_per_cpu_s": batch * iters / cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def run_child(args, arch, impl, mode, layout):
    """One measurement in its own process (its own ru_maxrss, no JIT or allocator state shared)."""
    cmd = [sys.executable, __file__, "--child", mode, "--arch", arch, "--impl", impl,
           "--layout", layout, "--threads", str(args.threads), "--batch", str(args.batch),
           "--min-time", str(args.min_time), "--min-iters", str(args.min_iters),
           "--weights", args.weights]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["who"] = f"{arch} (PyTorch {impl})"
    return r


def peer_configs(archs, layouts, impls, modes=("infer", "train")):
    """(arch, impl, mode, layout) for every peer measurement; frozen TorchScript infers only."""
    return [(a, i, m, l) for a in archs for m in modes for i in impls for l in layouts
            if not (i == "frozen" and m == "train")]


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
            "who": f"{parts[1]} (ours, C++)", "arch": parts[1], "impl": "ours",
            "mode": parts[0].replace("BM_", "").lower(), "layout": parts[2],
            "images_per_s": b.get("items_per_second", 0.0),
            "images_per_cpu_s": b.get("images_per_cpu_s", 0.0),
            "peak_rss_mb": b.get("peak_rss_mb", 0.0), "error": b.get("error_message", ""),
        })
    return rows, data.get("context", {})


def fastest_peer(rows, key):
    """{(arch, mode): the peer row with the highest `key`} over the PyTorch rows."""
    best = {}
    for r in rows:
        if r.get("impl") == "ours" or r.get("error"):
            continue
        k = (r["arch"], r["mode"])
        if k not in best or r[key] > best[k][key]:
            best[k] = r
    return best


def print_table(rows):
    """Each row against the fastest PyTorch row of the same architecture and mode."""
    wall, cpu = fastest_peer(rows, "images_per_s"), fastest_peer(rows, "images_per_cpu_s")
    print("| program | mode | setup | images/s | × fastest peer | images/CPU-s | × fastest peer | peak RSS MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.get("error"):
            print(f"| {r['who']} | {r['mode']} | {r['layout']} | failed: {r['error']} | | | | |")
            continue
        k = (r["arch"], r["mode"])
        w = r["images_per_s"] / wall[k]["images_per_s"] if k in wall else float("nan")
        c = r["images_per_cpu_s"] / cpu[k]["images_per_cpu_s"] if k in cpu else float("nan")
        print(f"| {r['who']} | {r['mode']} | {r['layout']} | {r['images_per_s']:.2f} | {w:.2f} | "
              f"{r['images_per_cpu_s']:.2f} | {c:.2f} | {r['peak_rss_mb']:.0f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--min-time", type=float, default=8.0, help="seconds per measurement (default 8)")
    p.add_argument("--min-iters", type=int, default=3, help="at least this many steps (default 3)")
    p.add_argument("--archs", default="torchvision", help="comma list of torchvision,bvlc (default torchvision)")
    p.add_argument("--impls", default="eager", help="comma list of eager,frozen (default eager)")
    p.add_argument("--layouts", default="nchw", help="comma list of nchw,channels_last (default nchw)")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else "",
                   help="torchvision state_dict to load (default: ../shared fixture; '' = random init)")
    p.add_argument("--cpp-json", help="bench_model JSON output to compare against")
    p.add_argument("--json", help="write the baseline results here")
    p.add_argument("--flops", action="store_true", help="print forward GFLOP per image by layer kind and exit")
    p.add_argument("--child", choices=["infer", "train"], help=argparse.SUPPRESS)
    p.add_argument("--arch", default="torchvision", help=argparse.SUPPRESS)
    p.add_argument("--impl", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--layout", default="nchw", help=argparse.SUPPRESS)
    p.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.flops:
        for arch in args.archs.split(","):
            kinds = count_flops(arch)
            detail = ", ".join(f"{k} {v:.3f}" for k, v in sorted(kinds.items()))
            print(f"{arch}: {sum(kinds.values()):.3f} GFLOP/image forward ({detail})")
        return
    if args.child:
        print(json.dumps(measure(args.arch, args.impl, args.child, args.threads, args.batch,
                                 args.min_time, args.min_iters, args.layout, args.weights,
                                 args.profile_child)))
        return

    base = [run_child(args, *c) for c in peer_configs(args.archs.split(","), args.layouts.split(","),
                                                       args.impls.split(","))]
    print(f"baseline: PyTorch {base[0]['torch']} from Python, batch {args.batch}, "
          f"{base[0]['threads']} threads, load average before/after {base[0]['load']} / {base[-1]['load']}")
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
    print_table(rows)


if __name__ == "__main__":
    main()

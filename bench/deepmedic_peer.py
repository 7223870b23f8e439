#!/usr/bin/env python3
"""DeepMedic inference in plain PyTorch, as a peer for `gliomagrade segment` (issue 19).

The same network (CaPTk 1.9's DeepMedic 0.7.4 BraTS model, read from its TensorFlow 1 checkpoint
by the small bundle reader below, no TensorFlow needed), the same preprocessing (CaPTk's z-score)
and the same inference choices as our C++ default (src/segment/segment.cpp,
src/cli/cmd_segment.cpp): 45^3 output tiles (61^3 input segments), batch 1, tiles holding only
background skipped. Parity on the BraTS sample: the same label map voxel for voxel.

What it does:
  1. parity: runs ours (the CLI) and the peer once each, prints whole-tumour and per-label Dice
     between the two label maps and against the reference fixture of an independent
     implementation (../shared/fixtures/deepmedic/);
  2. timing: K interleaved rounds of ours and the peer (each a child process, so wall time and
     peak RSS, from wait4's rusage, are each its own), the same thread count for both; prints a
     markdown table with the machine and the load average before each run.

    /usr/bin/python3 bench/deepmedic_peer.py --threads 2 --rounds 2
    /usr/bin/python3 bench/deepmedic_peer.py --rounds 0            # parity only
    /usr/bin/python3 bench/deepmedic_peer.py --run-peer --out DIR  # the peer alone (what is timed)

Needs numpy and torch (Debian's python3-torch, the same libtorch_cpu 1.13 as our build); reads
NIfTI with the minimal reader below (nibabel is not needed).
"""
import argparse
import ast
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEFAULT_CASE = SHARED / "data/brats-sample/HGG/BraTS19_2013_10_1"
DEFAULT_MODEL = SHARED / "weights/deepmedic-brats-captk"
DEFAULT_FIXTURE = SHARED / "fixtures/deepmedic/BraTS19_2013_10_1_deepmedic_labels.nii.gz"
SEQUENCES = ("t1", "t1ce", "t2", "flair")  # DeepMedic's channel order in CaPTk's model


# --- NIfTI-1 ------------------------------------------------------------------------------------

NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}


def _nifti_header(raw):
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    if struct.unpack(endian + "i", raw[:4])[0] != 348:
        raise ValueError("not a NIfTI-1 file")
    h = {"endian": endian}
    h["dim"] = struct.unpack(endian + "8h", raw[40:56])
    h["datatype"] = struct.unpack(endian + "h", raw[70:72])[0]
    h["pixdim"] = struct.unpack(endian + "8f", raw[76:108])
    h["vox_offset"] = int(struct.unpack(endian + "f", raw[108:112])[0])
    h["scl_slope"], h["scl_inter"] = struct.unpack(endian + "2f", raw[112:120])
    h["qform_code"], h["sform_code"] = struct.unpack(endian + "2h", raw[252:256])
    h["quatern"] = struct.unpack(endian + "6f", raw[256:280])
    h["srow"] = np.array(struct.unpack(endian + "12f", raw[280:328]), np.float64).reshape(3, 4)
    return h


def _direction_lps(h):
    """3x3 direction cosines (columns: stored axes) in ITK's LPS frame."""
    if h["sform_code"] > 0:
        m = h["srow"][:, :3] / np.linalg.norm(h["srow"][:, :3], axis=0)
    elif h["qform_code"] > 0:
        b, c, d = h["quatern"][:3]
        a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
        m = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])
        if h["pixdim"][0] < 0:  # qfac
            m[:, 2] *= -1
    else:
        m = np.diag([-1.0, -1.0, 1.0])  # method 1: no orientation; ITK reads it as RAS
    return np.diag([-1.0, -1.0, 1.0]) @ m  # RAS -> LPS


def _canonical_layout(h):
    """Which stored axis becomes canonical x, y, z and whether it is flipped: our C++ io
    (volume.cpp canonical_layout, as ITK's OrientImageFilter) reorients every volume to LPS+ by
    permuting and flipping axes, and DeepMedic's convolutions and tiling are not invariant to
    that, so the peer works in the same frame."""
    d = _direction_lps(h)
    axis_of, flip = [None] * 3, [False] * 3
    for c in range(3):
        r = int(np.argmax(np.abs(d[:, c])))
        axis_of[r], flip[r] = c, bool(d[r, c] < 0)
    return axis_of, flip


def _flips(flip):
    return tuple(slice(None, None, -1) if f else slice(None) for f in flip)


def read_nifti(path):
    """A 3-D NIfTI-1 (.nii or .nii.gz) as a float32 array indexed [x, y, z] in LPS+ (ours'
    canonical frame), with the header bytes and layout to write a label map back."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    h = _nifti_header(raw)
    if h["dim"][0] < 3 or any(n > 1 for n in h["dim"][4:1 + h["dim"][0]]):
        raise ValueError(f"{path}: not a 3-D volume")
    shape = h["dim"][1:4]
    dtype = np.dtype(h["endian"] + NIFTI_DTYPES[h["datatype"]])
    count = int(np.prod(shape))
    data = np.frombuffer(raw, dtype, count, h["vox_offset"]).reshape(shape, order="F")
    data = data.astype(np.float32)
    if h["scl_slope"] != 0 and (h["scl_slope"] != 1 or h["scl_inter"] != 0):
        data = data * np.float32(h["scl_slope"]) + np.float32(h["scl_inter"])
    axis_of, flip = _canonical_layout(h)
    data = np.transpose(data, axis_of)
    data = np.ascontiguousarray(data[_flips(flip)])
    return data, {"header": raw[:348], "axis_of": axis_of, "flip": flip}


def write_labels_nifti(path, labels, like):
    """int16 label map on the grid of `like` (read_nifti's second result), stored as that file."""
    flip = like["flip"]
    stored = labels[_flips(flip)]
    stored = np.transpose(stored, np.argsort(like["axis_of"]))
    hdr = bytearray(like["header"])
    e = _nifti_header(bytes(hdr))["endian"]
    struct.pack_into(e + "2h", hdr, 70, 4, 16)          # datatype int16, bitpix 16
    struct.pack_into(e + "3f", hdr, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    body = stored.astype(e + "i2").tobytes(order="F")
    tmp = Path(str(path) + ".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(bytes(hdr) + b"\0\0\0\0" + body)
    tmp.replace(path)


# --- TensorFlow 1 checkpoint (tensor bundle) -----------------------------------------------------
# The .index file is a LevelDB table (google/leveldb doc/table_format.md): data blocks, a metaindex
# block, an index block and a 48-byte footer. Its keys are tensor names, its values
# BundleEntryProto (tensorflow/core/protobuf/tensor_bundle.proto); the tensors are raw
# little-endian arrays in the .data file at the entry's offset. As src/segment/tf_checkpoint.cpp.

TABLE_MAGIC = 0xDB4775248B80FB57


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c_masked(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF  # leveldb's mask


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf):
    """(field number, wire type, value) of a protobuf message; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")
        yield number, wire, value


def _block(index, offset, size):
    """A block's contents after checking its 5-byte trailer (type 0: uncompressed, crc32c)."""
    contents, kind = index[offset:offset + size], index[offset + size]
    (crc,) = struct.unpack_from("<I", index, offset + size + 1)
    if crc != crc32c_masked(index[offset:offset + size + 1]):
        raise ValueError(f"checkpoint index: block at {offset} fails its crc32c")
    if kind != 0:
        raise ValueError("checkpoint index: compressed block (TF bundles are not)")
    return contents


def _block_entries(block):
    """(key, value) pairs of a block; keys are prefix-compressed against the previous key and
    the restart array at the end (fixed32 offsets, fixed32 count) is not needed to read in order."""
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_tf_checkpoint(prefix, check_crc=False):
    """{tensor name: float32 ndarray} of a single-shard TF1 checkpoint. Block crcs are always
    checked; tensor crcs (pure Python, ~2 s for 4 MB) only when asked."""
    index = Path(str(prefix) + ".index").read_bytes()
    data = Path(str(prefix) + ".data-00000-of-00001").read_bytes()
    (magic,) = struct.unpack_from("<Q", index, len(index) - 8)
    if magic != TABLE_MAGIC:
        raise ValueError(f"{prefix}.index: not a TensorFlow checkpoint index")
    footer = index[-48:]
    _, pos = _varint(footer, 0)  # metaindex handle (offset, size): nothing in it for a bundle
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    tensors = {}
    for _, handle in _block_entries(_block(index, index_offset, index_size)):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_block(index, offset, size)):
            if key == b"":
                continue  # BundleHeaderProto (num_shards 1, endianness, version)
            dtype, shape, t_offset, t_size, crc = None, [], 0, 0, None
            for number, _, v in _proto_fields(value):
                if number == 1:
                    dtype = v
                elif number == 2:  # TensorShapeProto: dim (2) { size (1) }
                    shape += [dict((n, x) for n, _, x in _proto_fields(dim)).get(1, 0)
                              for n2, _, dim in _proto_fields(v) if n2 == 2]
                elif number == 3 and v != 0:
                    raise ValueError("sharded checkpoints are not supported")
                elif number == 4:
                    t_offset = v
                elif number == 5:
                    t_size = v
                elif number == 6:
                    crc = v
            if dtype != 1:  # DT_FLOAT only; DeepMedic stores nothing else we need
                continue
            raw = data[t_offset:t_offset + t_size]
            if len(raw) != 4 * int(np.prod(shape)):
                raise ValueError(f"tensor {key.decode()}: {len(raw)} bytes for shape {shape}")
            if check_crc and crc32c_masked(raw) != crc:
                raise ValueError(f"tensor {key.decode()} fails its crc32c")
            tensors[key.decode()] = np.frombuffer(raw, "<f4").reshape(shape)
    return tensors


# --- modelConfig.txt -----------------------------------------------------------------------------

def read_model_config(path):
    """DeepMedic exec()s its config; CaPTk's holds only literal assignments, read safely here.
    Defaults as DeepMedic 0.7.4's modelParams.py (only the keys this model needs)."""
    tree = ast.parse(Path(path).read_text())
    cfg = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            cfg[node.targets[0].id] = ast.literal_eval(node.value)
    factors = cfg.get("subsampleFactor", [3, 3, 3])
    factors = factors if isinstance(factors[0], list) else [factors]
    sub_fms = cfg.get("numberFMsPerLayerSubsampled", cfg["numberFMsPerLayerNormal"])
    sub_fms = sub_fms if isinstance(sub_fms[0], list) else [sub_fms]
    while len(sub_fms) < len(factors):
        sub_fms.append(sub_fms[-1])
    if not cfg.get("useSubsampledPathway", False):
        factors, sub_fms = [], []
    fc_fms = cfg.get("numberFMsPerLayerFC", []) + [cfg["numberOfOutputClasses"]]
    fc_drop = cfg.get("dropoutRatesFc") or [0.0] + [0.5] * (len(fc_fms) - 1)
    fc_kernels = [cfg.get("kernelDimFor1stFcLayer", [1, 1, 1])] + [[1, 1, 1]] * (len(fc_fms) - 1)
    return {
        "classes": cfg["numberOfOutputClasses"],
        "channels": cfg["numberOfInputChannels"],
        "normal": dict(fms=cfg["numberFMsPerLayerNormal"], kernels=cfg["kernelDimPerLayerNormal"],
                       residual=cfg.get("layersWithResidualConnNormal", []),
                       dropout=cfg.get("dropoutRatesNormal", [])),
        "subsampled": [dict(fms=fms, kernels=cfg.get("kernelDimPerLayerSubsampled",
                                                     cfg["kernelDimPerLayerNormal"]),
                            residual=cfg.get("layersWithResidualConnSubsampled",
                                             cfg.get("layersWithResidualConnNormal", [])),
                            dropout=cfg.get("dropoutRatesSubsampled", []))
                       for fms in sub_fms],
        "factors": [f[0] for f in factors],  # cubic factors (3 and 5 here)
        "fc": dict(fms=fc_fms, kernels=fc_kernels,
                   residual=cfg.get("layersWithResidualConnFC", []), dropout=fc_drop),
        "rolling": cfg.get("rollAverageForBNOverThatManyBatches", 60),
        "rf": 1 + sum(k[0] - 1 for k in cfg["kernelDimPerLayerNormal"]),  # 17
    }


# --- the network ---------------------------------------------------------------------------------

def build_network(cfg, tensors):
    """DeepMedic 0.7.4's network (deepmedic/neuralnet/{cnn3d,pathways,layers,ops}.py) with the
    checkpoint's weights. Tensor names are TF's creation order ("net/W", "net/W_1", ...): per
    layer, pathway by pathway (normal, subsampled..., FC), BN layers create gBn, bBn and the
    rolling mu/var arrays, the others a bias b; PReLU layers then aPrelu; each layer last its W."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    counters = {}

    def take(base):
        i = counters.get(base, 0)
        counters[base] = i + 1
        return torch.from_numpy(tensors["net/" + base + (f"_{i}" if i else "")].copy())

    class ConvLayer(nn.Module):
        """Pre-activation layer (layers.py ConvLayer, 'ala He et al., Identity Mappings'):
        BN (or, in a pathway's first layer, a bias on the input) -> PReLU -> dropout -> conv."""

        def __init__(self, c_in, c_out, kernel, use_bn, prelu, drop_rate):
            super().__init__()
            if use_bn:
                # ops.py applyBn at inference: the means of the rolling mu/var arrays of the last
                # 60 training batches, (x - mu) / sqrt(var + tiny) * g + b: BatchNorm3d's eval.
                self.norm = nn.BatchNorm3d(c_in, eps=float(np.finfo(np.float32).tiny))
                self.norm.weight.copy_(take("gBn"))
                self.norm.bias.copy_(take("bBn"))
                self.norm.running_mean.copy_(take("muBnsForRollingAverage").mean(0))
                self.norm.running_var.copy_(take("varBnsForRollingAverage").mean(0))
                self.bias = None
            else:
                self.norm, self.bias = None, nn.Parameter(take("b").view(1, -1, 1, 1, 1))
            self.act = None
            if prelu:
                self.act = nn.PReLU(c_in)
                self.act.weight.copy_(take("aPrelu"))
            # ops.py applyDropout is not inverted: at inference it scales by the keep probability
            # (rates <= 0.001 count as none). nn.Dropout would be the identity in eval: wrong here.
            self.keep = 1.0 - drop_rate if drop_rate > 0.001 else 1.0
            self.conv = nn.Conv3d(c_in, c_out, kernel, bias=False)
            self.conv.weight.copy_(take("W"))  # TF's [out, in, r, c, z] on our [x, y, z] arrays

        def forward(self, x):
            x = self.norm(x) if self.norm is not None else x + self.bias
            if self.act is not None:
                x = self.act(x)
            if self.keep != 1.0:
                x = x * self.keep
            return self.conv(x)

    def centre_crop(x, like):
        # pathways.py getMiddlePartOfFms: when the difference is odd, one voxel left of centre.
        s = [(x.shape[d] - 1) // 2 - (like.shape[d] - 1) // 2 for d in (2, 3, 4)]
        n = like.shape[2:]
        return x[:, :, s[0]:s[0] + n[0], s[1]:s[1] + n[1], s[2]:s[2] + n[2]]

    class Pathway(nn.Module):
        def __init__(self, p, c_in, is_fc):
            super().__init__()
            layers = []
            for i, (fms, k) in enumerate(zip(p["fms"], p["kernels"])):
                drop = p["dropout"][i] if p["dropout"] else 0.0
                # The first layer of the normal/subsampled pathways: no BN, linear activation.
                first_plain = i == 0 and not is_fc
                layers.append(ConvLayer(c_in, fms, k, use_bn=not first_plain,
                                        prelu=not first_plain, drop_rate=drop))
                c_in = fms
            self.layers = nn.ModuleList(layers)
            self.residual = {n - 1 for n in p["residual"]}  # config counts layers from 1

        def forward(self, x):
            previous_input = None
            for i, layer in enumerate(self.layers):
                y = layer(x)
                if i in self.residual:
                    # pathways.py makeResidualConnection: add the centre of layer i-1's input,
                    # its channels zero-padded to this layer's.
                    r = centre_crop(previous_input, y)[:, :y.shape[1]]
                    y[:, :r.shape[1]] += r
                previous_input, x = x, y
            return x

    class DeepMedic(nn.Module):
        def __init__(self):
            super().__init__()
            self.normal = Pathway(cfg["normal"], cfg["channels"], False)
            self.subsampled = nn.ModuleList(Pathway(p, cfg["channels"], False)
                                            for p in cfg["subsampled"])
            self.factors = cfg["factors"]
            concat = cfg["normal"]["fms"][-1] + sum(p["fms"][-1] for p in cfg["subsampled"])
            self.fc = Pathway(cfg["fc"], concat, True)
            self.class_bias = nn.Parameter(take("b").view(1, -1, 1, 1, 1))  # layers.py SoftmaxLayer
            k = cfg["fc"]["kernels"][0]
            assert all(n in (1, 3) for n in k), "mirror padding coded for kernels of 1 or 3"
            self.fc_pad = [n // 2 for n in reversed(k) for _ in (0, 1)]

        def forward(self, normal, subsampled):
            x = self.normal(normal)
            features = [x]
            for path, f, s in zip(self.subsampled, self.factors, subsampled):
                # pathways.py repeatRcz5DimArrayByFactor: nearest upsampling by the factor, then
                # the first voxels, as many as the normal pathway's output.
                y = F.interpolate(path(s), scale_factor=f, mode="nearest")
                features.append(y[:, :, :x.shape[2], :x.shape[3], :x.shape[4]])
            x = torch.cat(features, 1)
            # cnn3d.py padImageWithMirroring before the 3x3x3 first FC layer: mirroring with the
            # edge voxel included; for one voxel per side that is 'replicate'.
            x = F.pad(x, self.fc_pad, mode="replicate")
            return torch.softmax(self.fc(x) + self.class_bias, 1)

    with torch.no_grad():
        net = DeepMedic().eval()
    net.cfg = cfg
    return net


# --- CaPTk's preprocessing ----------------------------------------------------------------------

def zscore_like_captk(v):
    """CaPTk's DeepMedic.cxx -> ZScoreNormalizer (quantiles 5/95, cut-offs 3 SD, no mask): over
    the brain (voxels > 0), bounds max(min, q5, mean-3sd) .. min(max, q95, mean+3sd); mean and SD
    of the brain voxels within them; every voxel (background too) becomes (x - mean) / sd.
    A channel whose whole-image mean is 0 is taken as already normalised (CaPTk)."""
    if v.sum(dtype=np.float64) == 0:
        return v
    brain = v[v > 0].astype(np.float64)
    # 'lower': the order statistic floor(p*(n-1)), as ours' nth_element (CaPTk: ITK histogram)
    q5, q95 = np.quantile(brain, [0.05, 0.95], method="lower")
    lower = max(brain.min(), q5, brain.mean() - 3 * brain.std())
    upper = min(brain.max(), q95, brain.mean() + 3 * brain.std())
    kept = brain[(brain >= lower) & (brain <= upper)]
    return ((v - np.float32(kept.mean())) * np.float32(1.0 / kept.std())).astype(np.float32)


# --- DeepMedic's tiling (deepmedic/routines/testing.py, dataManagement/sampling.py) --------------

def segment_starts(size, segment, stride):
    """sampling.py getCoordsOfAllSegmentsOfAnImage: segments moving by the voxels each classifies,
    the last one shifted back to end at the edge."""
    starts, nxt = [], 0
    while True:
        far = min(nxt + segment, size)
        starts.append(far - segment)
        if far >= size:
            return starts
        nxt += stride


def subsampled_slice(start, out, rf, f, part, size):
    """sampling.py getImagePartFromSubsampledImageForTraining along one axis: every f-th voxel
    around the segment (its centre voxel of each f-block), as (source slice, destination slice)
    into a part of `part` voxels; where the part starts before the image DeepMedic shifts the
    samples to start at voxel 0 (kept: it is what the model was run with)."""
    slots_before = (f - 1) // 2 * rf if f % 2 else (f - 2) // 2 * rf + rf // 2
    to_centre = f // 2 if f % 2 else f // 2 - 1
    low = start + to_centre - slots_before
    high = low + f * rf + (out - 1) // f * f
    low_c, high_c = max(low, 0), min(high, size)
    put = 0 if low >= 0 else -low // f
    count = min(max(0, -(-(high_c - low_c) // f)), part - put)
    return slice(low_c, low_c + count * f, f), slice(put, put + count)


def segment_volume(net, zs, background, out_tile=45, skip_background=True, batch=1):
    """Labels (BraTS 0/1/2/4) of `zs`, the z-scored channels ([C, x, y, z] float32), with
    `background` ([x, y, z] bool) where all original channels are 0; also the number of tiles
    and of tiles run. DeepMedic's inference as ours (segment.cpp):
      - preprocessing.py padCnnInputs: reflect padding, (rf-1)/2 before, the rest after (more
        after if the segment exceeds the padded image);
      - input segments of out+rf-1 voxels moving by `out`; the classified cube starts (rf-1)/2
        into the segment; later tiles overwrite the overlap (testing.py);
      - subsampled pathways: every f-th voxel around the segment, outside the image the mean of
        the padded volume's 8 corners (preprocessing.py calculateTheZeroIntensityOf3dImage);
      - voxels never written (skipped background tiles) keep class 0 with probability 1;
      - arg-max (first maximum wins), class 3 -> BraTS label 4 (CaPTk)."""
    import torch

    rf, n_classes = net.cfg["rf"], net.cfg["classes"]
    size = zs.shape[1:]
    inp, h = out_tile + rf - 1, (rf - 1) // 2
    pad = [(0, 0)] + [(h, rf - 1 - h + max(0, inp - (n + rf - 1))) for n in size]
    padded = np.pad(zs, pad, mode="reflect")
    bg = np.pad(background, pad[1:], mode="reflect")
    psize = padded.shape[1:]
    fill = padded[:, [0, -1]][:, :, [0, -1]][:, :, :, [0, -1]].reshape(len(zs), 8).mean(1)
    parts = [rf + (out_tile + f - 1) // f - 1 for f in net.factors]  # pathways.py input dims

    probs = np.zeros((n_classes,) + psize, np.float32)
    probs[0] = 1.0
    starts = [segment_starts(n, inp, out_tile) for n in psize]
    tiles = [(x, y, z) for z in starts[2] for y in starts[1] for x in starts[0]]
    if skip_background:  # ours' default (cmd_segment.cpp); DeepMedic does this given a ROI mask
        tiles = [(x, y, z) for x, y, z in tiles
                 if not bg[x:x + inp, y:y + inp, z:z + inp].all()]

    def inputs(t):
        normal = padded[:, t[0]:t[0] + inp, t[1]:t[1] + inp, t[2]:t[2] + inp]
        subs = []
        for f, m in zip(net.factors, parts):
            sl = [subsampled_slice(s, out_tile, rf, f, m, n) for s, n in zip(t, psize)]
            part = np.broadcast_to(fill[:, None, None, None], (len(zs), m, m, m)).copy()
            part[:, sl[0][1], sl[1][1], sl[2][1]] = padded[:, sl[0][0], sl[1][0], sl[2][0]]
            subs.append(part)
        return normal, subs

    with torch.inference_mode():
        for b in range(0, len(tiles), batch):
            chunk = tiles[b:b + batch]
            ins = [inputs(t) for t in chunk]
            normal = torch.from_numpy(np.stack([i[0] for i in ins]))
            subs = [torch.from_numpy(np.stack([i[1][p] for i in ins])) for p in range(len(parts))]
            out = net(normal, subs).numpy()
            for t, o in zip(chunk, out):
                probs[:, t[0] + h:t[0] + h + out_tile, t[1] + h:t[1] + h + out_tile,
                      t[2] + h:t[2] + h + out_tile] = o
    probs = probs[:, h:h + size[0], h:h + size[1], h:h + size[2]]
    labels = probs.argmax(0).astype(np.uint8)
    labels[labels == 3] = 4
    return labels, len(starts[0]) * len(starts[1]) * len(starts[2]), len(tiles)


def case_paths(case):
    """--case is a BraTS case folder or a path prefix ('.../BraTS19_x_' or '.../BraTS19_x')."""
    case = Path(case)
    prefix = case / case.name if case.is_dir() else case
    p = str(prefix).rstrip("_")
    return {s: Path(f"{p}_{s}.nii.gz") for s in SEQUENCES}


def run_peer(args):
    """The timed peer: read, preprocess, segment, write labels.nii.gz; prints its own JSON."""
    import torch

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    paths = case_paths(args.case)
    volumes, like = [], None
    for s in SEQUENCES:
        v, meta = read_nifti(paths[s])
        volumes.append(v)
        like = meta if s == "flair" else like  # ours writes on FLAIR's grid
    cfg = read_model_config(Path(args.model) / "modelConfig.txt")
    net = build_network(cfg, read_tf_checkpoint(Path(args.model) / "model.ckpt", args.check_crc))
    t_read = time.perf_counter()
    background = np.all(np.stack(volumes) == 0, axis=0)
    zs = np.stack([zscore_like_captk(v) for v in volumes])
    t_pre = time.perf_counter()
    labels, tiles, run = segment_volume(net, zs, background, args.tile, not args.all_tiles)
    t_net = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_labels_nifti(out / "labels.nii.gz", labels, like)
    t_end = time.perf_counter()
    report = dict(seconds=dict(read=t_read - t0, preprocess=t_pre - t_read, network=t_net - t_pre,
                               write=t_end - t_net),
                  tiles=tiles, tiles_skipped=tiles - run, threads=torch.get_num_threads(),
                  torch=torch.__version__)
    (out / "peer.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


# --- the benchmark -------------------------------------------------------------------------------

def dice(a, b, label=None):
    x, y = (a > 0, b > 0) if label is None else (a == label, b == label)
    n = x.sum() + y.sum()
    return 1.0 if n == 0 else 2.0 * np.logical_and(x, y).sum() / n


def run_child(cmd):
    """Runs cmd as a child, reaped with wait4 so its rusage (peak RSS, CPU time) is its alone:
    wall and CPU seconds (user + sys, and sys), minor page faults, peak RSS in GiB, the 1-min
    load average just before, and its output."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        log.seek(0)
        text = log.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(map(str, cmd))}\n{text[-3000:]}")
    return dict(wall=wall, cpu=usage.ru_utime + usage.ru_stime, sys=usage.ru_stime,
                faults=usage.ru_minflt, rss_gib=usage.ru_maxrss * 1024 / 2**30, load=load,
                log=text)


def machine():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def benchmark(args):
    paths = case_paths(args.case)
    work = Path(tempfile.mkdtemp(prefix="deepmedic_peer_"))
    tiling = ["--tile", str(args.tile)] + (["--all-tiles"] if args.all_tiles else [])
    ours_cmd = lambda out: [args.ours, "-q", "--threads", str(args.threads), "segment",
                            "--t1", paths["t1"], "--t1ce", paths["t1ce"], "--t2", paths["t2"],
                            "--flair", paths["flair"], "--model", args.model, "--out", out] + tiling
    peer_cmd = lambda out: [sys.executable, __file__, "--run-peer", "--case", args.case,
                            "--model", args.model, "--threads", str(args.threads),
                            "--out", out] + tiling
    voxels = int(np.prod(read_nifti(paths["flair"])[0].shape))
    cpu = machine()
    print(f"machine: {cpu}, {os.cpu_count()} logical CPUs; threads {args.threads}; "
          f"case {paths['flair'].parent} ({voxels} voxels)")

    # 1. parity (these runs also warm the page cache; they are not in the table)
    runs = {"ours": run_child(ours_cmd(work / "ours0")),
            "peer": run_child(peer_cmd(work / "peer0"))}
    ours = read_nifti(work / "ours0/labels.nii.gz")[0]
    peer = read_nifti(work / "peer0/labels.nii.gz")[0]
    print(f"\nparity (untimed warm-up runs: ours {runs['ours']['wall']:.1f} s, "
          f"peer {runs['peer']['wall']:.1f} s)")
    print("| peer vs | whole tumour | label 1 | label 2 | label 4 | voxels differing |")
    print("|---|---|---|---|---|---|")
    refs = [("ours", ours)]
    if Path(args.fixture).exists():
        refs.append(("reference fixture", read_nifti(args.fixture)[0]))
    for name, ref in refs:
        print(f"| {name} | {dice(peer, ref):.4f} | {dice(peer, ref, 1):.4f} | "
              f"{dice(peer, ref, 2):.4f} | {dice(peer, ref, 4):.4f} | {int((peer != ref).sum())} |")
    if len(refs) > 1:
        print(f"(ours vs reference fixture: whole tumour {dice(ours, refs[1][1]):.4f})")
    if dice(peer, ours) < 0.99:
        sys.exit("parity failed: the peer does not compute what ours does; not timing it")

    # 2. timing, interleaved; ours first in odd rounds, the peer first in even ones
    rows = []
    for k in range(1, args.rounds + 1):
        order = ["ours", "peer"] if k % 2 else ["peer", "ours"]
        res = {}
        for who in order:
            out = work / f"{who}{k}"
            r = run_child(ours_cmd(out) if who == "ours" else peer_cmd(out))
            # each reports its own network seconds (tiles only, no I/O or preprocessing)
            report = out / ("segmentation.json" if who == "ours" else "peer.json")
            r["network"] = json.loads(report.read_text())["seconds"]["network"]
            r["first"] = who == order[0]
            res[who] = r
        rows.append((k, res))
    print(f"\ntiming: {cpu}, --threads {args.threads}, {voxels} voxels. wall: the whole process "
          "(read, preprocess, network, write); CPU: its user + sys (sys in brackets), less "
          "sensitive than wall to other load; load: 1-min load average before the run")
    print("| round | impl (* ran first) | wall s | network s | CPU s (sys) | minor faults "
          "| peak GiB | voxels/s | load | peer/ours wall | peer/ours CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, res in rows:
        ratios = (f"{res['peer']['wall'] / res['ours']['wall']:.2f} | "
                  f"{res['peer']['cpu'] / res['ours']['cpu']:.2f}")
        for who in ("ours", "peer"):
            r = res[who]
            print(f"| {k} | {who}{' *' if r['first'] else ''} | {r['wall']:.1f} | "
                  f"{r['network']:.1f} | {r['cpu']:.1f} ({r['sys']:.1f}) | "
                  f"{r['faults'] / 1e6:.1f}M | {r['rss_gib']:.2f} | "
                  f"{voxels / r['wall'] / 1e3:.0f}k | {r['load']:.2f} | "
                  f"{ratios if who == 'peer' else ' | '} |")
    if rows:
        best = {w: min(r[w]["wall"] for _, r in rows) for w in ("ours", "peer")}
        print(f"\nbest of {len(rows)}: ours {best['ours']:.1f} s, peer {best['peer']:.1f} s, "
              f"peer/ours {best['peer'] / best['ours']:.2f}")
    print(f"outputs in {work}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", default=str(DEFAULT_CASE), help="BraTS case folder or file prefix")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--fixture", default=str(DEFAULT_FIXTURE), help="reference label map")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours", default=str(REPO / "build/gliomagrade"))
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds (0: parity only)")
    ap.add_argument("--tile", type=int, default=45, help="output tile edge (ours' default 45)")
    ap.add_argument("--all-tiles", action="store_true", help="also run background-only tiles")
    ap.add_argument("--check-crc", action="store_true", help="check tensor crc32c (slow in Python)")
    ap.add_argument("--run-peer", action="store_true", help="run the peer once (what is timed)")
    ap.add_argument("--out", help="output folder of --run-peer")
    args = ap.parse_args()
    if args.run_peer:
        if not args.out:
            ap.error("--run-peer needs --out")
        run_peer(args)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()

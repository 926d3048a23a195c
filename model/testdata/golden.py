#!/usr/bin/python3
"""Generate the golden files of package model's tests.

An independent NumPy implementation of the BiT forward pass (ResNet-v2,
GroupNorm, Weight Standardization) computed in float64 from float32 weights.
It writes, next to this script:

  tiny.npz                 seeded weights of the "tiny" config (10 classes), in
                           the official key names and HWIO layout, written with
                           numpy.savez_compressed (deflated members)
  x32.npy, x40.npy         inputs [2,3,32,32] and [1,3,40,40] in [-1, 1]
  logits32.npy, ...        expected logits [N,10] and features [N,256]
  npy/*.npy, stored.npz,    small files written by NumPy for the format tests
  deflated.npz, ...        and the fuzz seeds

Run it from anywhere with Debian's python3-numpy: /usr/bin/python3 golden.py
The output is deterministic for a given NumPy version (1.24 made these).
"""

import io
import os
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# The "tiny" configuration of model/config.go.
UNITS = [1, 1, 1, 1]
ROOT = 16
WIDTHS = [32, 64, 128, 256]
GROUPS = 8
CLASSES = 10

WS_EPS = 1e-10  # inside the sqrt, population variance over (kh, kw, in)
GN_EPS = 1e-5


def make_weights(rng):
    """Random weights with non-trivial GN affine and a non-zero head."""
    p = {}

    def conv(name, k, cin, cout):
        w = rng.standard_normal((k, k, cin, cout)) * np.sqrt(2.0 / (k * k * cin))
        # A per-output-channel offset and scale, so that the standardisation
        # (mean and variance) matters.
        w = w * rng.uniform(0.5, 2.0, size=cout) + rng.normal(0, 0.2, size=cout)
        p[name] = w.astype(np.float32)

    def gn(prefix, c):
        p[prefix + "/gamma"] = (1 + 0.3 * rng.standard_normal(c)).astype(np.float32)
        p[prefix + "/beta"] = (0.2 * rng.standard_normal(c)).astype(np.float32)

    conv("resnet/root_block/standardized_conv2d/kernel", 7, 3, ROOT)
    cin = ROOT
    for b in range(4):
        out = WIDTHS[b]
        mid = out // 4
        for u in range(UNITS[b]):
            pre = "resnet/block%d/unit%02d" % (b + 1, u + 1)
            stride = 1 if (b == 0 or u > 0) else 2
            gn(pre + "/a/group_norm", cin)
            if u == 0 and (stride != 1 or cin != out):
                conv(pre + "/a/proj/standardized_conv2d/kernel", 1, cin, out)
            conv(pre + "/a/standardized_conv2d/kernel", 1, cin, mid)
            gn(pre + "/b/group_norm", mid)
            conv(pre + "/b/standardized_conv2d/kernel", 3, mid, mid)
            gn(pre + "/c/group_norm", mid)
            conv(pre + "/c/standardized_conv2d/kernel", 1, mid, out)
            cin = out
    gn("resnet/group_norm", cin)
    p["resnet/head/conv2d/kernel"] = (0.1 * rng.standard_normal((1, 1, cin, CLASSES))).astype(np.float32)
    p["resnet/head/conv2d/bias"] = (0.1 * rng.standard_normal(CLASSES)).astype(np.float32)
    return p


def standardize(w):
    """Weight Standardization of an HWIO kernel, per output channel."""
    w = w.astype(np.float64)
    mean = w.mean(axis=(0, 1, 2), keepdims=True)
    var = ((w - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
    return (w - mean) / np.sqrt(var + WS_EPS)


def conv2d(x, w, stride, pad):
    """x [N,C,H,W], w HWIO, zero padding, no bias."""
    kh, kw, _, cout = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = x.shape
    oh = (h - kh) // stride + 1
    ow = (wd - kw) // stride + 1
    out = np.zeros((n, cout, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += np.einsum("nchw,co->nohw", patch, w[i, j])
    return out


def group_norm(x, gamma, beta, groups):
    n, c, h, w = x.shape
    g = x.reshape(n, groups, -1)
    mean = g.mean(axis=-1, keepdims=True)
    var = ((g - mean) ** 2).mean(axis=-1, keepdims=True)
    g = (g - mean) / np.sqrt(var + GN_EPS)
    y = g.reshape(n, c, h, w)
    return y * gamma.astype(np.float64)[None, :, None, None] + beta.astype(np.float64)[None, :, None, None]


def relu(x):
    return np.maximum(x, 0)


def max_pool_3x3_s2(x):
    """3x3 window, stride 2, no padding."""
    _, _, h, w = x.shape
    oh = (h - 3) // 2 + 1
    ow = (w - 3) // 2 + 1
    out = None
    for i in range(3):
        for j in range(3):
            s = x[:, :, i:i + 2 * (oh - 1) + 1:2, j:j + 2 * (ow - 1) + 1:2]
            out = s if out is None else np.maximum(out, s)
    return out


def forward(p, x):
    def gn_relu(t, prefix):
        return relu(group_norm(t, p[prefix + "/gamma"], p[prefix + "/beta"], GROUPS))

    def k(name):
        return standardize(p[name])

    h = conv2d(x.astype(np.float64), k("resnet/root_block/standardized_conv2d/kernel"), 2, 3)
    h = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))  # zero pad, then pool without padding
    h = max_pool_3x3_s2(h)
    for b in range(4):
        for u in range(UNITS[b]):
            pre = "resnet/block%d/unit%02d" % (b + 1, u + 1)
            stride = 1 if (b == 0 or u > 0) else 2
            pa = gn_relu(h, pre + "/a/group_norm")
            proj = pre + "/a/proj/standardized_conv2d/kernel"
            # The projection sees the pre-activated input.
            shortcut = conv2d(pa, k(proj), stride, 0) if proj in p else h
            y = conv2d(pa, k(pre + "/a/standardized_conv2d/kernel"), 1, 0)
            y = conv2d(gn_relu(y, pre + "/b/group_norm"), k(pre + "/b/standardized_conv2d/kernel"), stride, 1)
            y = conv2d(gn_relu(y, pre + "/c/group_norm"), k(pre + "/c/standardized_conv2d/kernel"), 1, 0)
            h = y + shortcut
    h = gn_relu(h, "resnet/group_norm")
    features = h.mean(axis=(2, 3))
    head = p["resnet/head/conv2d/kernel"].astype(np.float64)[0, 0]
    logits = features @ head + p["resnet/head/conv2d/bias"].astype(np.float64)
    return logits, features


def save(name, arr):
    np.save(os.path.join(HERE, name), arr)


def small_files(rng):
    os.makedirs(os.path.join(HERE, "npy"), exist_ok=True)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    save("npy/f4_2x3.npy", a)
    save("npy/f4_scalar.npy", np.float32(1.5))
    save("npy/f4_empty.npy", np.zeros((0, 4), np.float32))
    save("npy/f8_2x3.npy", a.astype(np.float64))
    save("npy/i8_3.npy", np.arange(3, dtype=np.int64))
    save("npy/f4_fortran.npy", np.asfortranarray(a))
    save("npy/f4_bigendian.npy", a.astype(">f4"))
    with open(os.path.join(HERE, "npy/f4_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    members = {"w": a, "b": np.array([1, -2, 3], np.float32)}
    np.savez(os.path.join(HERE, "stored.npz"), **members)
    np.savez_compressed(os.path.join(HERE, "deflated.npz"), **members)
    np.savez(os.path.join(HERE, "mixed_dtype.npz"), w=a, steps=np.arange(3, dtype=np.int64))
    # A member whose header claims far more data than the member holds.
    buf = io.BytesIO()
    np.save(buf, a)
    raw = buf.getvalue().replace(b"(2, 3)", b"(7, 9)", 1)
    with zipfile.ZipFile(os.path.join(HERE, "lying_header.npz"), "w") as z:
        z.writestr("w.npy", raw)


def main():
    rng = np.random.default_rng(20200101)
    p = make_weights(rng)
    np.savez_compressed(os.path.join(HERE, "tiny.npz"), **p)
    for size, n in ((32, 2), (40, 1)):
        x = rng.uniform(-1, 1, size=(n, 3, size, size)).astype(np.float32)
        logits, features = forward(p, x)
        save("x%d.npy" % size, x)
        save("logits%d.npy" % size, logits.astype(np.float32))
        save("features%d.npy" % size, features.astype(np.float32))
    small_files(rng)


if __name__ == "__main__":
    main()

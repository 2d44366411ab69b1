#!/usr/bin/env python3
"""Writes a DAC checkpoint of the real 44.1 kHz layout with random weights (safetensors), for
measurements that need the real codec's shapes and costs but not its sound: the server's memory
under clients that stop reading, say. Names and shapes come from the real checkpoint's manifest.

    python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy
    /tmp/np/bin/python scripts/random_dac.py /tmp/dac-44khz-random.safetensors
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np

MANIFEST = Path(__file__).resolve().parent.parent / "assets/fixtures/manifests/dac-44khz-keys.json"


def value(name, shape, rng):
    """Weight-norm pairs give unit-norm filters, Snake's alpha is 1, biases are small."""
    if name.endswith(".weight_g"):
        return np.ones(shape, np.float32)
    if name.endswith(".alpha"):
        return np.ones(shape, np.float32)
    if name.endswith(".bias"):
        return (0.01 * rng.standard_normal(shape)).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def main(out):
    tensors = json.loads(MANIFEST.read_text())["tensors"]
    rng = np.random.default_rng(0)
    header, blobs, offset = {}, [], 0
    for name, shape in sorted(tensors.items()):
        data = value(name, shape, rng).tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Compiles the CUDA kernels `cuda_kernels` wrote (its `kernels.json`) with NVRTC, to PTX and to
CUBIN for each kernel's architecture, as cubecl-cuda does at a user's first launch (the same
options), so that code-generation, ptxas and ISA errors show here. No GPU or driver is needed:
NVRTC and the CUDA headers come from NVIDIA's PyPI wheels (`nvidia-cuda-nvrtc-cu12`,
`-runtime-cu12`, `-nvcc-cu12`, `-cccl-cu12`) installed in the Python running this.

    scripts/nvrtc_check.py KERNELS_DIR            # writes KERNELS_DIR/nvrtc.json

The last line reads `N kernels -> PTX+CUBIN (sm_80, sm_89, sm_90a): F failed`; exit code 1 if
F > 0 (each failure's log is printed above it).
"""

import ctypes
import json
import multiprocessing
import os
import sys
from pathlib import Path

import nvidia

WHEELS = Path(nvidia.__path__[0])
INCLUDES = [WHEELS / "cuda_runtime" / "include", WHEELS / "cuda_nvcc" / "include", WHEELS / "cuda_cccl" / "include"]
NVRTC = None


def nvrtc():
    """libnvrtc from the wheel, loaded once per process."""
    global NVRTC
    if NVRTC is None:
        NVRTC = ctypes.CDLL(str(WHEELS / "cuda_nvrtc" / "lib" / "libnvrtc.so.12"))
        NVRTC.nvrtcGetErrorString.restype = ctypes.c_char_p
    return NVRTC


def arch_flag(arch):
    """cubecl-cuda's `--gpu-architecture`: `sm_90a` from Hopper on (its full instruction set)."""
    return f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"


def fetch(lib, program, size_fn, get_fn):
    size = ctypes.c_size_t()
    getattr(lib, size_fn)(program, ctypes.byref(size))
    buffer = ctypes.create_string_buffer(size.value)
    getattr(lib, get_fn)(program, buffer)
    return buffer.raw


def compile_one(kernel):
    """(kernel, None | error text, PTX bytes, CUBIN bytes) for one manifest entry."""
    if kernel["error"]:
        return kernel, kernel["error"], 0, 0
    lib = nvrtc()
    source = Path(kernel["file"]).read_bytes()
    program = ctypes.c_void_p()
    status = lib.nvrtcCreateProgram(ctypes.byref(program), source, kernel["entrypoint"].encode(), 0, None, None)
    if status != 0:
        return kernel, f"nvrtcCreateProgram: {lib.nvrtcGetErrorString(status).decode()}", 0, 0
    options = [f"--gpu-architecture={arch_flag(kernel['arch'])}", "-lineinfo"]
    options += [f"--include-path={path}" for path in INCLUDES]
    argv = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    status = lib.nvrtcCompileProgram(program, len(options), argv)
    try:
        if status != 0:
            log = fetch(lib, program, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog").decode(errors="replace")
            return kernel, f"{lib.nvrtcGetErrorString(status).decode()}\n{log}", 0, 0
        ptx = fetch(lib, program, "nvrtcGetPTXSize", "nvrtcGetPTX")
        cubin = fetch(lib, program, "nvrtcGetCUBINSize", "nvrtcGetCUBIN")
        if not ptx.strip(b"\0") or not cubin.startswith(b"\x7fELF"):
            return kernel, "NVRTC returned no PTX or no CUBIN (ELF)", len(ptx), len(cubin)
        return kernel, None, len(ptx), len(cubin)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


# Proof that NVRTC runs ptxas: this asks for more static shared memory than a block has.
CANARY = 'extern "C" __global__ void canary(float* o) { __shared__ float s[20000]; s[threadIdx.x] = 1; o[0] = s[7]; }'


def canary_fails(folder):
    """Whether the over-sized canary is refused for sm_80 (a CUBIN-less check would pass it)."""
    path = folder / "canary.cu"
    path.write_text(CANARY)
    _, error, _, _ = compile_one({"arch": 80, "file": str(path), "entrypoint": "canary", "error": None})
    return error is not None and "shared" in error


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    if not canary_fails(folder):
        print("the canary kernel (too much shared memory) compiled: is ptxas running?")
        return 1
    kernels = json.loads((folder / "kernels.json").read_text())
    with multiprocessing.Pool(os.cpu_count()) as pool:
        results = pool.map(compile_one, kernels, chunksize=4)
    report, failed = [], 0
    for kernel, error, ptx, cubin in results:
        report.append({**kernel, "error": error, "ptx_bytes": ptx, "cubin_bytes": cubin})
        if error:
            failed += 1
            print(f"FAILED sm_{kernel['arch']} {kernel['entrypoint']} ({kernel['file']}):\n{error}")
    version = (ctypes.c_int(), ctypes.c_int())
    nvrtc().nvrtcVersion(ctypes.byref(version[0]), ctypes.byref(version[1]))
    summary = {"nvrtc": f"{version[0].value}.{version[1].value}", "kernels": report}
    (folder / "nvrtc.json").write_text(json.dumps(summary, indent=1))
    archs = ", ".join(sorted({arch_flag(k["arch"]) for k in kernels}))
    print(f"{len(kernels)} kernels -> PTX+CUBIN ({archs}): {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

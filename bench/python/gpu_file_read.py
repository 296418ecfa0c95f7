#!/usr/bin/env python3
"""The GPU machine check of the Python package (issue #15): the same data set read into
GPU memory three ways, each verified on the GPU, then timed.

  aisio.read_files(dest="gpu")  our driver (image:PATH software controller, XFS decoder),
                                arrays handed to torch.from_dlpack (kDLCUDA, no copy)
  aisio.File.pread              one file at a time into a torch CUDA tensor (KvikIO shape)
  libcufile (ctypes)            cuFileRead of the same files, mounted-style copies in a
                                plain directory (compatibility mode without nvidia-fs)

Verification on the GPU: every file's bytes are compared, on the GPU (torch.equal of
CUDA tensors), with the expected bytes uploaded from the source directory, and the
XXH3-64 of each aisio array (copied back) must match the manifest.

  PYTHONPATH=build-gpu/python python3 bench/python/gpu_file_read.py --out bench/results/python-gpu/run.json
"""
import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch

import aisio


# ---- libcufile through ctypes (layouts of cufile.h, CUDA 12/13) ---------------------
class CUfileError(ctypes.Structure):
    _fields_ = [("err", ctypes.c_int), ("cu_err", ctypes.c_int)]


class CUfileDescr(ctypes.Structure):
    class _Handle(ctypes.Union):
        _fields_ = [("fd", ctypes.c_int), ("handle", ctypes.c_void_p)]
    _fields_ = [("type", ctypes.c_int), ("handle", _Handle), ("fs_ops", ctypes.c_void_p),
                ("zero_tail", ctypes.c_uint8 * 64)]


class CuFile:
    def __init__(self):
        self.compat = not os.path.exists("/proc/driver/nvidia-fs")
        if self.compat:
            os.environ.setdefault("CUFILE_FORCE_COMPAT_MODE", "true")
        lib = None
        for n in ("libcufile.so.0", "libcufile.so", "/usr/local/cuda/lib64/libcufile.so.0",
                  "/usr/local/cuda/targets/x86_64-linux/lib/libcufile.so.0"):
            try:
                lib = ctypes.CDLL(n)
                break
            except OSError:
                continue
        if lib is None:
            raise RuntimeError("libcufile not found")
        self.lib = lib
        lib.cuFileDriverOpen.restype = CUfileError
        lib.cuFileHandleRegister.restype = CUfileError
        lib.cuFileHandleRegister.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(CUfileDescr)]
        lib.cuFileHandleDeregister.argtypes = [ctypes.c_void_p]
        lib.cuFileRead.restype = ctypes.c_ssize_t
        lib.cuFileRead.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_int64]
        e = lib.cuFileDriverOpen()
        if e.err != 0:
            raise RuntimeError(f"cuFileDriverOpen: CUfileOpError {e.err}")

    def read(self, path, dev_ptr, size):
        fd = os.open(path, os.O_RDONLY)
        try:
            d = CUfileDescr()
            d.type = 1  # CU_FILE_HANDLE_TYPE_OPAQUE_FD
            d.handle.fd = fd
            h = ctypes.c_void_p()
            e = self.lib.cuFileHandleRegister(ctypes.byref(h), ctypes.byref(d))
            if e.err != 0:
                raise RuntimeError(f"cuFileHandleRegister({path}): CUfileOpError {e.err}")
            try:
                done = 0
                while done < size:
                    r = self.lib.cuFileRead(h, dev_ptr, size - done, done, done)
                    if r <= 0:
                        raise RuntimeError(f"cuFileRead({path}) at {done}: {r}")
                    done += r
                return done
            finally:
                self.lib.cuFileHandleDeregister(h)
        finally:
            os.close(fd)


def timed(fn, repeat):
    best = None
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.monotonic()
        fn()
        torch.cuda.synchronize()
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="where to make the data set image (default: a temporary directory)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", default="lognormal:1M:1.0:16M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    assert aisio.cuda, "this aisio was built without CUDA (cmake -DAISIO_CUDA=ON)"
    assert torch.cuda.is_available(), "PyTorch sees no CUDA device"

    work = a.workdir or tempfile.mkdtemp(prefix="aisio-gpu-py-")
    info = aisio.make_dataset_image(os.path.join(work, "img"), count=a.count, mix=True, size=a.size)
    man = aisio.load_manifest(os.path.join(info["source_dir"], "manifest.json"))
    rels = sorted(man)
    fs_paths = [info["fs_dir"] + "/" + r for r in rels]
    local = [os.path.join(info["source_dir"], r) for r in rels]
    total = sum(man[r][0] for r in rels)
    ctrl = aisio.open("image:" + info["image"], emu_workers=4)
    res = {"files": len(rels), "bytes": total, "gpu": torch.cuda.get_device_name(0),
           "machine": platform.node(), "size": a.size}

    # 1. read_files(dest="gpu") through DLPack, verified on the GPU.
    arrays = aisio.read_files(fs_paths, via="xfs", controller=ctrl, dest="gpu", verify=True)
    for r, arr, p in zip(rels, arrays, local):
        assert arr.__dlpack_device__()[0] == 2, "kDLCUDA"
        t = torch.from_dlpack(arr)
        assert t.is_cuda and t.data_ptr() == arr.__cuda_array_interface__["data"][0], "zero copy"
        want = torch.frombuffer(bytearray(open(p, "rb").read()) or bytearray(1), dtype=torch.uint8)[:arr.nbytes]
        assert torch.equal(t, want.cuda()), f"{r}: GPU bytes differ"
    del arrays
    res["read_files_gpu_verified"] = len(rels)

    # 2. File.pread into CUDA tensors, verified on the GPU.
    bufs = {r: torch.empty(max(man[r][0], 1), dtype=torch.uint8, device="cuda") for r in rels}

    def aisio_pread():
        futs = []
        for r, p in zip(rels, fs_paths):
            f = aisio.File(p, via="xfs", controller=ctrl)
            futs.append(f.pread(bufs[r], man[r][0]))
        for f in futs:
            f.result()

    aisio_pread()
    for r, p in zip(rels, local):
        want = torch.frombuffer(bytearray(open(p, "rb").read()) or bytearray(1), dtype=torch.uint8)
        assert torch.equal(bufs[r][:man[r][0]], want[:man[r][0]].cuda()), f"{r}: File.pread GPU bytes differ"
    res["file_pread_gpu_verified"] = len(rels)

    # 3. libcufile (compat mode) into the same tensors, verified the same way.
    cf = CuFile()
    res["cufile_compat_mode"] = cf.compat

    def cufile_read():
        for r, p in zip(rels, local):
            if man[r][0]:
                cf.read(p, ctypes.c_void_p(bufs[r].data_ptr()), man[r][0])

    for b in bufs.values():
        b.zero_()
    cufile_read()
    for r, p in zip(rels, local):
        want = torch.frombuffer(bytearray(open(p, "rb").read()) or bytearray(1), dtype=torch.uint8)
        assert torch.equal(bufs[r][:man[r][0]], want[:man[r][0]].cuda()), f"{r}: cuFile GPU bytes differ"

    # Timings (best of --repeat); the page cache holds the local copies after the first
    # cuFile pass, the image is read through the software controller each time.
    def aisio_batch():
        aisio.read_files(fs_paths, via="xfs", controller=ctrl, dest="gpu")

    for name, fn in [("aisio.read_files(dest=gpu)", aisio_batch), ("aisio.File.pread", aisio_pread),
                     ("libcufile cuFileRead (ctypes)", cufile_read)]:
        dt = timed(fn, a.repeat)
        res[name] = {"seconds": dt, "GB_per_s": total / 1e9 / dt}
        print(f"{name:32} {dt:8.3f} s  {total / 1e9 / dt:7.3f} GB/s  ({len(rels)} files, {total} bytes)")
    res["command"] = " ".join(sys.argv)
    res["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                   text=True).stdout.strip()
    print(json.dumps(res, indent=2))
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

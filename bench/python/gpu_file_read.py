#!/usr/bin/env python3
"""The GPU machine check of the Python package (issue #15): the same data set read into
GPU memory three ways, each verified on the GPU, then timed.

  aisio.read_files(dest="gpu")  our driver (image:PATH software controller, XFS decoder),
                                arrays handed to torch.from_dlpack (kDLCUDA, no copy)
  aisio.File.pread              one file at a time into a torch CUDA tensor (KvikIO shape)
  libcufile (ctypes)            cuFileRead of the same files, mounted-style copies in a
                                plain directory (compatibility mode without nvidia-fs)

Verification: with PyTorch (CUDA), every file's bytes are compared on the GPU
(torch.equal of CUDA tensors) with the expected bytes uploaded from the source
directory; without it, destinations are aisio.empty(n, "gpu") arrays and each file's
XXH3-64 (copied back) must match the manifest. read_files(verify=True) checks the
XXH3-64 of every GPU array as well.

  PYTHONPATH=build-gpu/python python3 bench/python/gpu_file_read.py --out bench/results/python-gpu/run.json

On the GPU machine (its python3 is not this one's; no mkfs.xfs there): bench/gpu/prepare
packs .gpu-carry/pykit.tgz and .gpu-carry/pyds.tgz; there, bench/python/device-build
builds the extension and --dataset reads the carried data set.
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

import aisio

try:
    import torch
    if not torch.cuda.is_available():
        torch = None
except ImportError:
    torch = None


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


def sync():
    if torch is not None:
        torch.cuda.synchronize()


def timed(fn, repeat):
    best = None
    for _ in range(repeat):
        sync()
        t0 = time.monotonic()
        fn()
        sync()
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    return best


def gpu_buffer(n):
    if torch is not None:
        return torch.empty(max(n, 1), dtype=torch.uint8, device="cuda")
    return aisio.empty(max(n, 1), "gpu")


def dev_ptr(buf):
    return buf.data_ptr() if torch is not None else buf.__cuda_array_interface__["data"][0]


def check(buf, n, local_path, h, what):
    """The first n bytes of GPU buffer buf are the file's: compared on the GPU (torch), or
    by XXH3-64 of a copy back."""
    if torch is not None:
        want = torch.frombuffer(bytearray(open(local_path, "rb").read()) or bytearray(1), dtype=torch.uint8)
        assert torch.equal(buf[:n], want[:n].cuda()), f"{what}: {local_path}: GPU bytes differ"
    elif n:  # gpu_buffer(n) holds exactly n bytes: its hash is the file's
        assert buf.xxh3() == h, f"{what}: {local_path}: XXH3-64 differs"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="where to make the data set image (default: a temporary directory)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", default="lognormal:1M:1.0:16M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--make-only", action="store_true",
                    help="make the data set in --workdir (with info.json) and stop: for machines without "
                         "xfsprogs, which then run with --dataset")
    ap.add_argument("--dataset", help="a --make-only workdir to read instead of making a new data set")
    a = ap.parse_args()

    if a.dataset:
        with open(os.path.join(a.dataset, "info.json")) as f:
            info = json.load(f)
        for k in ("image", "source_dir"):
            info[k] = os.path.join(os.path.abspath(a.dataset), info[k])
    else:
        work = a.workdir or tempfile.mkdtemp(prefix="aisio-gpu-py-")
        info = aisio.make_dataset_image(os.path.join(work, "img"), count=a.count, mix=True, size=a.size)
        if a.make_only:
            rel = dict(info, size=a.size, count=a.count)
            for k in ("image", "source_dir"):
                rel[k] = os.path.relpath(info[k], work)
            with open(os.path.join(work, "info.json"), "w") as f:
                json.dump(rel, f)
            print(f"data set in {work}: {info['files']} files, {info['bytes']} bytes")
            return
    assert aisio.cuda, "this aisio was built without CUDA (cmake -DAISIO_CUDA=ON)"
    man = aisio.load_manifest(os.path.join(info["source_dir"], "manifest.json"))
    rels = sorted(man)
    fs_paths = [info["fs_dir"] + "/" + r for r in rels]
    local = [os.path.join(info["source_dir"], r) for r in rels]
    total = sum(man[r][0] for r in rels)
    ctrl = aisio.open("image:" + info["image"], emu_workers=4)
    res = {"files": len(rels), "bytes": total, "machine": platform.node(), "size": info.get("size", a.size),
           "verified_by": "torch.equal on the GPU" if torch is not None else "XXH3-64 of a copy back",
           "gpu": torch.cuda.get_device_name(0) if torch is not None else "cuda:0"}

    # 1. read_files(dest="gpu"): kDLCUDA arrays, XXH3-64 checked (verify=True), and with
    #    PyTorch taken by torch.from_dlpack without a copy and compared on the GPU.
    arrays = aisio.read_files(fs_paths, via="xfs", controller=ctrl, dest="gpu", verify=True)
    for r, arr, p in zip(rels, arrays, local):
        assert arr.__dlpack_device__()[0] == 2, "kDLCUDA"
        if torch is not None and arr.nbytes:
            t = torch.from_dlpack(arr)
            assert t.is_cuda and t.data_ptr() == arr.__cuda_array_interface__["data"][0], "zero copy"
            check(t, arr.nbytes, p, man[r][1], "read_files")
    del arrays
    res["read_files_gpu_verified"] = len(rels)

    # 2. File.pread into GPU memory (one Future per file), verified.
    bufs = {r: gpu_buffer(man[r][0]) for r in rels}

    def aisio_pread():
        futs = [aisio.File(p, via="xfs", controller=ctrl).pread(bufs[r], man[r][0]) for r, p in zip(rels, fs_paths)]
        for f in futs:
            f.result()

    aisio_pread()
    for r, p in zip(rels, local):
        check(bufs[r], man[r][0], p, man[r][1], "File.pread")
    res["file_pread_gpu_verified"] = len(rels)

    # 3. libcufile (compatibility mode without nvidia-fs) into the same buffers, verified.
    cf = CuFile()
    res["cufile_compat_mode"] = cf.compat

    def cufile_read():
        for r, p in zip(rels, local):
            if man[r][0]:
                cf.read(p, ctypes.c_void_p(dev_ptr(bufs[r])), man[r][0])

    bufs = {r: gpu_buffer(man[r][0]) for r in rels}  # fresh (unfilled) buffers
    cufile_read()
    for r, p in zip(rels, local):
        check(bufs[r], man[r][0], p, man[r][1], "cuFile")
    res["cufile_verified"] = len(rels)

    # Timings (best of --repeat). aisio reads the image through an in-process software
    # controller; cuFile reads the plain copies (the page cache holds them after the
    # first pass): the comparison is of the Python-level paths, not of the devices.
    def aisio_batch():
        aisio.read_files(fs_paths, via="xfs", controller=ctrl, dest="gpu")

    for name, fn in [("aisio.read_files(dest=gpu)", aisio_batch), ("aisio.File.pread", aisio_pread),
                     ("libcufile cuFileRead (ctypes)", cufile_read)]:
        dt = timed(fn, a.repeat)
        res[name] = {"seconds": dt, "GB_per_s": total / 1e9 / dt}
        print(f"{name:32} {dt:8.3f} s  {total / 1e9 / dt:7.3f} GB/s  ({len(rels)} files, {total} bytes)")
    res["command"] = " ".join(sys.argv)
    # AISIO_COMMIT: the commit of a tree copied to another machine without its git history.
    res["commit"] = os.environ.get("AISIO_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(res, indent=2))
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

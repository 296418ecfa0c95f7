#!/usr/bin/env python3
"""A PyTorch Dataset over an `aisio fil gen` data set, read through aisio's NVMe driver
into tensors, every file checked against the manifest's XXH3-64 hash.

  # a data set inside an unmounted XFS image (what only our driver and XFS decoder read)
  python3 examples/torch_dataset.py /data --controller image:/path/fs.img
  # a data set on a mounted file system (extents by FIEMAP; the controller: the image
  # behind its loop device, or --controller with a PCI address)
  python3 examples/torch_dataset.py /mnt/ds
  # make a demo image first (mkfs.xfs, no mount), then read it
  python3 examples/torch_dataset.py --make-image /tmp/aisio-ds

Each item is (uint8 tensor, relative path). With DataLoader(num_workers > 0) each worker
process opens its own controller (a handle string is opened once per process; an
in-process software controller does not survive fork, so pass handles, not Controllers). --batch N also reads N files at a time
with aisio.read_files (all queues busy) and hands them to torch.from_dlpack (no copy).
"""
import argparse
import json
import os
import sys
import time

import torch

import aisio


class FilDataset(torch.utils.data.Dataset):
    """The files of a `fil gen` data set as uint8 tensors.

    root: the data set's directory (here, or inside the file system on `controller`
    with via "xfs"). verify: compare each file's XXH3-64 with the manifest
    (manifest.json in root, as `aisio fil gen` writes it).
    """

    def __init__(self, root, controller=None, via="auto", verify=True):
        self.root = root.rstrip("/") or "/"
        self.controller = controller
        self.via = via
        self.verify = verify
        self.files = self._manifest()  # [(path, size, xxh3)]

    def _path(self, rel):
        return self.root + "/" + rel

    def _manifest(self):
        path = self._path("manifest.json")
        if os.path.exists(path) and self.via in ("auto", "fiemap", "homid") and self.controller is None:
            text = open(path).read()
        else:  # read it through aisio as well (the file system may not be mounted here)
            with aisio.File(path, via=self.via, controller=self.controller) as f:
                buf = bytearray(f.nbytes())
                f.read(buf)
                text = buf.decode()
        m = json.loads(text)
        # The manifest's hash scheme: XXH3-64, seed 0, of the whole file, as 16 hex digits.
        return [(e["path"], int(e["size"]), int(e["xxh3"], 16)) for e in m["files"]]

    def __len__(self):
        return len(self.files)

    def check(self, rel, tensor, h):
        got = aisio.xxh3_64(tensor.numpy())
        if self.verify and got != h:
            raise aisio.Error(f"{rel}: XXH3-64 {got:016x}, the manifest says {h:016x}")

    def __getitem__(self, i):
        rel, size, h = self.files[i]
        t = torch.empty(size, dtype=torch.uint8)
        with aisio.File(self._path(rel), via=self.via, controller=self.controller) as f:
            n = f.read(t)  # into the tensor's memory, through DLPack
        if n != size:
            raise aisio.Error(f"{rel}: read {n} bytes, the manifest says {size}")
        self.check(rel, t, h)
        return t, rel

    def batch(self, indices):
        """Several files at once through aisio.read_files, as tensors sharing aisio's arrays."""
        rels = [self.files[i][0] for i in indices]
        arrays = aisio.read_files([self._path(r) for r in rels], via=self.via, controller=self.controller)
        out = []
        for i, a in zip(indices, arrays):
            t = torch.from_dlpack(a)
            self.check(self.files[i][0], t, self.files[i][2])
            out.append(t)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", help="the data set directory (inside the file system with --controller)")
    ap.add_argument("--controller", help="a controller handle: image:PATH, a PCI address, emu:NAME, homid...")
    ap.add_argument("--via", default="auto", help="auto, fiemap, xfs or homid")
    ap.add_argument("--batch", type=int, default=0, help="also read batches of N files with read_files")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--make-image", metavar="WORKDIR", help="first create an XFS image with a mixed data set")
    a = ap.parse_args()
    if a.make_image:
        info = aisio.make_dataset_image(a.make_image, count=64, mix=True)
        print(f"made {info['image']}: {info['files']} files, {info['bytes']} bytes in {info['fs_dir']}")
        a.root, a.controller, a.via = info["fs_dir"], "image:" + info["image"], "xfs"
    if not a.root:
        ap.error("give the data set directory, or --make-image")

    ds = FilDataset(a.root, controller=a.controller, via=a.via)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=True, num_workers=a.workers)
    t0 = time.monotonic()
    nbytes = 0
    for tensor, _ in loader:
        nbytes += tensor.numel()
    dt = time.monotonic() - t0
    print(f"Dataset ({a.workers} workers): {len(ds)} files, {nbytes} bytes in {dt:.3f} s ({nbytes / 1e9 / dt:.3f} GB/s), "
          f"every XXH3-64 matches the manifest")
    if a.batch:
        t0 = time.monotonic()
        nbytes = 0
        for s in range(0, len(ds), a.batch):
            nbytes += sum(t.numel() for t in ds.batch(range(s, min(s + a.batch, len(ds)))))
        dt = time.monotonic() - t0
        print(f"read_files in batches of {a.batch}: {nbytes} bytes in {dt:.3f} s ({nbytes / 1e9 / dt:.3f} GB/s), "
              "every XXH3-64 matches the manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())

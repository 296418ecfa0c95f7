"""A data set on a mounted file system (the XFS image loop-mounted read-only): extents by
FIEMAP, bytes by our driver through the controller that serves the loop device's image
(found by aisio itself). Needs root and loop devices; skipped otherwise."""
import os
import subprocess

import numpy as np
import pytest

import aisio


@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("loop mounting needs root")
    work = tmp_path_factory.mktemp("aisio-py-fiemap")
    info = aisio.make_dataset_image(str(work / "img"), count=24, mix=True, seed=3, size="lognormal:64K:1.5:1M")
    mnt = work / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-o", "loop,ro", info["image"], str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount -o loop failed: {r.stderr.strip()}")
    try:
        data = str(mnt / "data")
        yield data, aisio.load_manifest(os.path.join(data, "manifest.json"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_every_file_through_fiemap(mounted):
    data, man = mounted
    for rel, (size, h) in man.items():
        with aisio.File(os.path.join(data, rel), via="fiemap") as f:
            buf = np.empty(max(size, 1), dtype=np.uint8)
            assert f.read(buf, size) == size, rel
            assert aisio.xxh3_64(buf[:size]) == h, rel


def test_read_files_through_fiemap_with_verify(mounted):
    data, man = mounted
    rels = sorted(man)
    arrays = aisio.read_files([os.path.join(data, r) for r in rels], via="auto", verify=True)
    assert [a.nbytes for a in arrays] == [man[r][0] for r in rels]

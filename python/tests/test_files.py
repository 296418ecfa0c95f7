"""Every file of a mixed `fil gen` data set, inside an XFS image only our driver reads:
File.pread/read (whole files and ranges) and read_files, hash-checked against the
manifest (XXH3-64, what `aisio fil run` verifies)."""
import os

import numpy as np
import pytest

import aisio


def fs_path(dataset, rel):
    return dataset["fs_dir"] + "/" + rel


def test_dataset_is_mixed(dataset):
    sizes = [s for s, _ in dataset["manifest"].values()]
    assert 0 in sizes and 1 in sizes, "empty and 1-byte files"
    assert any(s % 4096 for s in sizes if s > 4096), "unaligned tails"
    assert max(sizes) > 1 << 20


def test_every_file_with_pread_matches_the_manifest(dataset, image_ctrl):
    for rel, (size, h) in dataset["manifest"].items():
        with aisio.File(fs_path(dataset, rel), via="xfs", controller=image_ctrl) as f:
            assert f.nbytes() == size
            buf = np.empty(max(size, 1), dtype=np.uint8)
            fut = f.pread(buf, size)
            assert fut.result() == size, rel
            assert aisio.xxh3_64(buf[:size]) == h, rel


def test_ranges_match_the_source_files(dataset, image_ctrl):
    """Unaligned offsets and sizes, ranges past EOF, and reads split over several tasks."""
    big = [rel for rel, (s, _) in dataset["manifest"].items() if s > 300000]
    assert big
    for rel in big[:4]:
        want = open(os.path.join(dataset["source_dir"], rel), "rb").read()
        f = aisio.File(fs_path(dataset, rel), via="xfs", controller=image_ctrl, task_size=64 << 10)
        for off, n in [(0, 4096), (1234, 5000), (4095, 70001), (len(want) - 10, 100), (len(want) + 5, 10)]:
            buf = np.zeros(n, dtype=np.uint8)
            got = f.read(buf, n, off)
            exp = want[off:off + n]
            assert got == len(exp), (rel, off, n)
            assert buf[:got].tobytes() == exp, (rel, off, n)
        # size=None: the buffer's size; split into 64 KiB tasks on the thread pool.
        buf = np.zeros(len(want), dtype=np.uint8)
        assert f.pread(buf).result() == len(want)
        assert buf.tobytes() == want


def test_read_files_all_with_verify(dataset, image_ctrl):
    rels = sorted(dataset["manifest"])
    arrays = aisio.read_files([fs_path(dataset, r) for r in rels], via="xfs", controller=image_ctrl, verify=True,
                              threads=3)
    assert len(arrays) == len(rels)
    for rel, a in zip(rels, arrays):
        size, h = dataset["manifest"][rel]
        assert a.nbytes == size and a.device == "cpu"
        assert aisio.xxh3_64(np.asarray(a)) == h, rel
        assert a.xxh3() == h


def test_read_files_verify_catches_a_wrong_manifest(dataset, image_ctrl):
    rel = next(r for r, (s, _) in dataset["manifest"].items() if s > 1000)
    size, h = dataset["manifest"][rel]
    wrong = {rel: (size, h ^ 1)}
    with pytest.raises(aisio.Error) as e:
        aisio.read_files([fs_path(dataset, rel)], via="xfs", controller=image_ctrl, verify=True, manifest=wrong)
    assert "failed verification" in str(e.value) and rel in str(e.value)


def test_handle_string_and_auto_via(dataset):
    rel, (size, h) = next((r, v) for r, v in dataset["manifest"].items() if v[0] > 0)
    # A handle string: the controller is opened once and kept; via auto: xfs, since
    # the path is not a file here.
    f = aisio.File(fs_path(dataset, rel), controller="image:" + dataset["image"])
    assert f.via == "xfs"
    buf = bytearray(size)
    assert f.read(buf) == size and aisio.xxh3_64(buf) == h

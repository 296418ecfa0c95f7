"""Arrays from read_files go to NumPy and PyTorch without a copy (DLPack, kDLCPU), and
CPU tensors and NumPy arrays are accepted as destinations."""
import numpy as np
import pytest

import aisio


def some_files(dataset, n=6):
    rels = [r for r, (s, _) in sorted(dataset["manifest"].items()) if s > 4096][:n]
    return rels, [dataset["fs_dir"] + "/" + r for r in rels]


def test_numpy_shares_the_array(dataset, image_ctrl):
    rels, paths = some_files(dataset)
    arrays = aisio.read_files(paths, via="xfs", controller=image_ctrl)
    a = arrays[0]
    assert a.__dlpack_device__() == (1, 0)  # kDLCPU
    view = np.asarray(a)
    assert view.dtype == np.uint8 and view.shape == (a.nbytes,)
    via_dlpack = np.from_dlpack(a)
    assert via_dlpack.ctypes.data == view.ctypes.data, "DLPack export is the same memory"
    old = int(view[0])
    view[0] = (old + 1) % 256
    assert int(via_dlpack[0]) == (old + 1) % 256
    view[0] = old
    assert a.xxh3() == dataset["manifest"][rels[0]][1]


def test_torch_from_dlpack_zero_copy(dataset, image_ctrl):
    torch = pytest.importorskip("torch", reason="PyTorch is not importable (apt-get install python3-torch)")
    rels, paths = some_files(dataset)
    arrays = aisio.read_files(paths, via="xfs", controller=image_ctrl)
    for rel, a in zip(rels, arrays):
        t = torch.from_dlpack(a)
        assert t.dtype == torch.uint8 and t.device.type == "cpu" and t.numel() == a.nbytes
        assert t.data_ptr() == np.asarray(a).ctypes.data, "no copy"
        assert aisio.xxh3_64(t.numpy()) == dataset["manifest"][rel][1]
    # The tensor keeps the bytes alive after the array is gone.
    t = torch.from_dlpack(arrays[0])
    h = dataset["manifest"][rels[0]][1]
    del arrays
    import gc
    gc.collect()
    assert aisio.xxh3_64(t.numpy()) == h


def test_cpu_tensor_as_destination(dataset, image_ctrl):
    torch = pytest.importorskip("torch", reason="PyTorch is not importable (apt-get install python3-torch)")
    rels, paths = some_files(dataset, 3)
    for rel, p in zip(rels, paths):
        size, h = dataset["manifest"][rel]
        t = torch.zeros(size, dtype=torch.uint8)
        with aisio.File(p, via="xfs", controller=image_ctrl) as f:
            assert f.read(t) == size  # through t.__dlpack__ (torch has no buffer protocol)
        assert aisio.xxh3_64(t.numpy()) == h
        # A float tensor is bytes too: size counts bytes.
        t4 = torch.zeros((size + 3) // 4, dtype=torch.float32)
        with aisio.File(p, via="xfs", controller=image_ctrl) as f:
            assert f.read(t4, size) == size
        assert aisio.xxh3_64(t4.numpy().view(np.uint8)[:size]) == h

"""GPU destinations (CUDA build, a GPU): read_files(dest="gpu") exported as kDLCUDA, and
File.pread into GPU memory; bytes checked on the GPU when PyTorch has CUDA, and by
XXH3-64 of a copy back otherwise. Skipped without CUDA or a GPU (the lead runs these on
the H100: see bench/python/gpu_file_read.py for the cuFile comparison)."""
import pytest

import aisio

pytestmark = pytest.mark.gpu


def gpu_or_skip():
    if not aisio.cuda:
        pytest.skip("aisio built without CUDA (-DAISIO_CUDA=ON)")
    try:
        aisio.empty(1, "gpu")
    except aisio.Error as e:
        pytest.skip(f"no usable GPU: {e}")


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def test_read_files_to_gpu_through_dlpack(dataset, image_ctrl):
    gpu_or_skip()
    rels = sorted(dataset["manifest"])
    arrays = aisio.read_files([dataset["fs_dir"] + "/" + r for r in rels], via="xfs", controller=image_ctrl,
                              dest="gpu", verify=True)
    torch = torch_cuda()
    for rel, a in zip(rels, arrays):
        size, h = dataset["manifest"][rel]
        assert a.__dlpack_device__() == (2, 0) and a.device == "cuda:0" and a.nbytes == size
        assert a.xxh3() == h  # copied back
        if torch is not None and size:
            t = torch.from_dlpack(a)
            assert t.is_cuda and t.data_ptr() == a.__cuda_array_interface__["data"][0]
            want = open(dataset["source_dir"] + "/" + rel, "rb").read()
            assert torch.equal(t, torch.frombuffer(bytearray(want), dtype=torch.uint8).cuda()), rel


def test_pread_into_gpu_memory(dataset, image_ctrl):
    gpu_or_skip()
    rels = [r for r, (s, _) in sorted(dataset["manifest"].items()) if s > 0][:8]
    torch = torch_cuda()
    for rel in rels:
        size, h = dataset["manifest"][rel]
        dst = torch.empty(size, dtype=torch.uint8, device="cuda") if torch else aisio.empty(size, "gpu")
        with aisio.File(dataset["fs_dir"] + "/" + rel, via="xfs", controller=image_ctrl) as f:
            assert f.pread(dst, size).result() == size
        if torch:
            want = open(dataset["source_dir"] + "/" + rel, "rb").read()
            assert torch.equal(dst, torch.frombuffer(bytearray(want), dtype=torch.uint8).cuda()), rel
        else:
            assert dst.xxh3() == h, rel

"""Bad input raises aisio.Error with its category and a message that says what is wrong."""
import numpy as np
import pytest

import aisio


def test_missing_file_on_the_image(dataset, image_ctrl):
    with pytest.raises(aisio.Error) as e:
        aisio.File(dataset["fs_dir"] + "/no/such/file.bin", via="xfs", controller=image_ctrl)
    assert e.value.category == "invalid argument"
    assert "No such file or directory" in str(e.value) and "file.bin" in str(e.value)
    assert e.value.status is None


def test_missing_file_here(image_ctrl, tmp_path):
    with pytest.raises(aisio.Error) as e:
        aisio.File(str(tmp_path / "absent.bin"), via="fiemap", controller=image_ctrl)
    assert e.value.category == "invalid argument"
    assert "absent.bin: No such file or directory" in str(e.value)


def test_file_on_a_file_system_the_controller_does_not_hold(image_ctrl, tmp_path):
    """A file here (tmp, not inside the image) with the image's controller: FIEMAP offsets
    would point into a namespace that does not hold the file. Refused, never misread."""
    p = tmp_path / "elsewhere.bin"
    p.write_bytes(b"x" * 8192)
    with pytest.raises(aisio.Error) as e:
        aisio.File(str(p), via="fiemap", controller=image_ctrl)
    msg = str(e.value)
    assert e.value.category in ("invalid argument", "not supported"), msg
    assert "elsewhere" in msg or str(tmp_path) in msg or "namespace" in msg, msg


def test_file_on_a_disk_no_controller_of_ours_serves(tmp_path):
    """No controller given: aisio looks for the image behind the file's loop device; a
    file on a plain disk (or overlay) has none, and says so."""
    p = tmp_path / "plain.bin"
    p.write_bytes(b"y" * 4096)
    with pytest.raises(aisio.Error) as e:
        aisio.File(str(p), via="fiemap")
    assert e.value.category in ("not supported", "invalid argument"), str(e.value)
    assert "controller" in str(e.value) or "block device" in str(e.value), str(e.value)


def test_xfs_needs_a_controller(dataset):
    with pytest.raises(aisio.Error) as e:
        aisio.File(dataset["fs_dir"] + "/x", via="xfs")
    assert "controller=" in str(e.value)


def test_write_mode_and_bad_via(dataset, image_ctrl):
    with pytest.raises(aisio.Error) as e:
        aisio.File(dataset["fs_dir"] + "/x", mode="w", via="xfs", controller=image_ctrl)
    assert e.value.category == "not supported"
    with pytest.raises(aisio.Error) as e:
        aisio.File(dataset["fs_dir"] + "/x", via="nfs", controller=image_ctrl)
    assert "fiemap, xfs or homid" in str(e.value)


def test_buffer_too_small_and_not_a_buffer(dataset, image_ctrl):
    rel = next(r for r, (s, _) in dataset["manifest"].items() if s > 8192)
    f = aisio.File(dataset["fs_dir"] + "/" + rel, via="xfs", controller=image_ctrl)
    with pytest.raises(aisio.Error) as e:
        f.read(np.empty(100, dtype=np.uint8), 4096)
    assert e.value.category == "invalid argument" and "larger than the buffer" in str(e.value)
    with pytest.raises(aisio.Error) as e:
        f.read(object())
    assert "buffer protocol" in str(e.value)
    with pytest.raises(aisio.Error):
        f.read(np.empty((64, 64), dtype=np.uint8)[:, ::2])  # not contiguous
    f.close()
    with pytest.raises(aisio.Error) as e:
        f.read(np.empty(10, dtype=np.uint8))
    assert "closed" in str(e.value)


@pytest.mark.skipif(aisio.cuda, reason="this build has CUDA: GPU buffers are accepted")
def test_gpu_buffers_without_cuda_say_so(dataset, image_ctrl):
    class FakeCudaArray:  # what CuPy / torch.cuda tensors present
        __cuda_array_interface__ = {"shape": (4096,), "typestr": "|u1", "data": (0x7f0000000000, False),
                                    "version": 3, "strides": None}
    rel = next(r for r, (s, _) in dataset["manifest"].items() if s > 8192)
    f = aisio.File(dataset["fs_dir"] + "/" + rel, via="xfs", controller=image_ctrl)
    with pytest.raises(aisio.Error) as e:
        f.read(FakeCudaArray())
    assert e.value.category == "not supported" and "CUDA" in str(e.value)
    with pytest.raises(aisio.Error) as e:
        aisio.read_files([dataset["fs_dir"] + "/" + rel], via="xfs", controller=image_ctrl, dest="gpu")
    assert e.value.category == "not supported" and "-DAISIO_CUDA=ON" in str(e.value)

"""examples/torch_dataset.py end to end: it makes an XFS image with a mixed data set,
reads every file into tensors (Dataset and read_files batches) and checks the hashes."""
import os
import subprocess
import sys

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "torch_dataset.py")


def test_torch_dataset_example(tmp_path, dataset):
    pytest.importorskip("torch", reason="PyTorch is not importable (apt-get install python3-torch)")
    # Two DataLoader worker processes: forked after the parent opened the controller.
    r = subprocess.run([sys.executable, EXAMPLE, "--make-image", str(tmp_path / "ds"), "--batch", "8", "--workers", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Dataset (2 workers): 64 files" in r.stdout and "every XXH3-64 matches the manifest" in r.stdout
    assert "read_files in batches of 8" in r.stdout


def test_torch_dataset_example_catches_a_bad_byte(tmp_path, dataset):
    """A byte changed inside the image (in a file's data, not the metadata): the example fails
    naming the file."""
    pytest.importorskip("torch", reason="PyTorch is not importable (apt-get install python3-torch)")
    import aisio
    info = aisio.make_dataset_image(str(tmp_path / "ds"), count=8, mix=False, size="fixed:64K")
    img = info["image"]
    rel = sorted(aisio.load_manifest(os.path.join(info["source_dir"], "manifest.json")))[0]
    # Find the file's bytes in the image: its content is unique (generated per file).
    want = open(os.path.join(info["source_dir"], rel), "rb").read()
    blob = open(img, "rb").read()
    at = blob.find(want[:4096])
    assert at >= 0
    with open(img, "r+b") as f:
        f.seek(at + 100)
        f.write(bytes([blob[at + 100] ^ 0xFF]))
    r = subprocess.run([sys.executable, EXAMPLE, info["fs_dir"], "--controller", "image:" + img, "--via", "xfs"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert rel in r.stderr and "the manifest says" in r.stderr, r.stderr

"""Fixtures of the aisio pytest suite: software controllers and a `fil gen` data set
inside an XFS image that no kernel mounts (only our driver and XFS decoder read it)."""
import os
import shutil
import subprocess
import time

import pytest

import aisio


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA build of aisio and a GPU (skipped otherwise)")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """An XFS image holding a mixed data set (`fil gen --mix`: empty, tiny, unaligned
    tails, sparse, fragmented, regular files) and its manifest."""
    if shutil.which("mkfs.xfs") is None and not os.path.exists("/sbin/mkfs.xfs"):
        pytest.skip("mkfs.xfs not installed (apt-get install xfsprogs)")
    work = tmp_path_factory.mktemp("aisio-py-dataset")
    info = aisio.make_dataset_image(str(work / "img"), count=48, mix=True, seed=7, size="lognormal:96K:1.5:3M")
    info["manifest"] = aisio.load_manifest(os.path.join(info["source_dir"], "manifest.json"))
    return info


@pytest.fixture(scope="session")
def image_ctrl(dataset):
    """The image served by an in-process software controller (image:PATH)."""
    c = aisio.open("image:" + dataset["image"], emu_workers=2)
    yield c
    c.close()


@pytest.fixture(scope="session")
def embedded():
    c = aisio.open("embedded:64M")
    yield c
    c.close()


@pytest.fixture
def aisio_bin():
    b = os.environ.get("AISIO_BIN") or shutil.which("aisio")
    if not b:
        pytest.skip("the aisio CLI is needed (AISIO_BIN, set by ctest)")
    return b


@pytest.fixture
def slow_emu(aisio_bin, tmp_path):
    """An `aisio emu` process whose every I/O command takes 4 ms (a latency model that
    waits, not computes): time spent there is time the CPU is free."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = dict(os.environ, AISIO_RUN_DIR=str(run_dir))
    name = f"pytest{os.getpid()}"
    p = subprocess.Popen([aisio_bin, "emu", "--name", name, "--ns-size", "16M", "--latency-us", "4000",
                          "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sock = run_dir / f"emu-{name}.sock"
    deadline = time.monotonic() + 30
    while not sock.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            pytest.fail(f"aisio emu did not start: {p.stdout.read().decode(errors='replace')}")
        time.sleep(0.05)
    old = os.environ.get("AISIO_RUN_DIR")
    os.environ["AISIO_RUN_DIR"] = str(run_dir)
    try:
        c = aisio.open("emu:" + name)
        yield c
        c.close()
    finally:
        if old is None:
            os.environ.pop("AISIO_RUN_DIR", None)
        else:
            os.environ["AISIO_RUN_DIR"] = old
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()

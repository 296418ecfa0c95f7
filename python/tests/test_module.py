"""The extension module as a shared object: what it shows the rest of the process."""
import shutil
import subprocess
import sys

import pytest

import aisio


def test_module_exports_only_its_init_function():
    # Exported copies of C++ runtime code from the static layer archives were bound by
    # libstdc++ loaded after the module; PyTorch then crashed at import (python/exports.map).
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    out = subprocess.run([nm, "-D", "--defined-only", aisio._aisio.__file__], capture_output=True, text=True,
                         check=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert names == ["PyInit__aisio"], f"{len(names)} exported symbols, e.g. {names[:5]}"


def test_torch_imports_after_aisio():
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, "-c", "import aisio, torch; torch.zeros(4).sum()"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

"""aisio from Python: a user-space NVMe driver and file reader.

Controllers (every handle the `aisio` CLI takes)::

    ctrl = aisio.open("embedded:64M")        # or emu:NAME, image:PATH, 0000:01:00.0, homid[:SOCKET][/CTRL]
    ctrl.identify()["controller"]["mn"]      # Identify Controller as a dict
    ctrl.namespaces()                        # [{'nsid': 1, 'lba_size': 512, 'blocks': ..., 'bytes': ...}]
    ctrl.write(1, 0, numpy_array)            # raw block I/O, host buffers (buffer protocol)
    data = ctrl.read(1, 0, 8)                # -> numpy uint8 array of 8 blocks
    fut = ctrl.read_async(1, 0, 8)           # concurrent.futures.Future

Files, shaped like RAPIDS KvikIO's CuFile (switch by changing the import)::

    with aisio.File("/data/x.bin", via="xfs", controller="image:/srv/fs.img") as f:
        n = f.read(buf)                      # buf: NumPy array, bytearray, CPU/GPU tensor, CuPy array
        fut = f.pread(buf, size, file_offset)   # -> Future; fut.result() is the bytes read

    via: "fiemap"  a file on a mounted file system (the controller serves its device;
                   default: the image behind its loop device)
         "xfs"     a path inside an unmounted XFS file system on the controller's namespace
         "homid"   a mounted file whose extents and queue pairs come from homid
         "auto"    xfs when a controller is given and the path is not a file here, else fiemap

Data sets::

    arrays = aisio.read_files(paths, via="xfs", controller=ctrl, dest="host", verify=True)
    torch.from_dlpack(arrays[0])             # no copy; numpy.asarray(arrays[0]) too (host)

Errors are aisio.Error (a RuntimeError) with .category ('NVMe status', 'invalid argument',
'I/O error', 'not supported', ...) and, for NVMe errors, .status ('LBA Out of Range').
Every call that does I/O releases the GIL. GPU buffers need a build with CUDA
(aisio.cuda is True); without it they raise aisio.Error (category 'not supported').
"""

import builtins
import concurrent.futures
import json
import os
import threading

from . import _aisio
from ._aisio import Array, Error, empty, make_dataset_image, xxh3_64

__all__ = ["open", "Controller", "File", "read_files", "load_manifest", "make_dataset_image", "empty", "Array", "Error",
           "xxh3_64", "cuda", "default_executor"]

#: True when this aisio was built with CUDA (GPU buffers and dest="gpu" work).
cuda = bool(_aisio.cuda)

_executor = None
_executor_lock = threading.Lock()


def default_executor():
    """The thread pool the *_async calls and File.pread run on (created on first use)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(4, os.cpu_count() or 1), thread_name_prefix="aisio")
        return _executor


def _error(category, message):
    e = Error(message)
    e.category = category
    return e


class Controller(_aisio.Controller):
    """An NVMe controller opened from a handle (see aisio.open).

    Raw block I/O moves whole logical blocks between a namespace and host memory
    (anything with the buffer protocol: NumPy arrays, bytearray, memoryview; CPU
    tensors through DLPack). The GIL is released while the I/O runs.
    """

    def read(self, nsid, slba, nlb, out=None):
        """Reads nlb blocks at LBA slba of namespace nsid into out (a writable host
        buffer of at least nlb * LBA size bytes; a new numpy uint8 array when None).
        Returns out. Raises aisio.Error (an NVMe status such as 'LBA Out of Range')."""
        if out is None:
            import numpy
            out = numpy.empty(nlb * self.lba_size(nsid), dtype=numpy.uint8)
        self._read_into(nsid, slba, nlb, out)
        return out

    def write(self, nsid, slba, data):
        """Writes data (a host buffer) at LBA slba of namespace nsid; the last block is
        zero padded."""
        self._write_from(nsid, slba, data)

    def read_async(self, nsid, slba, nlb, out=None):
        """read() on aisio's thread pool: returns a concurrent.futures.Future of out."""
        return default_executor().submit(self.read, nsid, slba, nlb, out)

    def write_async(self, nsid, slba, data):
        """write() on aisio's thread pool: returns a concurrent.futures.Future."""
        return default_executor().submit(self.write, nsid, slba, data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<aisio.Controller {self.handle} ({self.describe})>"


def open(handle, *, lba_size=512, emu_workers=1, client_name=""):
    """Opens the controller behind handle: emu:NAME, embedded[:SIZE], image:PATH, a PCI
    address, homid[:SOCKET][/CONTROLLER] or homid-vf[:SOCKET][/PF]. lba_size and
    emu_workers apply to image: and embedded controllers (in-process software ones)."""
    return Controller(handle, lba_size=lba_size, emu_workers=emu_workers, client_name=client_name)


# ---- files ------------------------------------------------------------------------

_controllers = {}   # handle string -> Controller, opened once per process
_volumes = {}       # (controller, via, dir, options) -> _aisio._Volume
_cache_lock = threading.Lock()
_forked_away = []   # what a forked child inherited: never used, never torn down


def _after_fork_in_child():
    """A forked child (a DataLoader worker) has none of the parent's threads: its
    in-process controllers and pools are dead. Handles are opened afresh there; what
    was inherited is kept, untouched (tearing it down would wait on threads that are
    gone)."""
    global _controllers, _volumes, _cache_lock, _executor, _executor_lock
    _forked_away.append((_controllers, _volumes, _executor))
    _controllers, _volumes = {}, {}
    _cache_lock = threading.Lock()
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _controller(c):
    if c is None or isinstance(c, _aisio.Controller):
        return c
    if not isinstance(c, str):
        raise TypeError("controller: a handle string or an aisio.Controller")
    with _cache_lock:
        if c not in _controllers:
            _controllers[c] = open(c)
        return _controllers[c]


def _via(via, path, ctrl):
    if via not in ("auto", "fiemap", "xfs", "homid"):
        raise _error("invalid argument", f"via={via!r}: use auto, fiemap, xfs or homid")
    if via != "auto":
        return via
    if ctrl is not None and ctrl.handle.startswith("homid"):
        return "homid"
    if ctrl is not None and not os.path.exists(path):
        return "xfs"
    return "fiemap"


def _volume(ctrl, via, dir, nsid, fs_offset, qd, io_size, poll, homid_socket, homid_controller):
    key = (id(ctrl) if ctrl is not None else None, via, dir, nsid, fs_offset, qd, io_size, poll, homid_socket,
           homid_controller)
    with _cache_lock:
        v = _volumes.get(key)
        if v is None:
            try:
                v = _aisio._Volume(ctrl, via, dir, nsid=nsid, fs_offset=fs_offset, qd=qd, io_size=io_size,
                                   poll=poll, homid_socket=homid_socket, homid_controller=homid_controller)
            except Error as e:  # the engine speaks the CLI's option names
                if "--target" not in str(e):
                    raise
                raise _error(e.category, str(e).replace("--target", "controller=")) from e
            _volumes[key] = (v, ctrl)  # the controller lives as long as its volumes
        else:
            v = v[0]
        return v


def _locate(path, via):
    """(directory the volume is opened on, path relative to it)."""
    if via == "xfs":
        if not path.startswith("/"):
            raise _error("invalid argument", f"via='xfs': {path!r} must be absolute inside the file system")
        return "/", path.lstrip("/")
    full = os.path.realpath(path)
    if not os.path.isfile(full):
        why = "No such file or directory" if not os.path.exists(full) else "not a regular file"
        raise _error("invalid argument", f"{path}: {why}")
    return os.path.dirname(full), os.path.basename(full)


class File:
    """A file read by aisio's NVMe driver, with KvikIO's CuFile interface.

    File(path, mode="r", via="auto", controller=None, nsid=1, fs_offset=None,
         qd=32, io_size=262144, poll="spin", task_size=16 MiB)

    path: a file here (via fiemap or homid) or a path inside an unmounted XFS file
    system on the controller (via xfs). controller: a handle string (opened once per
    process) or an aisio.Controller. Buffers: host memory (buffer protocol, DLPack
    kDLCPU) or GPU memory (DLPack kDLCUDA, __cuda_array_interface__) in a CUDA build.
    Only reading is supported (mode "r").
    """

    def __init__(self, path, mode="r", via="auto", controller=None, nsid=1, fs_offset=None, qd=32,
                 io_size=256 << 10, poll="spin", task_size=16 << 20, homid_socket="", homid_controller="0"):
        if mode not in ("r", "rb"):
            raise _error("not supported", f"aisio.File mode {mode!r}: only reading ('r') is supported")
        path = os.fspath(path)
        self._ctrl = _controller(controller)
        self.via = _via(via, path, self._ctrl)
        self.path = path
        dir, self._rel = _locate(path, self.via)
        self._vol = _volume(self._ctrl, self.via, dir, nsid, fs_offset, qd, io_size, poll, homid_socket,
                            homid_controller)
        self._size = self._vol.size(self._rel)  # raises aisio.Error for a file that is not there
        self._task_size = max(int(task_size), 4096)
        self._closed = False

    # KvikIO names
    def nbytes(self):
        """The file's size in bytes."""
        return self._size

    @property
    def closed(self):
        return self._closed

    def close(self):
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self):
        if self._closed:
            raise _error("invalid argument", f"{self.path}: the file is closed")

    def read(self, buf, size=None, file_offset=0):
        """Reads size bytes (default: the buffer's size) at file_offset into buf and
        waits; returns the bytes read (fewer at the end of the file). A read of at most
        task_size runs on the calling thread (without the GIL)."""
        self._check()
        if size is None or int(size) <= self._task_size:
            return self._vol.pread(self._rel, buf, size, file_offset)
        return self.pread(buf, size, file_offset).result()

    def pread(self, buf, size=None, file_offset=0):
        """Starts reading size bytes (default: the buffer's size) at file_offset into buf;
        returns a concurrent.futures.Future whose result is the bytes read. A read of a
        host buffer with a size larger than task_size is split over aisio's thread pool
        (a queue pair each)."""
        self._check()
        if size is None:
            return default_executor().submit(self._vol.pread, self._rel, buf, None, file_offset)
        size = int(size)
        if size < 0 or file_offset < 0:
            raise _error("invalid argument", "size and file_offset must not be negative")
        end = min(size, max(self._size - file_offset, 0))
        if end <= self._task_size:
            return default_executor().submit(self._vol.pread, self._rel, buf, size, file_offset)
        # Pieces of task_size, each into its own slice of buf, in parallel.
        view = _byte_view(buf)
        if view is None:
            return default_executor().submit(self._vol.pread, self._rel, buf, size, file_offset)
        futs = [default_executor().submit(self._vol.pread, self._rel, view[o:o + self._task_size],
                                          min(self._task_size, size - o), file_offset + o)
                for o in range(0, end, self._task_size)]
        return _gather(futs)

    def __repr__(self):
        return f"<aisio.File {self.path!r} via {self.via}, {self._size} bytes>"


def _byte_view(buf):
    """A sliceable flat byte view of a host buffer, or None (GPU memory, DLPack)."""
    try:
        return memoryview(buf).cast("B")
    except TypeError:
        return None


def _gather(futs):
    """One Future for several: the sum of their results, or the first exception."""
    out = concurrent.futures.Future()
    left = [len(futs)]
    lock = threading.Lock()

    def done(_):
        with lock:
            left[0] -= 1
            if left[0]:
                return
        try:
            out.set_result(sum(f.result() for f in futs))
        except BaseException as e:  # noqa: B902 - handed to the caller's result()
            out.set_exception(e)

    for f in futs:
        f.add_done_callback(done)
    return out


# ---- data sets --------------------------------------------------------------------

def load_manifest(path_or_text):
    """A `aisio fil gen` manifest (manifest.json) as {relative path: (size, xxh3)}."""
    text = path_or_text
    if not text.lstrip().startswith("{"):
        with builtins.open(path_or_text) as f:
            text = f.read()
    m = json.loads(text)
    if m.get("format") not in (None, "aisio-fil-manifest"):
        raise _error("protocol error", "not an aisio fil manifest")
    return {e["path"]: (int(e["size"]), int(e["xxh3"], 16)) for e in m["files"]}


def _find_manifest(paths, via, vol, root):
    """The manifest of the data set the paths belong to: manifest.json in their common
    directory or one above it, read here (fiemap, homid) or through the volume (xfs).
    Returns (manifest dict, its directory relative to root) or raises."""
    rel_dir = os.path.commonpath([os.path.dirname(p) for p in paths]).strip("/")
    while True:
        cand = os.path.join(rel_dir, "manifest.json")
        try:
            if via == "xfs":
                import numpy
                n = vol.size(cand)
                buf = numpy.empty(n, dtype=numpy.uint8)
                vol.pread(cand, buf, n, 0)
                return load_manifest(buf.tobytes().decode()), rel_dir
            p = os.path.join(root, cand)
            if os.path.exists(p):
                return load_manifest(p), rel_dir
        except Error:
            pass
        if not rel_dir:
            raise _error("invalid argument", "verify=True: no manifest.json found above the files; pass manifest=")
        rel_dir = os.path.dirname(rel_dir)


def read_files(paths, via="auto", controller=None, dest="host", verify=False, manifest=None, threads=4, device=0,
               nsid=1, fs_offset=None, qd=32, io_size=256 << 10, poll="spin"):
    """Reads many files at once and returns one aisio.Array per path, in order.

    threads readers (a queue pair each, qd chunks of io_size in flight) take the
    files in batches, as `aisio fil run` does. dest: "host" (NumPy-compatible, DLPack
    kDLCPU) or "gpu" (GPU `device`, DLPack kDLCUDA; CUDA builds). Arrays are exported
    with no copy: torch.from_dlpack(a), numpy.asarray(a).
    verify: check each file's XXH3-64 (in the destination memory) against manifest (a
    path, or the dict load_manifest returns; default: the manifest.json of the data
    set the files are in). Raises aisio.Error naming the files that failed.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return []
    ctrl = _controller(controller)
    via = _via(via, paths[0], ctrl)
    if via == "xfs":
        root, rels = "/", [_locate(p, via)[1] for p in paths]
    else:
        full = [os.path.join(*_locate(p, via)) for p in paths]
        root = os.path.dirname(full[0]) if len(full) == 1 else os.path.commonpath([os.path.dirname(p) for p in full])
        rels = [os.path.relpath(p, root) for p in full]
    vol = _volume(ctrl, via, root, nsid, fs_offset, qd, io_size, poll, "", "0")
    got = _aisio._read_many(vol, rels, threads=threads, dest=dest, device=device)
    failed = [f"{p}: {err}" for p, (_, err) in zip(paths, got) if err is not None]
    if failed:
        raise _error("I/O error", f"read_files: {len(failed)} of {len(paths)} files failed: " + "; ".join(failed[:5]))
    arrays = [a for a, _ in got]
    if verify:
        if manifest is None:
            man, base = _find_manifest(rels, via, vol, root)
        else:
            man, base = (load_manifest(manifest) if not isinstance(manifest, dict) else manifest), None
        bad = []
        for p, rel, a in zip(paths, rels, arrays):
            key = os.path.relpath(rel, base) if base is not None else None
            if key is None or key not in man:
                key = next((k for k in man if rel.endswith("/" + k) or rel == k), None)
            if key is None:
                bad.append(f"{p}: not in the manifest")
                continue
            size, h = man[key]
            if a.nbytes != size:
                bad.append(f"{p}: {a.nbytes} bytes, the manifest says {size}")
            elif a.xxh3() != h:
                bad.append(f"{p}: XXH3-64 {a.xxh3():016x}, the manifest says {h:016x}")
        if bad:
            raise _error("I/O error", f"read_files: {len(bad)} files failed verification: " + "; ".join(bad[:5]))
    return arrays

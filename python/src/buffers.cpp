#include "buffers.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "gpu_copy.hpp"

namespace aisio::py {

namespace pyb = pybind11;

namespace {

// Bytes of a compact row-major array; invalid_argument when the strides say otherwise.
size_t contiguous_bytes(const std::vector<int64_t>& shape, const int64_t* strides_elems, size_t item) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  if (!strides_elems || n == 0) return n * item;
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides_elems[i] != expect)
      throw Error(Errc::invalid_argument, "the buffer is not contiguous: pass a contiguous array (.contiguous(), "
                                          "numpy.ascontiguousarray)");
    expect *= shape[i];
  }
  return n * item;
}

bool is_gpu_device(int32_t t) { return t == dl::kCUDA || t == dl::kCUDAManaged; }

}  // namespace

BufferRef::BufferRef(pyb::handle obj, bool writable) {
  try {
    acquire(obj, writable);
  } catch (...) {
    release();  // a constructor that throws runs no destructor
    throw;
  }
}

void BufferRef::acquire(pyb::handle obj, bool writable) {
  // DLPack first for tensors (torch has no buffer protocol), then the buffer protocol,
  // then __cuda_array_interface__.
  if (PyCapsule_CheckExact(obj.ptr())) {
    from_dlpack(obj, writable);
    return;
  }
  if (PyObject_CheckBuffer(obj.ptr())) {
    const int flags = PyBUF_ND | (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS;
    if (PyObject_GetBuffer(obj.ptr(), &view_, flags) != 0) {
      PyErr_Clear();
      if (writable && PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) == 0) {
        PyBuffer_Release(&view_);
        throw Error(Errc::invalid_argument, "the buffer is read-only: a read needs writable memory");
      }
      PyErr_Clear();
      throw Error(Errc::invalid_argument, "the buffer is not C-contiguous: pass a contiguous array");
    }
    have_view_ = true;
    p_ = static_cast<uint8_t*>(view_.buf);
    n_ = size_t(view_.len);
    return;
  }
  if (pyb::hasattr(obj, "__cuda_array_interface__")) {
    from_cuda_array_interface(obj, writable);
    return;
  }
  if (pyb::hasattr(obj, "__dlpack__")) {
    from_dlpack(obj, writable);
    return;
  }
  throw Error(Errc::invalid_argument,
              fmt::format("a buffer of type {} has neither the buffer protocol, __dlpack__ nor "
                          "__cuda_array_interface__",
                          std::string(pyb::str(pyb::type::handle_of(obj).attr("__name__")))));
}

void BufferRef::from_dlpack(pyb::handle h, bool) {
  pyb::object cap = PyCapsule_CheckExact(h.ptr()) ? pyb::reinterpret_borrow<pyb::object>(h) : h.attr("__dlpack__")();
  auto* m = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), dl::kCapsule));
  if (!m) {
    PyErr_Clear();
    throw Error(Errc::invalid_argument, "not a DLPack capsule named 'dltensor' (already consumed?)");
  }
  // The capsule is ours now: we call its deleter (and its destructor must not).
  PyCapsule_SetName(cap.ptr(), dl::kUsedCapsule);
  dl_ = m;
  const dl::Tensor& t = m->dl_tensor;
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  const size_t item = size_t(t.dtype.bits / 8) * t.dtype.lanes;
  if (t.dtype.bits % 8 != 0 || item == 0) throw Error(Errc::invalid_argument, "DLPack: a dtype of sub-byte items");
  n_ = contiguous_bytes(shape, t.strides, item);
  p_ = static_cast<uint8_t*>(t.data) + t.byte_offset;
  if (t.device.device_type == dl::kCPU || t.device.device_type == dl::kCUDAHost) {
    gpu_ = false;
  } else if (is_gpu_device(t.device.device_type)) {
    if (!gpu::built()) gpu::device_of(p_);  // throws: no CUDA in this build
    gpu_ = true;
    device_ = t.device.device_id;
  } else {
    throw Error(Errc::invalid_argument, fmt::format("DLPack device type {} is neither CPU nor CUDA",
                                                    t.device.device_type));
  }
}

void BufferRef::from_cuda_array_interface(pyb::handle obj, bool writable) {
  pyb::dict cai = obj.attr("__cuda_array_interface__");
  pyb::tuple data = cai["data"];
  if (writable && data[1].cast<bool>()) throw Error(Errc::invalid_argument, "the CUDA array is read-only");
  std::vector<int64_t> shape;
  for (auto d : pyb::tuple(cai["shape"])) shape.push_back(d.cast<int64_t>());
  std::string typestr = cai["typestr"].cast<std::string>();
  size_t item = typestr.size() >= 3 ? size_t(std::atoi(typestr.c_str() + 2)) : 0;
  if (item == 0) throw Error(Errc::invalid_argument, "__cuda_array_interface__: bad typestr '" + typestr + "'");
  std::vector<int64_t> strides;
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    for (auto s : pyb::tuple(cai["strides"])) {
      int64_t b = s.cast<int64_t>();
      if (b % int64_t(item)) throw Error(Errc::invalid_argument, "__cuda_array_interface__: unaligned strides");
      strides.push_back(b / int64_t(item));
    }
  }
  n_ = contiguous_bytes(shape, strides.empty() ? nullptr : strides.data(), item);
  p_ = reinterpret_cast<uint8_t*>(data[0].cast<uintptr_t>());
  gpu_ = true;
  device_ = n_ ? gpu::device_of(p_) : 0;  // throws without CUDA
  keep_ = pyb::reinterpret_borrow<pyb::object>(obj);
}

BufferRef::~BufferRef() { release(); }

void BufferRef::release() {
  if (have_view_) PyBuffer_Release(&view_);
  have_view_ = false;
  if (dl_ && dl_->deleter) dl_->deleter(dl_);
  dl_ = nullptr;
}

// ---- arrays handed out -----------------------------------------------------------

Storage::Storage(size_t bytes, bool on_gpu, int dev) : n(bytes), gpu(on_gpu), device(dev) {
  if (gpu) {
    p = static_cast<uint8_t*>(gpu::alloc(bytes, dev));
  } else {
    // 4 KiB aligned like a DMA buffer; at least one page so an empty array has a pointer.
    p = static_cast<uint8_t*>(std::aligned_alloc(4096, std::max<size_t>(4096, (bytes + 4095) & ~size_t(4095))));
    if (!p) throw Error(Errc::no_memory, fmt::format("cannot allocate {} bytes", bytes));
  }
}

Storage::~Storage() {
  if (gpu) gpu::free(p, device);
  else std::free(p);
}

uint64_t Array::xxh3() const {
  if (!s_->gpu) return XXH3_64bits(s_->p, s_->n);
  XXH3_state_t* st = XXH3_createState();
  if (!st) throw Error(Errc::no_memory, "XXH3_createState");
  XXH3_64bits_reset(st);
  std::vector<uint8_t> host(std::min<size_t>(s_->n, 8 << 20));
  try {
    for (size_t off = 0; off < s_->n; off += host.size()) {
      size_t k = std::min(host.size(), s_->n - off);
      gpu::copy_to_host(host.data(), s_->p + off, k, s_->device);
      XXH3_64bits_update(st, host.data(), k);
    }
  } catch (...) {
    XXH3_freeState(st);
    throw;
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

namespace {
// What one exported DLManagedTensor holds: the storage and its 1-D shape.
struct Export {
  dl::ManagedTensor m{};
  std::shared_ptr<Storage> s;
  int64_t shape[1] = {0};
};
void delete_export(dl::ManagedTensor* m) { delete static_cast<Export*>(m->manager_ctx); }
}  // namespace

pyb::capsule Array::dlpack() const {
  auto* e = new Export;
  e->s = s_;
  e->shape[0] = int64_t(s_->n);
  e->m.manager_ctx = e;
  e->m.deleter = delete_export;
  dl::Tensor& t = e->m.dl_tensor;
  t.data = s_->p;
  t.device = {s_->gpu ? dl::kCUDA : dl::kCPU, s_->gpu ? s_->device : 0};
  t.ndim = 1;
  t.dtype = {dl::kUInt, 8, 1};
  t.shape = e->shape;
  t.strides = nullptr;
  t.byte_offset = 0;
  // An unconsumed capsule frees its export; a consumer renames it and calls the deleter.
  return pyb::capsule(&e->m, dl::kCapsule, [](PyObject* cap) {
    if (PyCapsule_IsValid(cap, dl::kCapsule)) {
      auto* m = static_cast<dl::ManagedTensor*>(PyCapsule_GetPointer(cap, dl::kCapsule));
      m->deleter(m);
    }
  });
}

void register_buffers(pyb::module_& m) {
  auto arr = pyb::class_<Array, std::shared_ptr<Array>>(
      m, "Array",
      "Bytes read by aisio: a 1-D uint8 array in host or GPU memory. torch.from_dlpack(a) and "
      "numpy.from_dlpack(a) share it without a copy; numpy.asarray(a) too for host memory.");
  arr.def_property_readonly("nbytes", &Array::nbytes, "Size in bytes.")
      .def_property_readonly("path", &Array::path, "The file it was read from.")
      .def_property_readonly("device", [](const Array& a) {
        return a.storage()->gpu ? fmt::format("cuda:{}", a.storage()->device) : std::string("cpu");
      }, "'cpu' or 'cuda:N'.")
      .def("__len__", &Array::nbytes)
      .def("xxh3", [](const Array& a) {
        pyb::gil_scoped_release nogil;
        return a.xxh3();
      }, "XXH3-64 of the bytes (what `aisio fil gen` manifests record); GPU memory is copied back in pieces.")
      .def("__dlpack__", [](const Array& a, pyb::object stream) {
        (void)stream;  // every copy into the array was synchronous: no stream to wait on
        return a.dlpack();
      }, pyb::arg("stream") = pyb::none(), "DLPack capsule (no copy).")
      .def("__dlpack_device__", [](const Array& a) {
        return pyb::make_tuple(a.storage()->gpu ? int(dl::kCUDA) : int(dl::kCPU), a.storage()->gpu ? a.storage()->device : 0);
      }, "(device type, device id): (1, 0) for host memory (kDLCPU), (2, N) for GPU N (kDLCUDA).")
      .def_property_readonly("__cuda_array_interface__", [](const Array& a) -> pyb::object {
        if (!a.storage()->gpu) throw pyb::attribute_error("host memory has no __cuda_array_interface__");
        pyb::dict d;
        d["shape"] = pyb::make_tuple(a.nbytes());
        d["typestr"] = "|u1";
        d["data"] = pyb::make_tuple(reinterpret_cast<uintptr_t>(a.storage()->p), false);
        d["version"] = 3;
        d["strides"] = pyb::none();
        return d;
      })
      .def_property_readonly("__array_interface__", [](const Array& a) -> pyb::object {
        if (a.storage()->gpu) throw pyb::attribute_error("GPU memory has no __array_interface__ (use DLPack)");
        pyb::dict d;
        d["shape"] = pyb::make_tuple(a.nbytes());
        d["typestr"] = "|u1";
        d["data"] = pyb::make_tuple(reinterpret_cast<uintptr_t>(a.storage()->p), false);
        d["version"] = 3;
        return d;
      })
      .def("__repr__", [](const Array& a) {
        return fmt::format("<aisio.Array {} bytes on {} from {}>", a.nbytes(),
                           a.storage()->gpu ? fmt::format("cuda:{}", a.storage()->device) : "cpu", a.path());
      });
  m.def("empty", [](size_t nbytes, const std::string& dest, int device) {
    if (dest != "host" && dest != "gpu") throw Error(Errc::invalid_argument, "dest='" + dest + "': use 'host' or 'gpu'");
    if (dest == "gpu") gpu::require(device);
    return std::make_shared<Array>(std::make_shared<Storage>(nbytes, dest == "gpu", device), "");
  }, pyb::arg("nbytes"), pyb::arg("dest") = "host", pyb::arg("device") = 0,
     "A new uninitialised aisio.Array of nbytes in host memory or on GPU `device` (a CUDA build): a "
     "destination for File.pread when neither PyTorch nor CuPy is at hand.");
  m.def("xxh3_64", [](pyb::object buf) {
    BufferRef b(buf, false);
    if (b.gpu()) throw Error(Errc::invalid_argument, "xxh3_64: host memory only (Array.xxh3() hashes GPU arrays)");
    pyb::gil_scoped_release nogil;
    return XXH3_64bits(b.data(), b.size());
  }, pyb::arg("buffer"), "XXH3-64 (seed 0) of a host buffer: the hash `aisio fil gen` records per file.");
}

}  // namespace aisio::py

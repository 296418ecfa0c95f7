// Memory the caller hands in, and the arrays read_files hands out.
//
// In: anything with the buffer protocol (NumPy arrays, bytearray, memoryview), a
// DLPack producer (__dlpack__, or a "dltensor" capsule: CPU and CUDA tensors), or
// __cuda_array_interface__ (CuPy, Numba, PyTorch CUDA tensors). It must be contiguous;
// a read needs it writable. Out: Array, a 1-D uint8 array in host memory (buffer
// protocol, so NumPy takes it) or in GPU memory (the CUDA build), both exporting
// __dlpack__ / __dlpack_device__ so torch.from_dlpack takes them without a copy.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dlpack.hpp"

namespace aisio::py {

// Memory of a caller's object, held for the duration of one call. Built and destroyed
// with the GIL held; its bytes may be used without it in between.
class BufferRef {
 public:
  // Errc::invalid_argument for an object that is none of the above, not contiguous or
  // (writable) read-only; not_supported for GPU memory in a build without CUDA.
  BufferRef(pybind11::handle obj, bool writable);
  ~BufferRef();
  BufferRef(const BufferRef&) = delete;
  BufferRef& operator=(const BufferRef&) = delete;

  uint8_t* data() const { return p_; }
  size_t size() const { return n_; }
  bool gpu() const { return gpu_; }
  int device() const { return device_; }

 private:
  void acquire(pybind11::handle obj, bool writable);
  void release();
  void from_dlpack(pybind11::handle capsule_or_producer, bool writable);
  void from_cuda_array_interface(pybind11::handle obj, bool writable);
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
  bool gpu_ = false;
  int device_ = 0;
  Py_buffer view_{};
  bool have_view_ = false;
  pybind11::object keep_;
  dl::ManagedTensor* dl_ = nullptr;  // consumed capsule: we call its deleter
};

// Bytes owned by an Array (and by every DLPack export of it).
struct Storage {
  uint8_t* p = nullptr;
  size_t n = 0;
  bool gpu = false;
  int device = 0;
  Storage(size_t bytes, bool on_gpu, int dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Array {
 public:
  Array(std::shared_ptr<Storage> s, std::string path) : s_(std::move(s)), path_(std::move(path)) {}
  const std::shared_ptr<Storage>& storage() const { return s_; }
  const std::string& path() const { return path_; }
  size_t nbytes() const { return s_->n; }
  // XXH3-64 of the contents (GPU memory: copied back in pieces and hashed on the host).
  uint64_t xxh3() const;
  // The DLPack capsule: the consumer shares the storage (no copy).
  pybind11::capsule dlpack() const;

 private:
  std::shared_ptr<Storage> s_;
  std::string path_;
};

void register_buffers(pybind11::module_& m);

}  // namespace aisio::py

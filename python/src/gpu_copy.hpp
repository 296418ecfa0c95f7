// GPU memory for the Python package: the copies between the host bytes the file
// readers deliver and the caller's device memory, and device allocations for
// read_files(dest="gpu"). The CUDA runtime does the work in the CUDA build
// (-DAISIO_CUDA=ON); without it every call throws Errc::not_supported saying so.
#pragma once
#include <cstddef>

namespace aisio::py::gpu {

bool built();
// Throws unless GPU `device` can be used (not_supported without CUDA).
void require(int device);
// Copies are synchronous: the bytes are in place when they return.
void copy_to_device(void* dst, const void* src, size_t n, int device);
void copy_to_host(void* dst, const void* src, size_t n, int device);
void* alloc(size_t n, int device);
void free(void* p, int device) noexcept;
// Throws invalid_argument unless p is device (or managed) memory of a CUDA device.
int device_of(const void* p);

}  // namespace aisio::py::gpu

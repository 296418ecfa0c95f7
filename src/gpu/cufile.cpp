#include "gpu/cufile.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdint>
#include <cstring>

#include "common/error.hpp"

namespace aisio::gpu {

// The few declarations of cufile.h we use (layouts as in cufile.h of CUDA 12/13).
namespace cufile_abi {
struct Error {
  int err;     // CUfileOpError, 0 = CU_FILE_SUCCESS
  int cu_err;  // CUresult
};
struct Descr {
  int type;  // CUfileFileHandleType: 1 = CU_FILE_HANDLE_TYPE_OPAQUE_FD
  union {
    int fd;
    void* handle;
  } handle;
  const void* fs_ops;
  uint8_t zero_tail[64];  // room (zeroed) for fields a newer cufile.h may append
};
}  // namespace cufile_abi

struct CuFile::Api {
  using Error = cufile_abi::Error;
  Error (*driver_open)() = nullptr;
  Error (*driver_close)() = nullptr;
  Error (*handle_register)(void** fh, cufile_abi::Descr* descr) = nullptr;
  void (*handle_deregister)(void* fh) = nullptr;
  Error (*buf_register)(const void* buf, size_t len, int flags) = nullptr;
  Error (*buf_deregister)(const void* buf) = nullptr;
  ssize_t (*read)(void* fh, void* buf, size_t size, off_t file_offset, off_t buf_offset) = nullptr;
};

std::shared_ptr<CuFile> CuFile::open() {
  std::shared_ptr<CuFile> c(new CuFile());
  c->compat_ = access("/proc/driver/nvidia-fs", F_OK) != 0;
  if (c->compat_) setenv("CUFILE_FORCE_COMPAT_MODE", "true", 0);  // before the library reads its config
  const char* names[] = {"libcufile.so.0", "libcufile.so", "/usr/local/cuda/lib64/libcufile.so.0",
                         "/usr/local/cuda/targets/x86_64-linux/lib/libcufile.so.0"};
  std::string errs;
  for (const char* n : names) {
    c->dl_ = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (c->dl_) break;
    errs += std::string(errs.empty() ? "" : "; ") + dlerror();
  }
  if (!c->dl_) throw Error(Errc::not_supported, "cuFile: libcufile not found (" + errs + ")");
  c->api_ = std::make_unique<Api>();
  auto sym = [&](std::initializer_list<const char*> ns, auto& fn) {
    for (const char* n : ns)
      if (void* p = dlsym(c->dl_, n)) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
        return;
      }
    throw Error(Errc::not_supported, fmt::format("cuFile: libcufile lacks {}", *ns.begin()));
  };
  sym({"cuFileDriverOpen"}, c->api_->driver_open);
  sym({"cuFileDriverClose_v2", "cuFileDriverClose"}, c->api_->driver_close);
  sym({"cuFileHandleRegister"}, c->api_->handle_register);
  sym({"cuFileHandleDeregister"}, c->api_->handle_deregister);
  sym({"cuFileBufRegister"}, c->api_->buf_register);
  sym({"cuFileBufDeregister"}, c->api_->buf_deregister);
  sym({"cuFileRead"}, c->api_->read);
  auto e = c->api_->driver_open();
  if (e.err != 0)
    throw Error(Errc::not_supported, fmt::format("cuFileDriverOpen failed: CUfileOpError {} (CUresult {})", e.err,
                                                 e.cu_err));
  Dl_info info{};
  dladdr(reinterpret_cast<void*>(c->api_->read), &info);
  c->describe_ = fmt::format("cuFile ({}), {}", info.dli_fname ? info.dli_fname : "libcufile",
                             c->compat_ ? "compatibility mode: no nvidia-fs (POSIX reads + copies to the GPU)"
                                        : "nvidia-fs present (GPUDirect Storage)");
  return c;
}

CuFile::~CuFile() {
  if (api_ && api_->driver_close) api_->driver_close();
  // libcufile keeps threads; it is not dlclose()d.
}

void CuFile::register_buffer(void* dev, size_t n) {
  auto e = api_->buf_register(dev, n, 0);
  if (e.err != 0) throw Error(Errc::system, fmt::format("cuFileBufRegister: CUfileOpError {}", e.err));
}
void CuFile::deregister_buffer(void* dev) { api_->buf_deregister(dev); }

CuFile::File::File(CuFile& lib, const std::string& path) : lib_(lib), path_(path) {
  fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT));
  if (!fd_) fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));  // file systems without O_DIRECT
  if (!fd_) throw_errno("open " + path);
  auto reg = [&] {
    cufile_abi::Descr d;
    std::memset(&d, 0, sizeof d);
    d.type = 1;
    d.handle.fd = fd_.get();
    return lib_.api_->handle_register(&handle_, &d);
  };
  auto e = reg();
  if (e.err != 0) {  // some set-ups register only buffered descriptors in compat mode
    Fd fd2(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd2) {
      fd_ = std::move(fd2);
      auto e2 = reg();
      if (e2.err == 0) e = e2;
    }
  }
  if (e.err != 0) {
    handle_ = nullptr;
    throw Error(Errc::system, fmt::format("cuFileHandleRegister({}): CUfileOpError {} (CUresult {}); see cufile.log",
                                          path, e.err, e.cu_err));
  }
}

CuFile::File::~File() {
  if (handle_) lib_.api_->handle_deregister(handle_);  // before fd_ closes
}

size_t CuFile::File::read(void* dev_base, size_t n, off_t off, off_t dev_off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = lib_.api_->read(handle_, dev_base, n - done, off + off_t(done), dev_off + off_t(done));
    if (r < 0) throw Error(Errc::io, fmt::format("cuFileRead({}): {}", path_, r));
    if (r == 0) break;  // EOF
    done += size_t(r);
  }
  return done;
}

}  // namespace aisio::gpu

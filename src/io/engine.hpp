// The file workload's view of the backends: how a set of files gets from storage into
// memory.
//
// A FileBackend is one backend (backends/queue.hpp) set up to read files, under the name
// `aisio fil run --paths` gives it (posix and posix-direct: psync; io_uring and
// io_uring-buffered; unvme); it makes one FileReader per reading thread. A FileReader
// reads the files it is given completely, interleaving them as it likes (up to its
// queue depth), and hands every file's bytes to a FileSink in file order:
//
//   sink.begin(f, size)  then  sink.data(f, off, p, n) for off = 0, n0, n0+n1, ...
//   (off starts at f.offset, and size counts only the bytes of that range, for a task
//   that asks for a part of its file)
//   then sink.end(f, error)   (error empty: the whole file was delivered)
//
// Bytes passed to data() are valid only during the call. The sink is the reader's
// thread's own: no locking is needed inside it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace aisio::io {

struct FileTask {
  uint32_t id = 0;     // caller's index (the manifest entry)
  std::string rel;     // path relative to the data set root, "d00/f000001.bin"
  uint64_t size = 0;   // expected size (the engines read to the real EOF)
  // The bytes wanted: [offset, offset + length) clipped at the real EOF (a pread);
  // the whole file by default. begin() is told how many bytes will be delivered. The
  // O_DIRECT paths (posix-direct, io_uring) need a 4 KiB aligned offset.
  uint64_t offset = 0;
  uint64_t length = UINT64_MAX;
};

class FileSink {
 public:
  virtual ~FileSink() = default;
  virtual void begin(const FileTask& f, uint64_t size) = 0;
  virtual void data(const FileTask& f, uint64_t off, const uint8_t* p, size_t n) = 0;
  virtual void end(const FileTask& f, const std::string& error) = 0;
};

// What a reader counted, summed over its calls to read().
struct ReadStats {
  uint64_t files = 0;
  uint64_t bytes = 0;          // file bytes delivered
  uint64_t device_reads = 0;   // read system calls / io_uring SQEs / NVMe commands
  uint64_t device_bytes = 0;   // bytes moved by those (rounded to blocks where aligned)
  uint64_t zero_fill_bytes = 0;  // holes and unwritten extents produced without I/O
  uint64_t fallback_reads = 0; // reads done synchronously through a bounce buffer
  double resolve_s = 0;        // time spent resolving extents (unvme)
  uint64_t poll_sleeps = 0;    // sleeps instead of empty polls (unvme, --poll hybrid)
  uint64_t empty_polls = 0;    // polls of the queue pair that reaped nothing (unvme)
  ReadStats& operator+=(const ReadStats& o);
};

class FileReader {
 public:
  virtual ~FileReader() = default;
  // Reads every file in `files` completely; a failure of one file is reported through
  // sink.end(f, error) and does not stop the others. Throws only for failures of the
  // reader itself (a dead controller, a ring that cannot be set up).
  virtual void read(std::span<const FileTask> files, FileSink& sink) = 0;
  virtual const ReadStats& stats() const = 0;
};

// How a polled reader (unvme) waits for completions. spin: poll without pause, the
// lowest latency at a core per reading thread. hybrid: after an empty poll, sleep in
// halving steps towards the measured wait for completions, and a quarter of the time
// waited once the wait runs late (io/hybrid_poll.hpp), so a slow device (the software
// controller) does not cost a whole core.
enum class PollMode { spin, hybrid };
PollMode parse_poll_mode(const std::string& s);  // "spin" | "hybrid"; throws invalid_argument

struct ReadOptions {
  uint32_t qd = 32;                // reads in flight per thread (io_uring, unvme)
  size_t io_size = 256 << 10;      // bytes per read (a multiple of 4096)
  PollMode poll = PollMode::spin;  // unvme
};

class FileBackend {
 public:
  virtual ~FileBackend() = default;
  virtual std::string name() const = 0;
  // One line: what this path does ("pread through the page cache", ...).
  virtual std::string describe() const = 0;
  // One reader per reading thread; called from the thread that will use it.
  virtual std::unique_ptr<FileReader> make_reader(uint32_t thread) = 0;
};

// ---- the paths ---------------------------------------------------------------------

// The kernel's paths, by name; root: the directory the FileTask paths are under.
//   posix              pread() through the page cache
//   posix-direct       O_DIRECT with 4 KiB aligned buffers; the tail is an aligned read that returns short
//   io_uring           liburing, qd reads in flight per thread, O_DIRECT
//   io_uring-buffered  the same through the page cache
// Errc::not_supported for another name, or io_uring where it cannot run here.
std::unique_ptr<FileBackend> make_kernel_path(const std::string& name, const std::string& root, const ReadOptions& o);

// Which paths exist and are built: backends::Registry::file_paths().

}  // namespace aisio::io

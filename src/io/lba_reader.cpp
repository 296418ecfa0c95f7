#include "io/lba_reader.hpp"

#include <chrono>
#include <cstring>

namespace aisio::io {

LbaRunReader::LbaRunReader(const ReadOptions& o, std::shared_ptr<ExtentSource> src, uint32_t lba_size)
    : PipelineReader(o.qd, o.io_size), src_(std::move(src)), lba_(lba_size) {
  topt_.lba_size = lba_;
  topt_.device_offset = src_->device_offset();
}

void LbaRunReader::open_file(PipeFile& f) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    f.rf = src_->resolve(f.task->rel);
    f.size = f.rf.size;
  } catch (const std::exception& e) {
    f.fail(fmt::format("resolve extents of {} ({}): {}", f.task->rel, src_->name(), e.what()));
  }
  st_.resolve_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool LbaRunReader::translate(Chunk& s) {
  topt_.file_size = s.file->size;
  try {
    s.runs = extents::translate(s.file->rf.extents, s.off, s.off + s.len, topt_);
    return true;
  } catch (const std::exception& e) {
    s.error = fmt::format("{}: {}", s.file->task->rel, e.what());
    s.done = true;
    return false;
  }
}

void LbaRunReader::finish(Chunk& s) {
  for (const auto& r : s.runs) {
    if (!r.zero_fill) continue;
    std::memset(s.buf + (r.file_offset - s.off), 0, r.length);
    st_.zero_fill_bytes += r.length;
  }
}

}  // namespace aisio::io

#include "io/pipeline.hpp"

#include <algorithm>

namespace aisio::io {

void PipelineReader::end_file(PipeFile& f, FileSink& sink) {
  close_file(f);
  if (f.opened || count_unopened_) ++st_.files;
  sink.end(*f.task, f.failed ? f.error : std::string());
}

void PipelineReader::read(std::span<const FileTask> files, FileSink& sink) {
  std::deque<PipeFile> state;
  size_t next_file = 0;
  PipeFile* cur = nullptr;
  uint32_t head = 0, tail = 0, inflight = 0;

  for (;;) {
    // Issue chunks while there are free slots.
    bool issued = false;
    while (inflight < qd_) {
      if (!cur || cur->failed || cur->next_off >= cur->end) {
        if (next_file == files.size()) break;
        cur = &state.emplace_back();
        cur->task = &files[next_file++];
        open_file(*cur);
        if (!cur->failed) {  // the task's range, clipped at EOF
          const FileTask& t = *cur->task;
          cur->next_off = std::min(t.offset, cur->size);
          cur->end = t.length >= cur->size - cur->next_off ? cur->size : cur->next_off + t.length;
        }
        sink.begin(*cur->task, cur->failed ? 0 : cur->end - cur->next_off);
        if (cur->failed || cur->next_off == cur->end) {
          end_file(*cur, sink);
          cur = nullptr;
        }
        continue;
      }
      Chunk& s = slots_[tail];
      s.file = cur;
      s.off = cur->next_off;
      s.len = size_t(std::min<uint64_t>(io_size_, cur->end - cur->next_off));
      s.done = false;
      s.pending = 0;
      s.res = 0;
      s.error.clear();
      cur->next_off += s.len;
      ++cur->outstanding;
      tail = (tail + 1) % qd_;
      ++inflight;
      issue(s);
      issued = true;
    }
    if (issued) flush();
    if (inflight == 0) {
      if (next_file == files.size() && (!cur || cur->failed || cur->next_off >= cur->end)) break;
      continue;
    }
    if (!slots_[head].done) reap(true);
    // Deliver finished chunks in issue order.
    while (inflight > 0 && slots_[head].done) {
      Chunk& s = slots_[head];
      PipeFile& f = *s.file;
      if (!f.failed) {
        if (s.error.empty()) finish(s);
        if (!s.error.empty()) {
          f.fail(s.error);
        } else {
          sink.data(*f.task, s.off, s.buf, s.len);
          st_.bytes += s.len;
        }
      }
      head = (head + 1) % qd_;
      --inflight;
      if (--f.outstanding == 0 && (f.failed || f.next_off >= f.end)) {
        if (&f == cur) cur = nullptr;
        end_file(f, sink);
      }
    }
  }
}

}  // namespace aisio::io

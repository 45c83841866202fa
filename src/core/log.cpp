#include "core/log.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "core/time_format.hpp"

namespace starling {
namespace {

// True when stderr is the stream journald gave us (sd_journal_stream_fd / systemd.exec(5)).
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (!env) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// Control characters are written as \xNN: a newline in a name taken from a client or from a
// file name would otherwise start a forged line, "<0>..." included (log injection).
void append_escaped(std::string& line, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      line += "\\x";
      line += kHex[u >> 4];
      line += kHex[u & 0xf];
    } else {
      line += c;
    }
  }
}

}  // namespace

void log_line(LogLevel level, std::string_view text) {
  static const bool journal = stderr_is_journal();
  static std::mutex mutex;
  std::string line;
  if (journal) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  } else {
    core::append_iso8601(line, int64_t{std::time(nullptr)} * 1'000'000, core::TimePrecision::kSeconds);
    line += ' ';
  }
  append_escaped(line, text);
  line += '\n';
  std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace starling

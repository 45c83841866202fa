// Fuzz target: queue recovery. The input is written as one queue file into an empty spool in a
// temporary directory, which queue::Spool::recover() then reads at start-up; the public API
// only, so that the spool's internals may change under it.
//
// Input: the file's bytes (format in src/queue/spool.hpp). A checksum the fuzzer cannot guess
// may be written as "********": in the header's crc32 line it becomes the CRC-32 of the from,
// rcpt and size lines and the content; after "S " on a state line, that of the rest of the line.
// Without it, almost every mutation would stop at the checksum.
//
// Checked besides memory and undefined behaviour: recovery succeeds and accounts for the file
// exactly once (recovered, discarded as incomplete or set aside as corrupt, and where it says);
// a recovered message has recipients, one state each, no control character in an address (a
// CR or LF would be command injection on the next hop), and content that reads back at its size.
// Everything is removed after each input; the directory itself at exit.
#include <stdlib.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_support.hpp"
#include "queue/spool.hpp"

namespace starling::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPlaceholder = "********";
constexpr const char* kId = "0005F0E3A1B2C3000";  // a time-ordered id as Spool::new_id() makes

// One directory per process under $TMPDIR, removed at exit.
class Scratch {
 public:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/starling-fuzz-queue-XXXXXX";
    check(::mkdtemp(pattern.data()) != nullptr, "cannot create a temporary directory", pattern);
    root_ = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path queue() const { return root_ / "queue"; }

 private:
  fs::path root_;
};

uint32_t crc_of(std::string_view a, std::string_view b = {}) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::string_view part : {a, b}) {
    if (!part.empty()) crc = crc32(crc, reinterpret_cast<const Bytef*>(part.data()), static_cast<uInt>(part.size()));
  }
  return static_cast<uint32_t>(crc);
}

void put_hex(std::string& s, size_t at, uint32_t value) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08X", value);
  s.replace(at, 8, hex, 8);
}

// Fills in the checksums written as placeholders (see the top of the file).
std::string with_checksums(std::string f) {
  size_t fields_start = f.find('\n');
  if (fields_start == std::string::npos) return f;
  ++fields_start;
  size_t pos = fields_start, fields_end = 0, crc_at = std::string::npos, size = std::string::npos;
  for (;;) {
    size_t nl = f.find('\n', pos);
    if (nl == std::string::npos) return f;
    std::string_view line(f.data() + pos, nl - pos);
    if (line.empty()) {
      pos = nl + 1;
      break;
    }
    if (line.starts_with("size ")) {
      size = std::strtoull(std::string(line.substr(5)).c_str(), nullptr, 10);
      fields_end = nl + 1;
    }
    if (line == "crc32 " + std::string(kPlaceholder)) crc_at = pos + 6;
    pos = nl + 1;
  }
  if (size == std::string::npos || size > f.size() - pos) return f;
  if (crc_at != std::string::npos && fields_end > fields_start) {
    put_hex(f, crc_at, crc_of(std::string_view(f).substr(fields_start, fields_end - fields_start),
                              std::string_view(f).substr(pos, size)));
  }
  for (size_t at = pos + size; (at = f.find("\nS " + std::string(kPlaceholder) + " ", at)) != std::string::npos; ++at) {
    size_t end = f.find('\n', at + 12);
    if (end == std::string::npos) break;
    put_hex(f, at + 3, crc_of(std::string_view(f).substr(at + 12, end - at - 12)));
  }
  return f;
}

void check_recovered(const queue::Spool& spool, const queue::QueuedMessage& m) {
  check(m.id == kId, "a recovered message under another id", m.id);
  check(!m.envelope.recipients.empty(), "a recovered message without recipients");
  check(m.state.size() == m.envelope.recipients.size(), "not one delivery state per recipient");
  check(!has_control(m.envelope.mail_from), "a control character in a recovered sender", m.envelope.mail_from);
  for (const std::string& r : m.envelope.recipients) {
    check(!has_control(r), "a control character in a recovered recipient", r);
  }
  auto content = spool.load(m);
  check(content.ok(), "a recovered message whose content cannot be read back", content ? "" : content.error());
  check(content->size() == m.content_size, "content read back at another size");
}

}  // namespace
}  // namespace starling::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling;
  using fuzz::check;
  static fuzz::Scratch scratch;
  namespace fs = std::filesystem;
  const fs::path dir = scratch.queue();
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  {
    std::ofstream out(dir / fuzz::kId, std::ios::binary);
    std::string bytes = fuzz::with_checksums(std::string(reinterpret_cast<const char*>(data), size));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  {
    auto spool = queue::Spool::open(dir);
    check(spool.ok(), "cannot open the spool", spool ? "" : spool.error());
    auto recovered = (*spool)->recover();
    check(recovered.ok(), "recovery failed as a whole", recovered ? "" : recovered.error());
    size_t accounted = recovered->messages.size() + recovered->discarded.size() + recovered->corrupt.size();
    check(accounted == 1, "the file not accounted for exactly once");
    for (const auto& m : recovered->messages) fuzz::check_recovered(**spool, m);
    for (const auto& d : recovered->discarded) fuzz::show("discarded", d);
    for (const auto& c : recovered->corrupt) fuzz::show("corrupt", c);
    if (!recovered->messages.empty()) fuzz::show("recovered", recovered->messages[0].envelope.mail_from);
    const char* where = !recovered->messages.empty() ? "" : !recovered->discarded.empty() ? "incomplete" : "corrupt";
    check(fs::is_regular_file(dir / where / fuzz::kId), "the file is not where recovery says", where);
  }
  fs::remove_all(dir, ec);
  return 0;
}

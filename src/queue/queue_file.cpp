#include "queue/queue_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

#include "smtp/command.hpp"

namespace starling::queue {
namespace {

constexpr std::string_view kMagicLine = "STARLING-QUEUE 1";
constexpr std::string_view kTrailer = "\nEND\n";
constexpr size_t kChunk = 64 * 1024;

template <typename T>
bool parse_number(std::string_view text, T& out, int base = 10) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return !text.empty() && ec == std::errc{} && p == text.data() + text.size();
}

// Next space-separated word of `rest` (consumed).
std::string_view word(std::string_view& rest) {
  size_t sp = rest.find(' ');
  std::string_view w = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  return w;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Buffered reading of a queue file: lines of bounded length, and runs of octets checksummed
// without being kept.
class Stream {
 public:
  enum class Got { kLine, kTooLong, kEnd, kError };
  explicit Stream(const ReadSome& read) : read_(read), buf_(kChunk) {}

  // The next line, without its '\n', into `out`: at most `max` octets. At the end of the file,
  // kEnd with what there was of a last unterminated line.
  Got line(size_t max, std::string& out) {
    out.clear();
    while (true) {
      if (pos_ == end_ && !fill()) return error_ ? Got::kError : Got::kEnd;
      const char* start = buf_.data() + pos_;
      const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
      size_t n = nl ? static_cast<size_t>(nl - start) : end_ - pos_;
      if (out.size() + n > max) return Got::kTooLong;
      out.append(start, n);
      pos_ += n;
      if (nl) {
        ++pos_;
        return Got::kLine;
      }
    }
  }

  // Passes the next `n` octets through `crc`; false when the file ends first.
  bool checksum(uint64_t n, uint32_t& crc) {
    while (n > 0) {
      if (pos_ == end_ && !fill()) return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ - pos_));
      crc = crc_update(crc, std::string_view(buf_.data() + pos_, take));
      pos_ += take;
      n -= take;
    }
    return true;
  }

  // Whether the next octets are exactly `expected` (consumed).
  bool expect(std::string_view expected) {
    for (char c : expected) {
      if (pos_ == end_ && !fill()) return false;
      if (buf_[pos_++] != c) return false;
    }
    return true;
  }

  bool failed() const { return error_; }
  std::string error_text() const { return std::strerror(errno_); }

 private:
  bool fill() {
    ssize_t n = 0;
    do {
      n = read_(buf_.data(), buf_.size());
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      error_ = n < 0;
      errno_ = errno;
      return false;
    }
    pos_ = 0;
    end_ = static_cast<size_t>(n);
    return true;
  }

  const ReadSome& read_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool error_ = false;
  int errno_ = 0;
};

// Applies one state line; false when it is torn or damaged (it and what follows are ignored).
bool apply_state_line(std::string_view line, QueuedMessage& m) {
  if (line.size() < 11 || !line.starts_with("S ") || line[10] != ' ') return false;
  uint32_t crc = 0;
  if (!parse_number(line.substr(2, 8), crc, 16)) return false;
  std::string_view payload = line.substr(11);
  if (crc_update(0, payload) != crc) return false;
  std::string_view kind = word(payload);
  if (kind == "d") {
    m.delay_notified = true;
    return true;
  }
  if (kind != "r") return false;
  size_t index = 0;
  RecipientState st;
  std::string_view status = word(payload);
  // Written by this code, checksummed: a mismatch is damage. Skip rather than guess.
  if (!parse_number(word(payload), index) || index >= m.state.size() || status.size() != 1 ||
      std::string_view("PDF").find(status[0]) == std::string_view::npos) {
    return true;
  }
  st.status = static_cast<RecipientState::Status>(status[0]);
  if (!parse_number(word(payload), st.attempts) || !parse_number(word(payload), st.next_attempt)) return true;
  if (std::any_of(payload.begin(), payload.end(), [](char c) { return c == '\r' || c == '\0'; })) return true;
  st.last_reply = std::string(payload);
  m.state[index] = std::move(st);
  return true;
}

// The header, from after the magic line to the empty line: from, rcpt..., size, crc32, in the
// order the writer puts them.
struct Header {
  Envelope envelope;
  uint64_t size = 0;
  uint32_t crc = 0;
  uint32_t fields_crc = 0;  // of the from, rcpt and size lines
  uint64_t length = 0;      // octets, the magic line included
  bool have_size = false;
  bool complete = false;    // every line there (a torn write may leave the size but no crc32)
};

Result<Header> read_header(Stream& in) {
  Header h;
  h.length = kMagicLine.size() + 1;
  enum class Next { kFrom, kRcpt, kRcptOrSize, kCrc, kEnd } next = Next::kFrom;
  std::string line;
  while (true) {
    Stream::Got got = in.line(kMaxHeaderLine, line);
    if (got == Stream::Got::kError) return make_error("cannot read: " + in.error_text());
    if (got == Stream::Got::kEnd) return make_error("incomplete header");
    if (got == Stream::Got::kTooLong) return make_error("header line longer than " + std::to_string(kMaxHeaderLine) + " octets");
    h.length += line.size() + 1;
    std::string_view l = line;
    if (l.empty()) break;
    if (next == Next::kFrom && l.starts_with("from ")) {
      h.envelope.mail_from = std::string(l.substr(5));
      next = Next::kRcpt;
    } else if ((next == Next::kRcpt || next == Next::kRcptOrSize) && l.starts_with("rcpt ")) {
      if (h.envelope.recipients.size() >= kMaxRecipients) {
        return make_error("more than " + std::to_string(kMaxRecipients) + " recipients");
      }
      h.envelope.recipients.emplace_back(l.substr(5));
      next = Next::kRcptOrSize;
    } else if (next == Next::kRcptOrSize && l.starts_with("size ")) {
      if (!parse_number(l.substr(5), h.size)) return make_error("bad size line");
      if (h.size > kMaxMessageSize) return make_error("size " + std::to_string(h.size) + " exceeds what the queue writes");
      next = Next::kCrc;
    } else if (next == Next::kCrc && l.starts_with("crc32 ")) {
      if (!parse_number(l.substr(6), h.crc, 16)) return make_error("bad crc32 line");
      next = Next::kEnd;
      continue;  // not covered by the CRC
    } else if (l.starts_with("from ") || l.starts_with("rcpt ") || l.starts_with("size ") || l.starts_with("crc32 ")) {
      return make_error("header lines out of order");
    } else {
      return make_error("unknown header line");
    }
    h.fields_crc = crc_update(crc_update(h.fields_crc, l), "\n");
  }
  h.have_size = next == Next::kCrc || next == Next::kEnd;
  h.complete = next == Next::kEnd;
  return h;
}

}  // namespace

bool valid_address(std::string_view a, bool reverse_path) {
  if (std::any_of(a.begin(), a.end(), [](char c) { return is_control(static_cast<unsigned char>(c)); })) {
    return false;
  }
  // The grammar the receiving side applies at MAIL and RCPT, and the address must come out of it
  // unchanged (no source route, no parameters smuggled after a '>').
  std::string_view kind = reverse_path ? "FROM" : "TO";
  std::string error;
  auto parsed = smtp::parse_path_argument(std::string(kind) + ":<" + std::string(a) + ">", kind, error);
  return parsed && parsed->params.empty() && parsed->address.str() == a;
}

std::string envelope_problem(const Envelope& e) {
  if (!valid_address(e.mail_from, true)) return "invalid reverse path";
  if (e.recipients.empty()) return "no recipients";
  if (e.recipients.size() > kMaxRecipients) return "more than " + std::to_string(kMaxRecipients) + " recipients";
  for (size_t i = 0; i < e.recipients.size(); ++i) {
    if (!valid_address(e.recipients[i], false)) return "invalid recipient #" + std::to_string(i + 1);
  }
  return {};
}

std::string header_fields(const Envelope& e, uint64_t size) {
  std::string fields = "from " + e.mail_from + "\n";
  for (const auto& r : e.recipients) fields += "rcpt " + r + "\n";
  fields += "size " + std::to_string(size) + "\n";
  return fields;
}

uint32_t crc_update(uint32_t crc, std::string_view bytes) {
  // crc32() with a null buffer returns the initial value: an empty view must not reach it.
  while (!bytes.empty()) {
    size_t n = std::min<size_t>(bytes.size(), 1u << 30);
    crc = static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n)));
    bytes.remove_prefix(n);
  }
  return crc;
}

uint32_t crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b) {
  return static_cast<uint32_t>(crc32_combine(crc_a, crc_b, static_cast<z_off_t>(size_b)));
}

Result<QueuedMessage> read_queue_file(std::string id, uint64_t file_size, const ReadSome& read) {
  Stream in(read);
  std::string line;
  Stream::Got got = in.line(kMagicLine.size(), line);
  if (got == Stream::Got::kError) return make_error("cannot read: " + in.error_text());
  if (got == Stream::Got::kEnd && kMagicLine.starts_with(line)) return make_error("incomplete (empty)");
  if (got != Stream::Got::kLine || line != kMagicLine) return make_error("not a queue file");
  auto header = read_header(in);
  if (!header) return std::move(header).take_error();
  Header& h = *header;
  if (h.have_size && h.length + h.size + kTrailer.size() > file_size) {
    return make_error("incomplete (shorter than its size)");
  }
  if (!h.complete) return make_error("header lacks from, rcpt, size or crc32");
  if (std::string why = envelope_problem(h.envelope); !why.empty()) return make_error(why);
  QueuedMessage m;
  m.id = std::move(id);
  m.envelope = std::move(h.envelope);
  m.content_offset = h.length;
  m.content_size = h.size;
  if (!in.checksum(h.size, m.content_crc)) {
    return make_error(in.failed() ? "cannot read: " + in.error_text() : "incomplete (shorter than its size)");
  }
  if (!in.expect(kTrailer)) return make_error("incomplete (no trailer)");
  if (crc_combine(h.fields_crc, m.content_crc, h.size) != h.crc) return make_error("checksum does not match");
  m.state.resize(m.envelope.recipients.size());
  while (in.line(kMaxStateLine, line) == Stream::Got::kLine && apply_state_line(line, m)) {
  }
  m.arrival = arrival_of(m.id);
  return m;
}

}  // namespace starling::queue

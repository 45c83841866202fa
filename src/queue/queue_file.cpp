#include "queue/queue_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

#include "core/message_header.hpp"
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

  // Passes the next `n` octets through `crc`, keeping the first of them in `prefix` up to its
  // capacity; false when the file ends first.
  bool checksum(uint64_t n, uint32_t& crc, std::string& prefix, size_t prefix_max) {
    while (n > 0) {
      if (pos_ == end_ && !fill()) return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ - pos_));
      std::string_view piece(buf_.data() + pos_, take);
      crc = crc_update(crc, piece);
      if (prefix.size() < prefix_max) prefix.append(piece.substr(0, prefix_max - prefix.size()));
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
  // In flight from an attempt's start until a recipient's state says how it ended. A crash
  // count leaves it so: the retry that follows may crash before its "a" line is flushed.
  if (kind == "a") m.in_flight = true;
  if (kind == "r") m.in_flight = false;
  if (kind == "d") {
    m.delay_notified = true;
    return true;
  }
  if (kind == "a") return true;
  if (kind == "c") {
    parse_number(payload, m.crashes);  // damage (checksummed, yet not a number): no change
    return true;
  }
  if (kind == "h" || kind == "x") {
    if (payload != "0" && payload != "1") return true;
    if (kind == "h") {
      m.suspended = payload == "1";
    } else {
      m.removal = payload == "1" ? QueuedMessage::Removal::kWithReport : QueuedMessage::Removal::kWithoutReport;
    }
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

static_assert(RecipientDsn::kSuccess == smtp::DsnRequest::kSuccess && RecipientDsn::kFailure == smtp::DsnRequest::kFailure &&
              RecipientDsn::kDelay == smtp::DsnRequest::kDelay && RecipientDsn::kNever == smtp::DsnRequest::kNever);

// The optional DSN lines (RFC 3461), each at most once where it may be: "ret" then "envid" after
// "from", "notify" then "orcpt" after a "rcpt". `order` is how far the current group got (0:
// none yet). Their values are checked with the rest of the envelope (envelope_problem).
Result<bool> read_dsn_line(std::string_view l, bool before_rcpt, int& order, Envelope& e) {
  static constexpr std::array<std::string_view, 4> kNames{"ret ", "envid ", "notify ", "orcpt "};
  size_t kind = 0;
  while (kind < kNames.size() && !l.starts_with(kNames[kind])) ++kind;
  if (kind == kNames.size()) return false;
  int rank = static_cast<int>(kind % 2) + 1;
  if ((kind < 2) != before_rcpt || rank <= order) return make_error("header lines out of order");
  order = rank;
  std::string_view value = l.substr(kNames[kind].size());
  if (value.empty()) return make_error("empty DSN header line");
  if (kind == 0) e.dsn_ret = std::string(value);
  if (kind == 1) e.dsn_envid = std::string(value);
  if (kind >= 2) {
    e.dsn.resize(e.recipients.size());
    RecipientDsn& d = e.dsn.back();
    if (kind == 3) {
      d.orcpt = std::string(value);
    } else {
      std::string why;
      d.notify = smtp::parse_notify(value, why);
      if (d.notify == 0) return make_error("bad notify line");
    }
  }
  return true;
}

// The header, from after the magic line to the empty line: from, [ret], [envid], then rcpt
// lines each with its [notify] and [orcpt], size, crc32, in the order the writer puts them.
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
  int dsn_order = 0;
  while (true) {
    Stream::Got got = in.line(kMaxHeaderLine, line);
    if (got == Stream::Got::kError) return make_error("cannot read: " + in.error_text());
    if (got == Stream::Got::kEnd) return make_error("incomplete header");
    if (got == Stream::Got::kTooLong) return make_error("header line longer than " + std::to_string(kMaxHeaderLine) + " octets");
    h.length += line.size() + 1;
    std::string_view l = line;
    if (l.empty()) break;
    auto dsn = next == Next::kRcpt || next == Next::kRcptOrSize
                   ? read_dsn_line(l, next == Next::kRcpt, dsn_order, h.envelope)
                   : Result<bool>(false);
    if (!dsn) return std::move(dsn).take_error();
    if (*dsn) {
      // covered by the CRC like the lines around it
    } else if (next == Next::kFrom && l.starts_with("from ")) {
      h.envelope.mail_from = std::string(l.substr(5));
      next = Next::kRcpt;
    } else if ((next == Next::kRcpt || next == Next::kRcptOrSize) && l.starts_with("rcpt ")) {
      if (h.envelope.recipients.size() >= kMaxRecipients) {
        return make_error("more than " + std::to_string(kMaxRecipients) + " recipients");
      }
      h.envelope.recipients.emplace_back(l.substr(5));
      if (!h.envelope.dsn.empty()) h.envelope.dsn.resize(h.envelope.recipients.size());
      dsn_order = 0;
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
  if (!h.envelope.dsn.empty()) h.envelope.dsn.resize(h.envelope.recipients.size());
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

namespace {

// What the receiving side accepts of RFC 3461's parameters (smtp::Session), and nothing else.
std::string dsn_problem(const Envelope& e) {
  if (!e.dsn_ret.empty() && e.dsn_ret != "FULL" && e.dsn_ret != "HDRS") return "invalid DSN RET";
  if (!e.dsn_envid.empty() && !smtp::envid_problem(e.dsn_envid).empty()) return "invalid DSN ENVID";
  if (!e.dsn.empty() && e.dsn.size() != e.recipients.size()) return "DSN requests do not match the recipients";
  for (size_t i = 0; i < e.dsn.size(); ++i) {
    if (e.dsn[i].notify != 0 && !smtp::valid_notify(e.dsn[i].notify)) return "invalid NOTIFY of recipient #" + std::to_string(i + 1);
    if (!e.dsn[i].orcpt.empty() && !smtp::orcpt_problem(e.dsn[i].orcpt).empty()) {
      return "invalid ORCPT of recipient #" + std::to_string(i + 1);
    }
  }
  return {};
}

}  // namespace

std::string envelope_problem(const Envelope& e) {
  if (!valid_address(e.mail_from, true)) return "invalid reverse path";
  if (e.recipients.empty()) return "no recipients";
  if (e.recipients.size() > kMaxRecipients) return "more than " + std::to_string(kMaxRecipients) + " recipients";
  for (size_t i = 0; i < e.recipients.size(); ++i) {
    if (!valid_address(e.recipients[i], false)) return "invalid recipient #" + std::to_string(i + 1);
  }
  return dsn_problem(e);
}

std::string header_fields(const Envelope& e, uint64_t size) {
  std::string fields = "from " + e.mail_from + "\n";
  if (!e.dsn_ret.empty()) fields += "ret " + e.dsn_ret + "\n";
  if (!e.dsn_envid.empty()) fields += "envid " + e.dsn_envid + "\n";
  for (size_t i = 0; i < e.recipients.size(); ++i) {
    fields += "rcpt " + e.recipients[i] + "\n";
    if (i >= e.dsn.size()) continue;
    if (e.dsn[i].notify != 0) fields += "notify " + smtp::format_notify(e.dsn[i].notify) + "\n";
    if (!e.dsn[i].orcpt.empty()) fields += "orcpt " + e.dsn[i].orcpt + "\n";
  }
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
  // The header section's start, for Subject and Message-ID; let go once summarized.
  std::string head;
  if (!in.checksum(h.size, m.content_crc, head, core::kMaxHeaderScan)) {
    return make_error(in.failed() ? "cannot read: " + in.error_text() : "incomplete (shorter than its size)");
  }
  if (!in.expect(kTrailer)) return make_error("incomplete (no trailer)");
  if (crc_combine(h.fields_crc, m.content_crc, h.size) != h.crc) return make_error("checksum does not match");
  core::HeaderSummary summary = core::summarize_header(head);
  m.message_id = std::move(summary.message_id);
  m.subject = std::move(summary.subject);
  m.in_flight = true;  // until a state line says otherwise
  m.recovered = true;
  m.state.resize(m.envelope.recipients.size());
  while (in.line(kMaxStateLine, line) == Stream::Got::kLine && apply_state_line(line, m)) {
  }
  m.arrival = arrival_of(m.id);
  return m;
}

}  // namespace starling::queue

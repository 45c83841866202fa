// The message content reader (RFC 5321 §4.1.1.4, §4.5.2; RFC 3030): for DATA it finds the end
// marker CRLF.CRLF and removes dot-stuffing; for BDAT it takes the chunks as they are. Both
// enforce the same limits while streaming. Only CRLF ends a line: a bare LF or bare CR
// anywhere marks the message for refusal, so that "\n.\n" or "\r\n.\n" can never act as an end
// marker a downstream server reads differently (SMTP smuggling, CVE-2023-51764..6), whether the
// message came by DATA or by BDAT. The content is held in memory counted against a
// MemoryBudget shared by every session of a server (docs/receive-path.md, "Receive memory").
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace starling::smtp {

struct DataLimits {
  uint64_t max_message_size = 10 * 1024 * 1024;
  uint32_t max_header_size = 64 * 1024;
  uint32_t max_line_length = 1000;  // octets including CRLF, RFC 5321 §4.5.3.1.6
};

// Bytes of message content that may be held in memory by all sessions together. Thread-safe:
// reservations are taken on the I/O thread and may be given back elsewhere.
class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}
  // Takes `n` bytes if the budget has them; false (and nothing taken) otherwise.
  bool take(uint64_t n);
  void give_back(uint64_t n) { used_.fetch_sub(n); }
  uint64_t used() const { return used_.load(); }
  uint64_t limit() const { return limit_.load(); }
  void set_limit(uint64_t limit) { limit_.store(limit); }

 private:
  std::atomic<uint64_t> limit_;
  std::atomic<uint64_t> used_{0};
};

// What one message holds of a MemoryBudget; given back when resized down or destroyed. Without
// a budget every request succeeds (unit tests, tools).
class Reservation {
 public:
  Reservation() = default;
  explicit Reservation(std::shared_ptr<MemoryBudget> budget) : budget_(std::move(budget)) {}
  Reservation(Reservation&& o) noexcept
      : budget_(std::move(o.budget_)), held_(std::exchange(o.held_, 0)) {}
  Reservation& operator=(Reservation&& o) noexcept;
  ~Reservation() { resize(0); }

  // Holds exactly `n` bytes from now on; false (holding what it held) if the budget is short.
  bool resize(uint64_t n);
  uint64_t held() const { return held_; }

 private:
  std::shared_ptr<MemoryBudget> budget_;
  uint64_t held_ = 0;
};

class DataReader {
 public:
  enum class Problem { kNone, kBareLineEnding, kLineTooLong, kTooBig, kHeaderTooBig, kNoMemory };
  enum class Framing { kDotStuffed, kChunked };  // DATA, BDAT

  // Room kept in front of the content for the trace header the driver prepends, so that doing
  // so moves the bytes within the buffer instead of copying them into a new one.
  static constexpr size_t kHeaderRoom = 1024;

  // `expected` (SIZE= of MAIL, or the first BDAT chunk's size; 0: unknown) sizes the first
  // buffer (up to 256 KiB: an announced size is a hint, not a claim on the budget) and caps its
  // growth, so that a message of announced size ends in a buffer of its size. When the budget
  // cannot cover that first buffer, problem() is kNoMemory at once.
  DataReader(DataLimits limits, std::shared_ptr<MemoryBudget> budget = nullptr,
             uint64_t expected = 0, Framing framing = Framing::kDotStuffed);

  // Consumes bytes up to and including the end marker (kDotStuffed) or all of them (kChunked).
  // Returns how many bytes of `in` were used; when done() the rest belongs to the next command.
  size_t consume(std::string_view in);
  // kChunked: the last chunk has been consumed; a line left open on a CR is a bare CR.
  void finish();
  bool done() const { return done_; }
  // Octets consumed so far, as transmitted, counted even when not stored.
  uint64_t received() const { return received_; }
  // kChunked: a chunk of `n` octets is about to arrive: like `expected`, a hint that sizes the
  // buffer's growth. Past the size limit or the budget it only marks the problem.
  void expect(uint64_t n);
  // The first problem seen; content is complete and usable only when kNone. Once there is a
  // problem nothing more is stored and the memory is given back.
  Problem problem() const { return problem_; }
  // The message content with CRLF line endings, dot-stuffing removed, the end marker excluded.
  std::string& content() { return content_; }
  // The memory the content holds; moves with the message until it is queued or dropped.
  Reservation take_reservation() { return std::move(reservation_); }

 private:
  enum class State { kLineStart, kText, kCr, kDot, kDotCr };
  void append(char c);
  void append(std::string_view s);
  bool make_room(uint64_t total);
  void end_line();
  void crlf();  // a line's CRLF: counted, stored, and the next line begins
  size_t octets_to_first_limit() const;
  void flag(Problem p);

  DataLimits limits_;
  Reservation reservation_;
  Framing framing_;
  State state_ = State::kLineStart;
  std::string content_;
  uint64_t expected_ = 0;     // the announced content size (SIZE=, BDAT), 0: unknown
  uint64_t size_ = 0;         // content octets seen, kept counting after a problem
  uint64_t received_ = 0;
  uint32_t line_length_ = 0;  // octets on the current line so far, as transmitted
  bool in_header_ = true;
  bool done_ = false;
  Problem problem_ = Problem::kNone;
};

}  // namespace starling::smtp

#include "smtp/data_reader.hpp"

#include <algorithm>
#include <cstring>

namespace starling::smtp {
namespace {

// The first buffer when the size is not announced: most messages fit, a large one grows.
constexpr uint64_t kFirstBuffer = 64 * 1024;
// An announced size is a hint, not a claim on the budget: it sizes the first buffer up to this,
// and caps later growth, so that a session that says SIZE=10485760 and sends nothing holds
// 256 KiB, not 10 MiB (a few hundred idle sessions would otherwise hold the whole budget).
constexpr uint64_t kMostFirstBuffer = 256 * 1024;

// The octets of p[0, n) before the first CR or LF (memchr is vectorized; a loop is not).
size_t text_run(const char* p, size_t n) {
  const void* cr = std::memchr(p, '\r', n);
  size_t run = cr ? static_cast<size_t>(static_cast<const char*>(cr) - p) : n;
  const void* lf = std::memchr(p, '\n', run);
  return lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) : run;
}

}  // namespace

bool MemoryBudget::take(uint64_t n) {
  uint64_t used = used_.load();
  do {
    uint64_t limit = limit_.load();
    if (n > limit || used > limit - n) return false;
  } while (!used_.compare_exchange_weak(used, used + n));
  return true;
}

Reservation& Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    resize(0);
    budget_ = std::move(o.budget_);
    held_ = std::exchange(o.held_, 0);
  }
  return *this;
}

bool Reservation::resize(uint64_t n) {
  if (budget_ && n > held_ && !budget_->take(n - held_)) return false;
  if (budget_ && n < held_) budget_->give_back(held_ - n);
  held_ = n;
  return true;
}

DataReader::DataReader(DataLimits limits, std::shared_ptr<MemoryBudget> budget, uint64_t expected,
                       Framing framing)
    : limits_(limits), reservation_(std::move(budget)), framing_(framing) {
  // An announced size over the limit (a first BDAT chunk; SIZE= was refused at MAIL) reserves
  // nothing: the message is refused once it has been read.
  if (expected > limits_.max_message_size) {
    flag(Problem::kTooBig);
  } else {
    expected_ = expected;
    uint64_t first = expected > 0 ? std::min(expected, kMostFirstBuffer) : std::min(kFirstBuffer, limits_.max_message_size);
    if (!make_room(first)) flag(Problem::kNoMemory);
  }
}

void DataReader::flag(Problem p) {
  if (problem_ != Problem::kNone) return;
  problem_ = p;
  // The message will be refused: what was stored is of no use, and its memory goes back.
  std::string().swap(content_);
  reservation_.resize(0);
}

// Grows the buffer to hold `total` octets (and the trace header in front). The budget counts
// the capacity, and while the bytes move, the old buffer and the new one together.
bool DataReader::make_room(uint64_t total) {
  uint64_t old = content_.capacity();
  if (total + kHeaderRoom <= old) return true;
  // Doubling, but not past the announced size when there is one: the last step lands on it.
  uint64_t cap = expected_ >= total ? expected_ : limits_.max_message_size;
  uint64_t wanted = std::max(total, std::min(old * 2, cap)) + kHeaderRoom;
  // A fresh buffer of exactly `wanted` (growing in place may round up to twice the old
  // capacity); while the bytes move, both buffers count.
  if (!reservation_.resize(reservation_.held() + wanted)) return false;
  std::string bigger;
  bigger.reserve(wanted);
  bigger.append(content_);
  content_.swap(bigger);
  std::string().swap(bigger);
  reservation_.resize(content_.capacity());
  return true;
}

void DataReader::expect(uint64_t n) {
  if (problem_ != Problem::kNone) return;
  if (n > limits_.max_message_size - size_) return flag(Problem::kTooBig);
  // Like SIZE=, a chunk's announced size is a hint: it claims at most a first buffer's worth
  // now, and the buffer keeps doubling as octets come (many small chunks stay amortized).
  if (!make_room(content_.size() + std::min<uint64_t>(n, kMostFirstBuffer))) flag(Problem::kNoMemory);
}

void DataReader::append(char c) { append(std::string_view(&c, 1)); }

void DataReader::append(std::string_view s) {
  size_ += s.size();
  if (problem_ != Problem::kNone) return;  // keep reading to the end, but store nothing more
  if (size_ > limits_.max_message_size) return flag(Problem::kTooBig);
  if (in_header_ && size_ > limits_.max_header_size) return flag(Problem::kHeaderTooBig);
  if (!make_room(content_.size() + s.size())) return flag(Problem::kNoMemory);
  content_.append(s);
}

// How many more text octets reach the first limit they would cross (line length, message size,
// header size), counting the crossing octet; at least 1.
size_t DataReader::octets_to_first_limit() const {
  auto until = [](uint64_t used, uint64_t limit) -> uint64_t { return used >= limit ? 1 : limit - used + 1; };
  uint64_t n = until(uint64_t{line_length_} + 2, limits_.max_line_length);
  n = std::min(n, until(size_, limits_.max_message_size));
  if (in_header_) n = std::min(n, until(size_, limits_.max_header_size));
  return static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX));
}

void DataReader::end_line() {
  // The header section ends at the first empty line (RFC 5322 §2.1).
  if (in_header_ && line_length_ == 2) in_header_ = false;
  line_length_ = 0;
}

void DataReader::crlf() {
  line_length_ += 2;
  if (line_length_ > limits_.max_line_length) flag(Problem::kLineTooLong);
  append("\r\n");
  end_line();
  state_ = State::kLineStart;
}

void DataReader::finish() {
  // A chunk that ends on a CR whose LF never comes: a bare CR.
  if (state_ == State::kCr) flag(Problem::kBareLineEnding);
  done_ = true;
}

size_t DataReader::consume(std::string_view in) {
  size_t i = 0;
  while (i < in.size() && !done_) {
    if (state_ == State::kText) {
      // Fast path: copy a run of ordinary octets up to the next CR or LF. While nothing is
      // wrong yet, a run ends at the first octet that crosses a limit: the problem recorded is
      // then the one an octet-by-octet reading meets first, however the input was split.
      const char* p = in.data() + i;
      size_t n = in.size() - i;
      if (problem_ == Problem::kNone) n = std::min(n, octets_to_first_limit());
      size_t run = text_run(p, n);
      if (run > 0) {
        line_length_ += static_cast<uint32_t>(run);
        if (line_length_ + 2 > limits_.max_line_length) flag(Problem::kLineTooLong);
        append(std::string_view(p, run));
        i += run;
      }
      // The CRLF that ends the run, at once (what kCr would do with it octet by octet).
      if (i + 1 < in.size() && in[i] == '\r' && in[i + 1] == '\n') {
        crlf();
        i += 2;
        continue;
      }
      if (run > 0) continue;
    }
    char c = in[i++];
    switch (state_) {
      case State::kLineStart:
        if (c == '.' && framing_ == Framing::kDotStuffed) {
          ++line_length_;
          state_ = State::kDot;
          break;
        }
        // The line's first octet joins the run of the rest: back to the fast path.
        state_ = State::kText;
        --i;
        break;
      case State::kText:
        if (c == '\r') {
          state_ = State::kCr;
          break;
        }
        // A bare LF is never a line end here; it is kept as text and the message refused.
        if (c == '\n') flag(Problem::kBareLineEnding);
        if (++line_length_ + 2 > limits_.max_line_length) flag(Problem::kLineTooLong);
        append(c);
        break;
      case State::kCr:
        if (c == '\n') {
          crlf();
        } else {
          flag(Problem::kBareLineEnding);
          ++line_length_;
          append('\r');
          state_ = State::kText;
          --i;  // look at c again as text
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
        } else {
          // A transparent dot (RFC 5321 §4.5.2): drop the first dot, keep the rest of the line.
          state_ = State::kText;
          --i;
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          done_ = true;
        } else {
          // ".\r" followed by something else: a bare CR. Keep the dot and the CR as text.
          flag(Problem::kBareLineEnding);
          line_length_ += 1;
          append(".\r");
          state_ = State::kText;
          --i;
        }
        break;
    }
  }
  received_ += i;
  return i;
}

}  // namespace starling::smtp

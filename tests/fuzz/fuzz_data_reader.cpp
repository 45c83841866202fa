// Fuzz target: smtp::DataReader, the message content reader, in both framings: DATA (dot-
// stuffed, up to CRLF.CRLF) and BDAT (chunks taken as they are).
//
// Input: an option line (fuzz_support.hpp) of two hex digits for the limits and the framing
// (bits below), two for the seed of the piece sizes and two for what is announced in advance,
// then the content. For BDAT, "=NEXT=" separates the chunks.
//
// Checked besides memory and undefined behaviour, against a plain reading of RFC 5321 §4.5.2
// written here: DATA ends exactly after the first CRLF.CRLF (the first line "." at the start
// counts too), and nothing else ends it; content accepted is the unstuffed lines (or the chunks
// joined), with CRLF line ends only and within the limits; a bare CR or LF anywhere is refused,
// and a refusal for size or line length is never given where the limit holds; the same result
// fed whole and in pieces; the memory budget is never exceeded and all given back.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "smtp/data_reader.hpp"

namespace starling::fuzz {
namespace {

using smtp::DataReader;
using Problem = DataReader::Problem;

enum : uint32_t {
  kLineMask = 3, kSizeShift = 2, kHeaderShift = 4,  // two bits each: which of four limits
  kChunked = 1 << 6, kBudget = 1 << 7,
  // Announced: the size of the whole content (SIZE= or the chunk), or one octet (a lie).
  kAnnounceSize = 1 << 16, kAnnounceOne = 1 << 17,
};
constexpr uint64_t kBudgetLimit = 3000;

smtp::DataLimits make_limits(uint32_t o) {
  static constexpr uint32_t kLines[] = {1000, 100, 20, 3};
  static constexpr uint64_t kSizes[] = {1 << 20, 2000, 200, 0};
  static constexpr uint32_t kHeaders[] = {64 * 1024, 500, 50, 0};
  return {.max_message_size = kSizes[o >> kSizeShift & 3],
          .max_header_size = kHeaders[o >> kHeaderShift & 3],
          .max_line_length = kLines[o & kLineMask]};
}

// What the reader is told to expect: SIZE= of MAIL or the first BDAT chunk's size.
uint64_t announced(std::string_view data, uint32_t o) {
  if (o & kAnnounceOne) return 1;
  return o & kAnnounceSize ? (o & kChunked ? turns(data)[0].size() : data.size()) : 0;
}

struct Reading {
  bool done = false;
  size_t consumed = 0;
  Problem problem = Problem::kNone;
  std::string content;
  bool operator==(const Reading&) const = default;
};

Reading read(std::string_view data, uint32_t o, Pieces pieces) {
  auto budget = o & kBudget ? std::make_shared<smtp::MemoryBudget>(kBudgetLimit) : nullptr;
  bool chunked = o & kChunked;
  std::vector<std::string_view> chunks = chunked ? turns(data) : std::vector<std::string_view>{data};
  uint64_t announced_size = announced(data, o);
  Reading r;
  {
    DataReader reader(make_limits(o), budget, announced_size,
                      chunked ? DataReader::Framing::kChunked : DataReader::Framing::kDotStuffed);
    for (std::string_view chunk : chunks) {
      if (chunked) reader.expect(chunk.size());
      while (!chunk.empty() && !reader.done()) {
        std::string_view piece = chunk.substr(0, pieces.next());
        size_t used = reader.consume(piece);
        check(used <= piece.size(), "consumed more than it was given");
        check(chunked ? used == piece.size() : used == piece.size() || reader.done(),
              "stopped short of the end marker");
        r.consumed += used;
        chunk.remove_prefix(used);
        check(!budget || budget->used() <= kBudgetLimit, "the memory budget exceeded");
      }
    }
    if (chunked) reader.finish();
    r.done = reader.done();
    r.problem = reader.problem();
    check(reader.received() == r.consumed, "received() is not what was consumed");
    if (r.problem == Problem::kNone) r.content = reader.content();
    check(r.problem != Problem::kNoMemory || budget, "out of memory without a budget");
  }
  check(!budget || budget->used() == 0, "receive memory not given back");
  return r;
}

std::vector<std::string_view> crlf_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (size_t at; (at = s.find("\r\n")) != std::string_view::npos;) {
    lines.push_back(s.substr(0, at + 2));
    s.remove_prefix(at + 2);
  }
  if (!s.empty()) lines.push_back(s);
  return lines;
}

// A line's length as the limit counts it: BDAT content may end without a CRLF, which the next
// hop gets added (smtp::normalize_line_ends), so the last line counts as if it had one.
size_t length_with_crlf(std::string_view line) { return line.size() + (line.ends_with("\r\n") ? 0 : 2); }

void check_against_rfc(std::string_view data, uint32_t o, const Reading& r) {
  smtp::DataLimits limits = make_limits(o);
  std::string transmitted, expected;
  if (o & kChunked) {
    for (std::string_view chunk : turns(data)) transmitted += chunk;
    expected = transmitted;
    check(r.done && r.consumed == transmitted.size(), "BDAT content not all taken");
  } else {
    size_t end = ("\r\n" + std::string(data)).find("\r\n.\r\n");
    check(r.done == (end != std::string::npos), "DATA ended elsewhere than at CRLF.CRLF", data);
    if (!r.done) return;
    check(r.consumed == end + 3, "DATA ended elsewhere than at CRLF.CRLF", data);
    transmitted = data.substr(0, end);
    for (std::string_view line : crlf_lines(transmitted)) {
      expected += line.starts_with(".") ? line.substr(1) : line;
    }
  }
  bool clean = crlf_only(transmitted);
  if (!clean) check(r.problem != Problem::kNone, "a bare CR or LF accepted", transmitted);
  if (clean && r.problem == Problem::kTooBig) {
    check(expected.size() > limits.max_message_size || announced(data, o) > limits.max_message_size,
          "refused as too big but is neither that nor announced so");
  }
  if (clean && r.problem == Problem::kHeaderTooBig) check(expected.size() > limits.max_header_size, "header refused as too big but is not");
  if (clean && r.problem == Problem::kLineTooLong) {
    bool any = false;
    for (std::string_view line : crlf_lines(transmitted)) any = any || length_with_crlf(line) > limits.max_line_length;
    check(any, "a line refused as too long but is not", transmitted);
  }
  if (r.problem != Problem::kNone) return;
  check(r.content == expected, "content is not the unstuffed lines", r.content);
  check(crlf_only(r.content), "accepted content with a bare CR or LF", r.content);
  check(r.content.size() <= limits.max_message_size, "accepted content over the size limit");
  for (std::string_view line : crlf_lines(transmitted)) {
    check(length_with_crlf(line) <= limits.max_line_length, "accepted a line over the line length limit", line);
  }
}

}  // namespace
}  // namespace starling::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling::fuzz;
  Input in(data, size);
  uint32_t o = in.hex(2);
  auto seed = static_cast<uint8_t>(in.hex(2));
  o |= in.hex(2) << 16;
  Reading whole = read(in.rest, o, Pieces::whole());
  Reading split = read(in.rest, o, Pieces(seed));
  for (const Reading* r : {&whole, &split}) {
    show(r == &whole ? "whole" : "split",
         "done " + std::to_string(r->done) + ", consumed " + std::to_string(r->consumed) + ", problem " +
             std::to_string(static_cast<int>(r->problem)) + ", content " + escaped(r->content));
  }
  check_against_rfc(in.rest, o, whole);
  // How the buffer grows depends on how the bytes arrive, so running out of budget may too.
  if (whole.problem != Problem::kNoMemory && split.problem != Problem::kNoMemory) {
    std::string both = "problem " + std::to_string(static_cast<int>(whole.problem)) + " whole, " +
                       std::to_string(static_cast<int>(split.problem)) + " in pieces";
    check(whole == split, "fed in pieces, the reader reads differently", both);
  }
  return 0;
}

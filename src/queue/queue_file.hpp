// The queue file format (described in spool.hpp), read as a stream. Recovery trusts nothing in a
// queue file: the directory is writable by the service user, so a file may have been planted or
// damaged. Header lines, recipients and state lines are bounded, the content is checksummed in
// chunks and never kept, and the reverse path and recipients are checked again as addresses
// (RFC 5321 syntax and lengths, no control characters: nothing read here can put a CR or LF into
// a header or command Starling writes). Memory while reading a file is O(its header), not O(file).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "queue/spool.hpp"

namespace starling::queue {

// What the spool ever writes; the writer refuses more, so recovery calls more damage.
// Exchange's highest MaxMessageSize is 2 GB; recipients are bounded so that a header stays small
// (at most about 33 MB even when full) whatever the connectors allow.
inline constexpr uint64_t kMaxMessageSize = uint64_t{1} << 31;  // 2 GiB
inline constexpr size_t kMaxRecipients = 100000;
// "rcpt " and an address of at most 64 + 1 + 255 octets (RFC 5321 §4.5.3.1.1, §4.5.3.1.2), or
// "orcpt " and an ORCPT of at most 500 (RFC 3461 §4.2).
inline constexpr size_t kMaxHeaderLine = 512;
// A state line carries at most a 1000-octet reply and a few numbers.
inline constexpr size_t kMaxStateLine = 2048;

// An address as the queue stores it, checked with the grammar of MAIL FROM and RCPT TO
// (smtp::parse_path_argument: a dot-atom or quoted local part of at most 64 octets, a domain or
// address literal of at most 255; "postmaster" as a recipient, "" as a reverse path), which must
// give it back unchanged, and with no control character anywhere.
bool valid_address(std::string_view address, bool reverse_path);

// Why an envelope cannot go into a queue file, or "" when it can.
std::string envelope_problem(const Envelope& envelope);

// The header lines the file's CRC-32 covers with the content.
std::string header_fields(const Envelope& envelope, uint64_t size);

uint32_t crc_update(uint32_t crc, std::string_view bytes);
// The CRC-32 of A followed by B, from both CRCs and B's length (zlib's crc32_combine).
uint32_t crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);

// Reads at most `n` octets into `buf`: the count read, 0 at the end, -1 on an error (errno).
using ReadSome = std::function<ssize_t(char* buf, size_t n)>;

// Parses a queue file of `file_size` octets read from `read`. The message's content stays where
// it is: the result names it by offset, size and CRC-32 (`data` is left empty). An error whose
// text starts with "incomplete" is a file whose flush never completed (never acknowledged);
// any other is damage.
Result<QueuedMessage> read_queue_file(std::string id, uint64_t file_size, const ReadSome& read);

}  // namespace starling::queue

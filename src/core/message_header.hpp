// What the administrator tools show of a message's header: the Message-ID and Subject fields
// (RFC 5322 §3.6.4, §3.6.5), for message tracking and get-message. The content is hostile: only a
// bounded prefix of the header section is read, at most kMaxFieldOctets of each field, and the
// values come back unfolded, single-line, valid UTF-8 and bounded in length. Encoded words
// (RFC 2047) are left as they are: decoding is the reader's business, and the raw form is what
// an administrator searches for.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace starling::core {

struct HeaderSummary {
  std::string message_id;  // as written, angle brackets included; "" when there is none
  std::string subject;     // "" when there is none
};

inline constexpr size_t kMaxHeaderScan = 64 * 1024;  // octets of content looked at
inline constexpr size_t kMaxFieldOctets = 1000;      // octets of one field's value looked at
inline constexpr size_t kMaxSummaryValue = 512;      // octets of a returned value

// The first Message-ID and the first Subject field of the header section (which ends at the first
// empty line). Unfolded (CRLF before white space removed), tabs become spaces, other control
// characters and invalid UTF-8 become '?', white space trimmed at both ends, cut at
// kMaxSummaryValue octets on a character boundary.
HeaderSummary summarize_header(std::string_view content);

}  // namespace starling::core

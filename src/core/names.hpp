// DNS name handling shared by certificate selection, accepted domains and address checks.
// Names compare case-insensitively (RFC 4343); a trailing dot is ignored. A wildcard covers
// exactly one leftmost label (RFC 6125 §6.4.3): *.contoso.com covers mail.contoso.com, not
// a.b.contoso.com and not contoso.com.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace starling::core {

std::string to_lower(std::string_view s);
// Lower-cases and drops one trailing dot.
std::string normalize_name(std::string_view name);
bool iequals(std::string_view a, std::string_view b);
// A syntactically valid host name (LDH labels, 1..63 octets each, 253 in all).
bool is_valid_hostname(std::string_view name);
// True when `pattern` (an exact name or a one-label wildcard) covers `name`.
bool name_matches(std::string_view pattern, std::string_view name);
bool is_wildcard(std::string_view pattern);
// Name comparisons (iequals, name_matches) the calling thread has made so far. Tests bound the
// work of building certificate tables by it: an operation count, which a wall clock is not.
uint64_t name_comparisons();

// "a, b,c" -> {"a", "b", "c"}: split on commas, spaces trimmed, empty items kept.
std::vector<std::string_view> split_list(std::string_view text);

}  // namespace starling::core

// RemoteIPRanges entries (docs/commands.md): a single address, a range "a-b", or CIDR
// "a/n", IPv4 or IPv6. When several receive connectors share a binding, the one whose matching
// range is the most specific (smallest) serves the client. IPv4-mapped IPv6 clients
// (::ffff:a.b.c.d) match IPv4 ranges.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace starling::core {

using IpBytes = std::array<uint8_t, 16>;  // IPv4 as ::ffff:a.b.c.d

std::optional<IpBytes> parse_ip(std::string_view text);

struct IpRange {
  IpBytes first{};
  IpBytes last{};
  bool contains(const IpBytes& ip) const { return first <= ip && ip <= last; }
  // Size of the range as a comparable key (last - first, big-endian); smaller is more specific.
  IpBytes span() const;
};

Result<IpRange> parse_ip_range(std::string_view text);

// The index of the most specific range containing `ip`, if any.
std::optional<size_t> most_specific_match(std::span<const IpRange> ranges, const IpBytes& ip);

}  // namespace starling::core

#include "core/ip_range.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace starling::core {

std::optional<IpBytes> parse_ip(std::string_view text) {
  std::string s(text);
  IpBytes out{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

IpBytes IpRange::span() const {
  IpBytes out{};
  int borrow = 0;
  for (int i = 15; i >= 0; --i) {
    int d = int(last[i]) - int(first[i]) - borrow;
    borrow = d < 0;
    out[i] = static_cast<uint8_t>(d + (borrow ? 256 : 0));
  }
  return out;
}

Result<IpRange> parse_ip_range(std::string_view text) {
  auto bad = [&](std::string why) {
    return make_error("RemoteIPRanges entry '" + std::string(text) + "': " + why);
  };
  if (size_t dash = text.find('-'); dash != std::string_view::npos) {
    auto a = parse_ip(text.substr(0, dash));
    auto b = parse_ip(text.substr(dash + 1));
    if (!a || !b) return bad("expected FIRST-LAST with two IP addresses");
    bool a4 = (*a)[10] == 0xff && std::all_of(a->begin(), a->begin() + 10, [](uint8_t x) { return x == 0; });
    bool b4 = (*b)[10] == 0xff && std::all_of(b->begin(), b->begin() + 10, [](uint8_t x) { return x == 0; });
    if (a4 != b4) return bad("both ends must be IPv4 or both IPv6");
    if (*b < *a) return bad("the first address is above the last");
    return IpRange{*a, *b};
  }
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    auto a = parse_ip(text.substr(0, slash));
    std::string_view bits_text = text.substr(slash + 1);
    int bits = -1;
    auto [p, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
    if (!a || ec != std::errc{} || p != bits_text.data() + bits_text.size()) {
      return bad("expected ADDRESS/PREFIX");
    }
    bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    int max = v4 ? 32 : 128;
    if (bits < 0 || bits > max) return bad("prefix must be 0-" + std::to_string(max));
    int prefix = v4 ? bits + 96 : bits;
    IpRange r{*a, *a};
    for (int i = prefix; i < 128; ++i) {
      r.first[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
      r.last[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
    }
    return r;
  }
  auto a = parse_ip(text);
  if (!a) return bad("not an IP address, range or CIDR block");
  return IpRange{*a, *a};
}

std::optional<size_t> most_specific_match(std::span<const IpRange> ranges, const IpBytes& ip) {
  std::optional<size_t> best;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (!ranges[i].contains(ip)) continue;
    if (!best || ranges[i].span() < ranges[*best].span()) best = i;
  }
  return best;
}

}  // namespace starling::core

// Routing (docs/outbound.md), as pure functions like the certificate selection rule: which way
// a recipient goes (delivered here, or through which send connector to which next hop), how a
// smart host entry and an MX answer become the ordered list of hosts to try, and when an MX
// list is a mail loop. No I/O, no clock; randomness comes in as a parameter.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/connector.hpp"
#include "core/result.hpp"

namespace starling::core {

// One AddressSpaces entry: "[smtp:]domain[;cost]". domain is lower-case: "*", "contoso.com" (that
// domain only) or "*.contoso.com" (contoso.com and every subdomain). cost 1..100, default 1.
struct AddressSpace {
  std::string domain;
  int cost = 1;
};
Result<AddressSpace> parse_address_space(std::string_view text);

// How specifically `space` matches `domain` (lower-case): nullopt when it does not match;
// otherwise larger is more specific. An exact entry outranks "*.same" which outranks "*.parent",
// and "*" ranks lowest.
std::optional<int> address_space_match(const AddressSpace& space, std::string_view domain);

struct Route {
  enum class Kind {
    kLocal,      // an accepted domain: delivered here
    kConnector,  // through `connector`
    kNone,       // no enabled send connector matches: 550 5.4.4 at RCPT, Unreachable when queued
  };
  Kind kind = Kind::kNone;
  std::string connector;  // the send connector's name, for kConnector
  // The delivery queue's next hop: the recipient domain (lower-case) for DNS routing, the
  // connector's SmartHosts joined with "," for smart-host routing.
  std::string next_hop;
};

// `domain` is the recipient's domain in any case; `accepted` holds lower-case accepted domains.
// Disabled connectors are ignored. Most specific address space first, then lowest cost, then name.
Route route_recipient(std::string_view domain, const std::set<std::string>& accepted,
                      const std::vector<SendConnector>& connectors);

// A SmartHosts entry: "relay.example.net", "relay.example.net:587", "[192.0.2.7]",
// "[192.0.2.7]:2525", "[2001:db8::1]:25". port 0 = none given (use the connector's Port).
struct SmartHost {
  std::string host;  // name (lower-case) or IP literal without brackets
  bool is_ip = false;
  uint16_t port = 0;
};
Result<SmartHost> parse_smart_host(std::string_view text);

// A host to try, in order, for a next hop.
struct HostTarget {
  std::string host;  // name to resolve (or IP literal)
  uint16_t port = 25;
  uint16_t preference = 0;  // MX preference; 0 for smart hosts and implicit MX
};

struct MxPlan {
  enum class Kind {
    kHosts,    // try `hosts` in order
    kNullMx,   // RFC 7505: the domain accepts no mail -> 5.1.10 at once
    kLoop,     // the MX list points back here with nothing better -> 5.4.6
  };
  Kind kind = Kind::kHosts;
  std::vector<HostTarget> hosts;
};

struct MxEntry {
  uint16_t preference = 0;
  std::string host;  // "" for the null MX "."
};

// From an MX answer: hosts by preference, equal preferences shuffled with `rng` (RFC 5321 §5.1).
// A single MX "." is the null MX. `local_names` are this server's names (FQDN, connector FQDNs,
// lower-case): when one of them is in the list, only hosts with a lower preference than the
// lowest local one are kept, and none left is a loop (RFC 5321 §5.1). An empty `records` means no
// MX: the domain itself is the single host (implicit MX).
MxPlan plan_mx(std::string_view domain, const std::vector<MxEntry>& records, uint16_t port,
               const std::set<std::string>& local_names, std::mt19937& rng);

// Number of Received: header fields in the message's header section (for loop detection: more
// than kMaxReceivedHeaders is a loop, 5.4.6).
constexpr int kMaxReceivedHeaders = 30;
int count_received_headers(std::string_view message);

}  // namespace starling::core

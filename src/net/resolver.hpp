// DNS for outbound delivery: MX and A/AAAA look-ups (RFC 5321 §5.1, RFC 7505 null MX) behind a
// small interface, so routing decisions are tested with a fake and the real thing runs on
// c-ares against the system resolver or the transport server's ExternalDNSServers. Callbacks
// run on the io_context the resolver was made with; a look-up never blocks that thread.
// Every answer carries a class: a permanent failure (NXDOMAIN) or a transient one (SERVFAIL,
// timeout, refused) so that callers decide without parsing text.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include <cstdint>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace starling::net {

enum class DnsStatus {
  kOk,         // records found
  kNoRecords,  // the name exists but has no record of that type (NODATA)
  kNxDomain,   // the name does not exist: permanent
  kTransient,  // SERVFAIL, timeout, refused, no server reachable: try again later
};

struct MxRecord {
  uint16_t preference = 0;
  std::string host;  // lower-case, no trailing dot; "" for the null MX "." (RFC 7505)
};

struct MxAnswer {
  DnsStatus status = DnsStatus::kTransient;
  std::vector<MxRecord> records;  // by preference, lowest first (stable: ties keep answer order)
  std::string error;  // for kNxDomain / kTransient: what the resolver said
};

struct AddressAnswer {
  DnsStatus status = DnsStatus::kTransient;
  std::vector<asio::ip::address> addresses;  // IPv4 first, then IPv6, each in answer order
  std::string error;
};

// Callbacks are always posted to the io_context, never run inside lookup_*() or cancel(), so a
// callback may start look-ups or destroy the resolver. Each callback runs exactly once: when the
// resolver is destroyed with look-ups outstanding, theirs run later (kTransient "cancelled") if
// the io_context runs again. Not thread-safe: call it from the io_context's thread.
class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual void lookup_mx(const std::string& domain, std::function<void(MxAnswer)> done) = 0;
  // A and AAAA together; kOk when either has records. An IP literal ("192.0.2.1", "2001:db8::1",
  // "[192.0.2.1]", "[IPv6:2001:db8::1]") answers itself without DNS, and so do "localhost" and
  // names under it (RFC 6761 §6.3: 127.0.0.1, ::1). /etc/hosts is not read.
  virtual void lookup_addresses(const std::string& host, std::function<void(AddressAnswer)> done) = 0;
  // Stops outstanding look-ups (their callbacks run with kTransient "cancelled").
  virtual void cancel() = 0;
};

// c-ares on `io`. `servers` is a list of "IP[:port]" ("127.0.0.1:5353", "[::1]:53"); empty: the
// system's resolv.conf. Fails with a message for an unparsable server. Queries are asked as given
// (ares_query: no search domains, RFC 5321 §5.1 names are fully qualified). Status mapping:
// NOERROR with records kOk, NODATA kNoRecords, NXDOMAIN (and a name c-ares cannot encode)
// kNxDomain, everything else (SERVFAIL, REFUSED, timeout, unreachable, cancelled) kTransient.
struct ResolverOptions {
  std::vector<std::string> servers;
  std::chrono::milliseconds timeout{5000};  // per try
  int tries = 2;
};
std::unique_ptr<Resolver> make_cares_resolver(asio::io_context& io, const ResolverOptions& options,
                                              std::string* error);

// Awaitable forms for coroutines on the resolver's io_context.
asio::awaitable<MxAnswer> async_lookup_mx(Resolver& r, const std::string& domain);
asio::awaitable<AddressAnswer> async_lookup_addresses(Resolver& r, const std::string& host);

// A resolver answering from tables, for tests: names not in a table answer kNxDomain; names in
// `transient` answer kTransient. A name in one table but not the other exists without that type
// (kNoRecords), as does a name mapped to an empty list: so "no MX, use the A record" (RFC 5321
// §5.1) can be tested. Keys are lower-case without trailing dot. Answers are posted, not inline.
class FakeResolver : public Resolver {
 public:
  explicit FakeResolver(asio::io_context& io) : io_(io) {}
  std::map<std::string, std::vector<MxRecord>> mx;
  std::map<std::string, std::vector<asio::ip::address>> addresses;
  std::set<std::string> transient;
  std::vector<std::string> queries;  // "MX name" / "A name" as asked (IP literals ask nothing)
  void lookup_mx(const std::string& domain, std::function<void(MxAnswer)> done) override;
  void lookup_addresses(const std::string& host, std::function<void(AddressAnswer)> done) override;
  void cancel() override {}

 private:
  asio::io_context& io_;
};

}  // namespace starling::net

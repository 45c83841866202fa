#include "net/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>

#include <asio/async_result.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace starling::net {
namespace {

constexpr uint16_t kDnsPort = 53;
// Addresses kept per answer: more than any delivery attempt will try (RFC 5321 §5.1 lets the
// client cap the number of addresses it tries).
constexpr int kMaxAddresses = 64;
constexpr std::string_view kCancelled = "cancelled";

// Lower-case (ASCII: DNS names compare case-insensitively, RFC 4343) without trailing dots.
std::string normalize_name(std::string_view name) {
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

DnsStatus classify(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return DnsStatus::kOk;
    case ARES_ENODATA:
      return DnsStatus::kNoRecords;
    case ARES_ENOTFOUND:  // NXDOMAIN
      return DnsStatus::kNxDomain;
    case ARES_EBADNAME:
      // Not in the brief's list, but a name c-ares cannot even encode (empty label, label over
      // 63 octets) can never resolve: retrying it until the message expires helps nobody.
      return DnsStatus::kNxDomain;
    default:  // ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, EBADRESP, ECANCELLED, ...
      return DnsStatus::kTransient;
  }
}

std::string describe(int status) {
  if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) return std::string(kCancelled);
  return ares_strerror(status);
}

// "1.2.3.4", "::1", "[1.2.3.4]", "[::1]", "[IPv6:::1]" (the RFC 5321 §4.1.3 address literal).
std::optional<asio::ip::address> parse_ip_literal(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.size() > 5 && std::equal(host.begin(), host.begin() + 5, "IPv6:",
                                      [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      host.remove_prefix(5);
    }
  }
  std::error_code ec;
  auto address = asio::ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  return address;
}

// RFC 6761 §6.3: "localhost." and names under it are loopback, answered without DNS, so a
// smart host named "localhost" never leaks a query to the recursive resolver.
bool is_localhost(const std::string& name) {
  return name == "localhost" || (name.size() > 10 && name.ends_with(".localhost"));
}

std::optional<ares_addr_port_node> parse_server(std::string_view text, std::string* why) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::string_view host = text;
  std::string_view port;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      *why = "missing ']'";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        *why = "expected ':port' after ']'";
        return std::nullopt;
      }
      port = rest.substr(1);
      if (port.empty()) {
        *why = "empty port";
        return std::nullopt;
      }
    }
    bracketed = true;
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    auto colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) {
      *why = "empty port";
      return std::nullopt;
    }
  }  // else: IPv4 without a port, or a bare IPv6 address (its colons are not a port)
  std::error_code ec;
  auto address = asio::ip::make_address(std::string(host), ec);
  if (ec || (bracketed && !address.is_v6())) {
    *why = "not an IP address";
    return std::nullopt;
  }
  int port_number = kDnsPort;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      *why = "bad port";
      return std::nullopt;
    }
    port_number = std::stoi(std::string(port));
    if (port_number < 1 || port_number > 65535) {
      *why = "port out of range";
      return std::nullopt;
    }
  }
  ares_addr_port_node node{};
  if (address.is_v4()) {
    node.family = AF_INET;
    auto bytes = address.to_v4().to_bytes();
    std::memcpy(&node.addr.addr4, bytes.data(), bytes.size());
  } else {
    node.family = AF_INET6;
    auto bytes = address.to_v6().to_bytes();
    std::memcpy(&node.addr.addr6, bytes.data(), bytes.size());
  }
  node.udp_port = node.tcp_port = port_number;
  return node;
}

// Posts `done(answer)` to `io`: answers never run inside the caller's lookup_*() or cancel(),
// nor inside c-ares (so a callback may start look-ups or destroy the resolver).
template <typename Answer>
void post_answer(asio::io_context& io, std::function<void(Answer)> done, Answer answer) {
  asio::post(io, [done = std::move(done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
}

std::once_flag library_once;
int library_status = ARES_SUCCESS;

// One c-ares channel driven by the io_context. c-ares owns its sockets; each one it reports
// through the socket-state callback gets a non-owning stream_descriptor that waits for the
// readiness c-ares asked for and then calls ares_process_fd. One steady_timer follows
// ares_timeout() for retransmissions and time-outs. Invariants: every fd in watches_ is open
// and owned by c-ares; c-ares is never re-entered from its own callbacks (query callbacks only
// record and post); handlers that outlive the resolver see alive_ expired and do nothing.
class CaresResolver final : public Resolver {
 public:
  explicit CaresResolver(asio::io_context& io) : io_(io), timer_(io) {}

  ~CaresResolver() override {
    alive_.reset();
    if (channel_ != nullptr) ares_destroy(channel_);  // callbacks: ARES_EDESTRUCTION, posted
    for (auto& [fd, watch] : watches_) close_watch(*watch);
    watches_.clear();
  }

  bool init(const ResolverOptions& options, std::string* error) {
    ares_options o{};
    // ares_query applies no search domains anyway; NOSEARCH and NOALIASES say so for any
    // future ares_search/gethostbyname use: a mail domain is always fully qualified, and
    // HOSTALIASES from the environment must not redirect mail.
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = static_cast<int>(options.timeout.count());
    o.tries = options.tries;
    o.sock_state_cb = &CaresResolver::on_socket_state;
    o.sock_state_cb_data = this;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&channel_, &o, mask);
    if (rc != ARES_SUCCESS) {
      channel_ = nullptr;
      *error = std::string("cannot start the DNS resolver: ") + ares_strerror(rc);
      return false;
    }
    if (options.servers.empty()) return true;
    std::vector<ares_addr_port_node> nodes;
    for (const auto& text : options.servers) {
      std::string why;
      auto node = parse_server(text, &why);
      if (!node) {
        *error = "bad DNS server \"" + text + "\": " + why + " (expected IP[:port] or [IPv6]:port)";
        return false;
      }
      nodes.push_back(*node);
    }
    for (size_t i = 0; i + 1 < nodes.size(); ++i) nodes[i].next = &nodes[i + 1];
    rc = ares_set_servers_ports(channel_, nodes.data());
    if (rc != ARES_SUCCESS) {
      *error = std::string("cannot set the DNS servers: ") + ares_strerror(rc);
      return false;
    }
    return true;
  }

  void lookup_mx(const std::string& domain, std::function<void(MxAnswer)> done) override {
    std::string name = normalize_name(domain);
    if (name.empty()) {
      post_answer(io_, std::move(done), MxAnswer{DnsStatus::kNxDomain, {}, "empty domain name"});
      return;
    }
    auto* query = new MxQuery{this, std::move(done)};
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_mx, &CaresResolver::on_mx, query);
    after_cares();
  }

  void lookup_addresses(const std::string& host, std::function<void(AddressAnswer)> done) override {
    if (auto literal = parse_ip_literal(host)) {
      post_answer(io_, std::move(done), AddressAnswer{DnsStatus::kOk, {*literal}, {}});
      return;
    }
    std::string name = normalize_name(host);
    if (name.empty()) {
      post_answer(io_, std::move(done), AddressAnswer{DnsStatus::kNxDomain, {}, "empty host name"});
      return;
    }
    if (is_localhost(name)) {
      post_answer(io_, std::move(done),
                  AddressAnswer{DnsStatus::kOk,
                                {asio::ip::address_v4::loopback(), asio::ip::address_v6::loopback()},
                                {}});
      return;
    }
    auto pair = std::make_shared<AddressPair>();
    pair->self = this;
    pair->done = std::move(done);
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_a, &CaresResolver::on_address,
               new AddressHalf{pair, false});
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_aaaa, &CaresResolver::on_address,
               new AddressHalf{pair, true});
    after_cares();
  }

  void cancel() override {
    ares_cancel(channel_);  // every outstanding query's callback runs now with ARES_ECANCELLED
    after_cares();
  }

 private:
  struct MxQuery {
    CaresResolver* self;
    std::function<void(MxAnswer)> done;
  };
  struct AddressPair {
    CaresResolver* self = nullptr;
    std::function<void(AddressAnswer)> done;
    int pending = 2;
    std::array<int, 2> status{ARES_SUCCESS, ARES_SUCCESS};  // [0] A, [1] AAAA
    std::array<std::vector<asio::ip::address>, 2> found;
  };
  struct AddressHalf {
    std::shared_ptr<AddressPair> pair;
    bool v6;
  };
  struct Watch {
    explicit Watch(asio::io_context& io) : descriptor(io) {}
    asio::posix::stream_descriptor descriptor;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;  // an async_wait(wait_read) is outstanding
    bool writing = false;
    bool closed = false;
  };

  static void on_mx(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<MxQuery> query(static_cast<MxQuery*>(arg));
    MxAnswer answer;
    if (status == ARES_SUCCESS) {
      ares_mx_reply* mx = nullptr;
      status = ares_parse_mx_reply(abuf, alen, &mx);
      for (ares_mx_reply* r = mx; r != nullptr; r = r->next) {
        // RFC 7505 §3: the null MX is the single record "0 ."; c-ares expands the root to "".
        answer.records.push_back(MxRecord{r->priority, normalize_name(r->host)});
      }
      if (mx != nullptr) ares_free_data(mx);
    }
    answer.status = classify(status);
    if (answer.status != DnsStatus::kOk) {
      answer.records.clear();
      if (answer.status != DnsStatus::kNoRecords) answer.error = describe(status);
    }
    // RFC 5321 §5.1: lower preference first; equal preferences keep the server's order for
    // the caller to randomize.
    std::stable_sort(answer.records.begin(), answer.records.end(),
                     [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
    post_answer(query->self->io_, std::move(query->done), std::move(answer));
  }

  static void on_address(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<AddressHalf> half(static_cast<AddressHalf*>(arg));
    AddressPair& pair = *half->pair;
    auto& found = pair.found[half->v6 ? 1 : 0];
    if (status == ARES_SUCCESS) {
      int count = kMaxAddresses;
      if (half->v6) {
        std::array<ares_addr6ttl, kMaxAddresses> ttls{};
        status = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls.data(), &count);
        for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
          asio::ip::address_v6::bytes_type bytes;
          std::memcpy(bytes.data(), &ttls[i].ip6addr, bytes.size());
          found.push_back(asio::ip::address_v6(bytes));
        }
      } else {
        std::array<ares_addrttl, kMaxAddresses> ttls{};
        status = ares_parse_a_reply(abuf, alen, nullptr, ttls.data(), &count);
        for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
          asio::ip::address_v4::bytes_type bytes;
          std::memcpy(bytes.data(), &ttls[i].ipaddr, bytes.size());
          found.push_back(asio::ip::address_v4(bytes));
        }
      }
      // An answer of CNAMEs only (the chain's end missing) has no address: NODATA.
      if (status == ARES_SUCCESS && found.empty()) status = ARES_ENODATA;
    }
    pair.status[half->v6 ? 1 : 0] = status;
    if (--pair.pending > 0) return;
    post_answer(pair.self->io_, std::move(pair.done), combine(pair));
  }

  // kOk if either family has addresses; kNxDomain if both say NXDOMAIN; kTransient if either
  // failed transiently (and none has addresses); else kNoRecords.
  static AddressAnswer combine(AddressPair& pair) {
    AddressAnswer answer;
    DnsStatus a = classify(pair.status[0]);
    DnsStatus aaaa = classify(pair.status[1]);
    for (auto& list : pair.found) {
      answer.addresses.insert(answer.addresses.end(), list.begin(), list.end());
    }
    if (!answer.addresses.empty()) {
      answer.status = DnsStatus::kOk;
    } else if (a == DnsStatus::kNxDomain && aaaa == DnsStatus::kNxDomain) {
      answer.status = DnsStatus::kNxDomain;
      answer.error = describe(pair.status[0]);
    } else if (a == DnsStatus::kTransient || aaaa == DnsStatus::kTransient) {
      answer.status = DnsStatus::kTransient;
      int failed = a == DnsStatus::kTransient ? pair.status[0] : pair.status[1];
      answer.error = std::string(a == DnsStatus::kTransient ? "A: " : "AAAA: ") + describe(failed);
      if (failed == ARES_ECANCELLED || failed == ARES_EDESTRUCTION) answer.error = kCancelled;
    } else {
      answer.status = DnsStatus::kNoRecords;
    }
    return answer;
  }

  // c-ares opened, re-aimed or is about to close socket `fd`.
  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<CaresResolver*>(data);
    auto it = self->watches_.find(fd);
    if (!readable && !writable) {
      if (it == self->watches_.end()) return;
      close_watch(*it->second);
      self->watches_.erase(it);
      return;
    }
    if (it == self->watches_.end()) {
      auto watch = std::make_shared<Watch>(self->io_);
      std::error_code ec;
      watch->descriptor.assign(fd, ec);
      // Not even registered with epoll (out of memory): the query still ends, by time-out.
      if (ec) return;
      it = self->watches_.emplace(fd, std::move(watch)).first;
    }
    it->second->want_read = readable != 0;
    it->second->want_write = writable != 0;
    self->arm(it->second);
  }

  // Hands the fd back to c-ares (which closes it) and aborts its waits.
  static void close_watch(Watch& watch) {
    watch.closed = true;
    std::error_code ignored;
    watch.descriptor.cancel(ignored);
    (void)watch.descriptor.release();
  }

  void arm(const std::shared_ptr<Watch>& watch) {
    if (watch->closed) return;
    if (watch->want_read && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                   [this, watch, alive = std::weak_ptr<void>(alive_)](std::error_code ec) {
                                     watch->reading = false;
                                     if (alive.expired() || watch->closed || ec == asio::error::operation_aborted) return;
                                     on_ready(watch, true);
                                   });
    }
    if (watch->want_write && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                                   [this, watch, alive = std::weak_ptr<void>(alive_)](std::error_code ec) {
                                     watch->writing = false;
                                     if (alive.expired() || watch->closed || ec == asio::error::operation_aborted) return;
                                     on_ready(watch, false);
                                   });
    }
  }

  void on_ready(const std::shared_ptr<Watch>& watch, bool read) {
    int fd = watch->descriptor.native_handle();
    ares_process_fd(channel_, read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
    arm(watch);  // no-op once c-ares closed the socket meanwhile
    after_cares();
  }

  // After every call into c-ares: the next retransmission or time-out, if any query is left.
  void after_cares() {
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
      timer_.cancel();
      return;
    }
    // Rounded up to the next millisecond so that the timer never fires just before c-ares
    // considers the deadline passed.
    auto wait = std::chrono::milliseconds(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000 + 1);
    timer_.expires_after(wait);
    timer_.async_wait([this, alive = std::weak_ptr<void>(alive_)](std::error_code ec) {
      if (alive.expired() || ec) return;
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // handles time-outs
      after_cares();
    });
  }

  asio::io_context& io_;
  ares_channel channel_ = nullptr;
  asio::steady_timer timer_;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Turns lookup_mx / lookup_addresses into one awaitable completion. The name travels as an
// initiation argument of a named initiation object, not as a capture of a temporary lambda: with
// GCC 12 such a lambda, passed through a co_await expression into asio's initiate coroutine, had
// its captured std::string destroyed twice (found by AwaitableForms; a known class of GCC 12
// coroutine bugs around temporaries).
template <typename Answer, void (Resolver::*Lookup)(const std::string&, std::function<void(Answer)>)>
struct LookupInitiation {
  Resolver* resolver;
  template <typename Handler>
  void operator()(Handler handler, std::string name) const {
    // std::function needs a copyable target; the coroutine's handler is move-only.
    auto shared = std::make_shared<Handler>(std::move(handler));
    (resolver->*Lookup)(name, [shared](Answer answer) {
      // Resumes the coroutine on its own executor, whatever thread the resolver answered on.
      auto ex = asio::get_associated_executor(*shared);
      asio::post(ex, [shared, answer = std::move(answer)]() mutable { (*shared)(std::move(answer)); });
    });
  }
};

asio::awaitable<MxAnswer> await_mx(Resolver& r, std::string domain) {
  LookupInitiation<MxAnswer, &Resolver::lookup_mx> initiation{&r};
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(MxAnswer)>(
      initiation, asio::use_awaitable, std::move(domain));
}

asio::awaitable<AddressAnswer> await_addresses(Resolver& r, std::string host) {
  LookupInitiation<AddressAnswer, &Resolver::lookup_addresses> initiation{&r};
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(AddressAnswer)>(
      initiation, asio::use_awaitable, std::move(host));
}

}  // namespace

std::unique_ptr<Resolver> make_cares_resolver(asio::io_context& io, const ResolverOptions& options,
                                              std::string* error) {
  std::string ignored;
  if (error == nullptr) error = &ignored;
  std::call_once(library_once, [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (library_status != ARES_SUCCESS) {
    *error = std::string("cannot initialize c-ares: ") + ares_strerror(library_status);
    return nullptr;
  }
  if (options.timeout.count() <= 0 || options.tries < 1) {
    *error = "DNS timeout and tries must be positive";
    return nullptr;
  }
  auto resolver = std::make_unique<CaresResolver>(io);
  if (!resolver->init(options, error)) return nullptr;
  return resolver;
}

// Not coroutines themselves: the name is copied now, so the awaitable may outlive the caller's string.
asio::awaitable<MxAnswer> async_lookup_mx(Resolver& r, const std::string& domain) { return await_mx(r, domain); }

asio::awaitable<AddressAnswer> async_lookup_addresses(Resolver& r, const std::string& host) {
  return await_addresses(r, host);
}

// -- FakeResolver -------------------------------------------------------------------------------

namespace {

template <typename Map>
auto find_name(const Map& map, const std::string& name) {
  auto it = map.find(name);
  return it != map.end() ? it : map.find(normalize_name(name));
}

}  // namespace

void FakeResolver::lookup_mx(const std::string& domain, std::function<void(MxAnswer)> done) {
  queries.push_back("MX " + domain);
  MxAnswer answer;
  if (transient.contains(domain) || transient.contains(normalize_name(domain))) {
    answer.status = DnsStatus::kTransient;
    answer.error = "fake transient failure";
  } else if (auto it = find_name(mx, domain); it != mx.end()) {
    answer.records = it->second;
    answer.status = answer.records.empty() ? DnsStatus::kNoRecords : DnsStatus::kOk;
  } else if (find_name(addresses, domain) != addresses.end()) {
    answer.status = DnsStatus::kNoRecords;  // the name exists, without MX
  } else {
    answer.status = DnsStatus::kNxDomain;
    answer.error = "fake NXDOMAIN";
  }
  post_answer(io_, std::move(done), std::move(answer));
}

void FakeResolver::lookup_addresses(const std::string& host, std::function<void(AddressAnswer)> done) {
  AddressAnswer answer;
  if (auto literal = parse_ip_literal(host)) {
    answer.status = DnsStatus::kOk;
    answer.addresses = {*literal};
    post_answer(io_, std::move(done), std::move(answer));
    return;
  }
  queries.push_back("A " + host);
  if (transient.contains(host) || transient.contains(normalize_name(host))) {
    answer.status = DnsStatus::kTransient;
    answer.error = "fake transient failure";
  } else if (auto it = find_name(addresses, host); it != addresses.end()) {
    answer.addresses = it->second;
    answer.status = answer.addresses.empty() ? DnsStatus::kNoRecords : DnsStatus::kOk;
  } else if (find_name(mx, host) != mx.end()) {
    answer.status = DnsStatus::kNoRecords;
  } else {
    answer.status = DnsStatus::kNxDomain;
    answer.error = "fake NXDOMAIN";
  }
  post_answer(io_, std::move(done), std::move(answer));
}

}  // namespace starling::net

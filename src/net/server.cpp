#include "net/server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "core/log.hpp"
#include "metrics/metrics.hpp"
#include "mgmt/password.hpp"
#include "net/connection.hpp"

namespace starling::net {
namespace {

// Answers a connection we will not serve with one line, then closes it, on the socket's own
// I/O thread.
void refuse(asio::ip::tcp::socket socket, std::string line) {
  auto sock = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
  auto text = std::make_shared<std::string>(std::move(line));
  asio::post(sock->get_executor(), [sock, text] {
    asio::async_write(*sock, asio::buffer(*text), [sock, text](std::error_code, size_t) {
      std::error_code ignored;
      sock->close(ignored);
    });
  });
}

}  // namespace

namespace {

// The automatic receive memory budget: a quarter of physical memory, at most 1 GiB.
uint64_t automatic_receive_memory() {
  constexpr uint64_t kMost = uint64_t{1} << 30;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return kMost;
  return std::min(kMost, static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) / 4);
}

}  // namespace

Server::Server(asio::io_context& io, queue::Spool& spool, unsigned io_threads)
    : io_(io),
      spool_(spool),
      open_per_thread_(std::max(io_threads, 1u), 0),
      receive_budget_(std::make_shared<smtp::MemoryBudget>(automatic_receive_memory())) {
  for (unsigned i = 1; i < io_threads; ++i) {
    // Concurrency hint 1: one thread runs each (Asio's fast path for posts from that thread;
    // posts from others stay safe).
    extra_io_.push_back(std::make_unique<asio::io_context>(1));
    extra_work_.push_back(asio::make_work_guard(*extra_io_.back()));
  }
}

void Server::start_io_threads() {
  for (auto& io : extra_io_) {
    extra_threads_.emplace_back([ctx = io.get()] { ctx->run(); });
    // Named for top -H and /proc/PID/task/*/comm (at most 15 characters).
    std::string name = "starlingd-io" + std::to_string(extra_threads_.size());
    ::pthread_setname_np(extra_threads_.back().native_handle(), name.c_str());
  }
}

void Server::join_io_threads() {
  // Whatever is still open there (the second-signal stop does not wait for the sessions) is
  // abandoned: its handlers are destroyed with the io_context, after the threads are gone.
  extra_work_.clear();
  for (auto& io : extra_io_) io->stop();
  for (auto& t : extra_threads_) t.join();
  extra_threads_.clear();
}

void Server::set_receive_memory_limit(uint64_t bytes) {
  receive_memory_limit_ = bytes;
  receive_budget_->set_limit(bytes == 0 ? automatic_receive_memory() : bytes);
}

Server::~Server() {
  join_io_threads();
  verifier_.join();
}

namespace {

// A real hash of a password nobody knows, so that an unknown user costs one Argon2id check like
// a known one (no user enumeration by timing). Made once, on the verifier thread.
const std::string& dummy_hash() {
  static std::once_flag once;
  static std::string hash;
  std::call_once(once, [] {
    auto h = mgmt::hash_password("starling: no such user, no such password");
    if (h) hash = *h;
  });
  return hash;
}

}  // namespace

void Server::verify_password(std::string hash, std::string password, asio::any_io_executor ex,
                             std::function<void(bool)> done) {
  asio::post(verifier_, [hash = std::move(hash), password = std::move(password), ex = std::move(ex),
                         done = std::move(done)]() mutable {
    bool ok = hash.empty() ? (mgmt::verify_password(dummy_hash(), password), false)
                           : mgmt::verify_password(hash, password);
    std::fill(password.begin(), password.end(), '\0');
    asio::post(ex, [done = std::move(done), ok] { done(ok); });
  });
}

void Server::forget_old_auth_failures(std::chrono::steady_clock::time_point now) {
  for (auto it = auth_failures_.begin(); it != auth_failures_.end();) {
    auto& recent = it->second.recent;
    while (!recent.empty() && now - recent.front() > kAuthFailureWindow) recent.pop_front();
    if (recent.empty() && it->second.blocked_until <= now) {
      it = auth_failures_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Server::auth_blocked(const std::string& client_ip) {
  std::lock_guard lock(auth_mutex_);
  auto it = auth_failures_.find(client_ip);
  return it != auth_failures_.end() && std::chrono::steady_clock::now() < it->second.blocked_until;
}

void Server::auth_failed(AuthFailure failure) {
  auto now = std::chrono::steady_clock::now();
  bool blocked_now = false;
  {
    std::lock_guard lock(auth_mutex_);
    forget_old_auth_failures(now);
    AuthFailures& f = auth_failures_[failure.client_ip];
    f.recent.push_back(now);
    if (f.recent.size() >= kAuthFailureLimit && f.blocked_until <= now) {
      f.blocked_until = now + kAuthBlock;
      f.recent.clear();
      blocked_now = true;
    }
  }
  if (blocked_now) {
    log_line("smtp: " + std::to_string(kAuthFailureLimit) + " AUTH failures from " +
             failure.client_ip + " within " + std::to_string(kAuthFailureWindow.count()) +
             " minutes: AUTH from it refused for " + std::to_string(kAuthBlock.count()) +
             " minutes");
  }
  if (on_auth_failure) on_auth_failure(failure);
}

Result<Server::Listener> Server::open_listener(const core::Binding& b,
                                               std::shared_ptr<const ConnectorRuntime> cr) {
  std::error_code ec;
  auto address = asio::ip::make_address(b.address, ec);
  if (ec) return make_error("connector '" + cr->connector.name + "': bad binding address " + b.address);
  asio::ip::tcp::endpoint endpoint(address, b.port);
  Listener l{asio::ip::tcp::acceptor(io_), {std::move(cr)}};
  l.acceptor.open(endpoint.protocol(), ec);
  if (!ec) l.acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec && address.is_v6()) l.acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) l.acceptor.bind(endpoint, ec);
  if (!ec) l.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("connector '" + l.connectors.front()->connector.name + "': cannot listen on " +
                      core::format_binding(b) + ": " + ec.message());
  }
  return l;
}

namespace {

// Where a binding listens, comparable across configurations.
std::string endpoint_key(const asio::ip::address& a, uint16_t port) {
  return core::format_binding({a.to_string(), port});
}

}  // namespace

Result<void> Server::start(Runtime runtime) {
  std::list<Listener> opened;
  for (const auto& cr : runtime.connectors) {
    for (const auto& b : cr->connector.bindings) {
      std::error_code ec;
      auto address = asio::ip::make_address(b.address, ec);
      // Connectors that share a binding share its listener (told apart by RemoteIPRanges).
      auto same = std::find_if(opened.begin(), opened.end(), [&](Listener& l) {
        return !ec && b.port != 0 && l.acceptor.local_endpoint().address() == address &&
               l.acceptor.local_endpoint().port() == b.port;
      });
      if (same != opened.end()) {
        same->connectors.push_back(cr);
        continue;
      }
      auto l = open_listener(b, cr);
      if (!l) return std::move(l).take_error();
      opened.push_back(std::move(*l));
    }
  }
  runtime_ = std::move(runtime);
  listeners_ = std::move(opened);
  for (Listener& l : listeners_) accept_loop(l);
  log_line("smtp: messages being received may hold " +
           std::to_string(receive_budget_->limit() >> 20) + " MiB of memory together" +
           (receive_memory_limit_ == 0 ? " (automatic: a quarter of physical memory, at most 1 GiB)"
                                       : ""));
  return {};
}

std::vector<std::string> Server::apply(Runtime runtime) {
  std::vector<std::string> failures;
  if (stopping_) return failures;
  // What each endpoint should serve now.
  std::map<std::string, std::vector<std::shared_ptr<const ConnectorRuntime>>> wanted;
  std::map<std::string, core::Binding> bindings;
  for (const auto& cr : runtime.connectors) {
    for (const auto& b : cr->connector.bindings) {
      std::error_code ec;
      auto address = asio::ip::make_address(b.address, ec);
      if (ec) continue;
      std::string key = endpoint_key(address, b.port);
      wanted[key].push_back(cr);
      bindings[key] = b;
    }
  }
  // Kept listeners take the new connectors; listeners nobody wants any more close.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    std::error_code ec;
    auto ep = it->acceptor.local_endpoint(ec);
    std::string key = ec ? "" : endpoint_key(ep.address(), ep.port());
    auto w = wanted.find(key);
    if (w == wanted.end()) {
      it->acceptor.close(ec);
      it = listeners_.erase(it);
      continue;
    }
    it->connectors = std::move(w->second);
    wanted.erase(w);
    ++it;
  }
  // New bindings start listening.
  for (auto& [key, connectors] : wanted) {
    auto l = open_listener(bindings[key], connectors.front());
    if (!l) {
      failures.push_back(l.error());
      continue;
    }
    l->connectors = std::move(connectors);
    listeners_.push_back(std::move(*l));
    accept_loop(listeners_.back());
  }
  runtime_ = std::move(runtime);
  return failures;
}

std::vector<std::string> Server::listening() const {
  std::vector<std::string> out;
  for (const Listener& l : listeners_) {
    std::error_code ec;
    auto ep = l.acceptor.local_endpoint(ec);
    if (ec) continue;
    out.push_back(core::format_binding({ep.address().to_string(), ep.port()}));
  }
  return out;
}

unsigned Server::pick_thread() {
  std::lock_guard lock(mutex_);
  unsigned n = static_cast<unsigned>(open_per_thread_.size());
  unsigned best = next_thread_ % n;
  for (unsigned i = 1; i < n; ++i) {
    unsigned t = (next_thread_ + i) % n;
    if (open_per_thread_[t] < open_per_thread_[best]) best = t;
  }
  next_thread_ = best + 1;
  return best;
}

void Server::accept_loop(Listener& l) {
  // The socket is accepted straight onto the chosen thread's io_context (no descriptor moves
  // later); the handler itself runs here, on thread 0, where the limits are decided.
  unsigned thread = pick_thread();
  l.acceptor.async_accept(thread_io(thread), [this, &l, thread](std::error_code ec,
                                                                 asio::ip::tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors or similar: log, pause briefly, keep accepting.
      log_line("accept failed: " + ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      timer->async_wait([this, &l, timer](std::error_code) {
        if (!stopping_) accept_loop(l);
      });
      return;
    }
    on_accept(l, thread, std::move(socket));
    accept_loop(l);
  });
}

std::shared_ptr<const ConnectorRuntime> Server::pick_connector(
    const Listener& l, const asio::ip::address& remote) const {
  // Among the connectors on this binding, the one with the most specific matching range.
  auto ip = core::parse_ip(remote.to_string());
  if (!ip) return nullptr;
  std::shared_ptr<const ConnectorRuntime> best;
  core::IpBytes best_span{};
  for (const auto& c : l.connectors) {
    auto i = core::most_specific_match(c->remote_ranges, *ip);
    if (!i) continue;
    core::IpBytes span = c->remote_ranges[*i].span();
    if (!best || span < best_span) {
      best = c;
      best_span = span;
    }
  }
  return best;
}

void Server::on_accept(Listener& l, unsigned thread, asio::ip::tcp::socket socket) {
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  auto connector = pick_connector(l, remote.address());
  if (!connector) {
    // No connector on this binding serves this client (RFC 5321 §3.1: 554 instead of 220).
    return refuse(std::move(socket), "554 5.7.1 No SMTP service for your address\r\n");
  }
  const core::ReceiveConnector& c = connector->connector;
  std::string source = remote.address().to_string();
  {
    // Counted here, on thread 0, before the connection exists: the limits hold across threads.
    std::lock_guard lock(mutex_);
    Counters& counters = counters_[c.name];
    if (counters.total >= c.max_inbound_connection ||
        counters.per_source[source] >= c.max_inbound_connection_per_source) {
      if (counters.per_source[source] == 0) counters.per_source.erase(source);
      // Refuse politely; the client may retry later (RFC 5321 §3.8).
      return refuse(std::move(socket),
                    "421 4.3.2 " + connector->fqdn + " Too many connections, try again later\r\n");
    }
    ++counters.total;
    ++counters.per_source[source];
    ++open_per_thread_[thread];
  }
  metrics::count(metrics::kConnectionsAccepted, {{"connector", c.name}});
  metrics::add_gauge(metrics::kConnectionsOpen, {{"connector", c.name}}, 1);
  // Built here, started there: start() spawns its coroutines on the socket's own executor.
  auto conn = std::make_shared<Connection>(*this, std::move(socket), connector, c.name);
  {
    std::lock_guard lock(mutex_);
    connections_[conn.get()] = Open{conn, thread};
  }
  conn->start();
}

void Server::connection_closed(Connection* c) {
  bool none_left = false;
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(c);
    if (it == connections_.end()) return;
    --open_per_thread_[it->second.thread];
    connections_.erase(it);
    Counters& counters = counters_[c->counter_key()];
    --counters.total;
    if (--counters.per_source[c->source()] == 0) counters.per_source.erase(c->source());
    none_left = connections_.empty();
  }
  metrics::add_gauge(metrics::kConnectionsOpen, {{"connector", c->counter_key()}}, -1);
  // The stop's completion belongs to thread 0.
  if (none_left && stopping_) asio::post(io_, [this] { maybe_finish_stop(); });
}

void Server::shutdown_connections() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mutex_);
    for (auto& [ptr, o] : connections_) {
      if (auto c = o.connection.lock()) open.push_back(std::move(c));
    }
  }
  // Each is told on its own thread: its socket and timers are not thread-safe.
  for (auto& c : open) c->shutdown();
}

void Server::stop(std::chrono::milliseconds grace, std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  for (Listener& l : listeners_) {
    std::error_code ec;
    l.acceptor.close(ec);
  }
  size_t in_flight = 0;
  {
    std::lock_guard lock(mutex_);
    in_flight = connections_.size();
  }
  if (in_flight > 0) {
    log_line("stopping: " + std::to_string(in_flight) + " session(s) in flight get " +
             std::to_string(grace.count()) + " ms to finish");
  }
  grace_timer_ = std::make_unique<asio::steady_timer>(io_, grace);
  grace_timer_->async_wait([this](std::error_code ec) {
    if (ec) return;
    // Grace is over: every session still open is told 421 4.3.2 and closed.
    shutdown_connections();
  });
  maybe_finish_stop();
}

void Server::maybe_finish_stop() {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ || !connections_.empty() || !on_stopped_) return;
  }
  if (grace_timer_) grace_timer_->cancel();
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  asio::post(io_, std::move(done));
}

}  // namespace starling::net

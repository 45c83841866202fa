// A per-operation timeout for a socket coroutine: cancels the socket's pending operations when
// the limit passes, and tells afterwards whether it did. Debian 12's Asio 1.22 has no
// cancel_after; racing a timer this way keeps one awaited operation per step.
#pragma once

#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <system_error>

namespace starling::net {

template <typename Socket>
class Deadline {
 public:
  Deadline(Socket& socket, std::chrono::steady_clock::duration limit) : timer_(socket.get_executor()) {
    timer_.expires_after(limit);
    // The handler touches the socket only when the timer expired, never after cancel(): a
    // Deadline may go out of scope before the socket does, and the other way round.
    timer_.async_wait([&socket, expired = expired_](std::error_code ec) {
      if (ec) return;
      *expired = true;
      std::error_code ignored;
      socket.cancel(ignored);
    });
  }
  ~Deadline() { timer_.cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  bool expired() const { return *expired_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> expired_ = std::make_shared<bool>(false);
};

}  // namespace starling::net

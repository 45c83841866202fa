// core::QueueControl for the running server: each call is posted to the delivery thread, which
// answers from the dispatcher's state (net::Dispatcher's queue administration), and the caller
// (the management thread, or the metrics scrape) waits for the answer a bounded time. An action
// is answered once its change is durable in the queue. Message content is read from the queue
// file on the caller's thread, piece by piece, never through the delivery thread.
#pragma once

#include <chrono>

#include "core/queue_control.hpp"
#include "net/dispatcher.hpp"
#include "queue/spool.hpp"

namespace starling::net {

class QueueAdmin : public core::QueueControl {
 public:
  // A piece of content is at most this large, whatever is asked.
  static constexpr uint64_t kMaxPiece = 4 << 20;

  explicit QueueAdmin(Dispatcher& dispatcher, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  Result<std::vector<core::QueueInfo>> queues() override;
  Result<std::vector<core::MessageInfo>> messages(bool include_recipients) override;
  Result<std::string> act_on_queue(const std::string& name, core::QueueAction action) override;
  Result<std::vector<core::MessageInfo>> act_on_message(const core::MessageRef& ref,
                                                        core::MessageAction action) override;
  Result<ContentPiece> message_content(const core::MessageRef& ref, uint64_t offset, uint64_t max_bytes) override;

 private:
  // Runs `work` on the delivery thread; it calls its argument once with the answer (then or
  // later, from any thread). An error when no answer comes within the timeout.
  template <typename T>
  Result<T> ask(std::function<void(std::function<void(Result<T>)>)> work);

  Dispatcher& dispatcher_;
  std::chrono::milliseconds timeout_;
};

}  // namespace starling::net

#include "net/queue_admin.hpp"

#include <asio/post.hpp>

#include <future>
#include <memory>

namespace starling::net {

QueueAdmin::QueueAdmin(Dispatcher& dispatcher, std::chrono::milliseconds timeout)
    : dispatcher_(dispatcher), timeout_(timeout) {}

template <typename T>
Result<T> QueueAdmin::ask(std::function<void(std::function<void(Result<T>)>)> work) {
  // Shared with the delivery thread: an answer after the timeout finds it still there. The jobs
  // capture the dispatcher, never this object: a job may run after the asker gave up and went.
  auto answer = std::make_shared<std::promise<Result<T>>>();
  auto once = std::make_shared<std::once_flag>();
  std::future<Result<T>> future = answer->get_future();
  asio::post(dispatcher_.io(), [work = std::move(work), answer, once] {
    work([answer, once](Result<T> r) { std::call_once(*once, [&] { answer->set_value(std::move(r)); }); });
  });
  if (future.wait_for(timeout_) != std::future_status::ready) {
    return make_error("the delivery thread did not answer within " + std::to_string(timeout_.count() / 1000) +
                      " s; try again");
  }
  return future.get();
}

Result<std::vector<core::QueueInfo>> QueueAdmin::queues() {
  return ask<std::vector<core::QueueInfo>>([&d = dispatcher_](auto reply) { reply(d.queue_views()); });
}

Result<std::vector<core::MessageInfo>> QueueAdmin::messages(bool include_recipients) {
  return ask<std::vector<core::MessageInfo>>(
      [&d = dispatcher_, include_recipients](auto reply) { reply(d.message_views(include_recipients)); });
}

Result<std::string> QueueAdmin::act_on_queue(const std::string& name, core::QueueAction action) {
  return ask<std::string>([&d = dispatcher_, name, action](auto reply) { reply(d.act_on_queue(name, action)); });
}

Result<std::vector<core::MessageInfo>> QueueAdmin::act_on_message(const core::MessageRef& ref,
                                                                  core::MessageAction action) {
  return ask<std::vector<core::MessageInfo>>(
      [&d = dispatcher_, ref, action](auto reply) { d.act_on_message(ref, action, std::move(reply)); });
}

Result<QueueAdmin::ContentPiece> QueueAdmin::message_content(const core::MessageRef& ref, uint64_t offset,
                                                             uint64_t max_bytes) {
  auto message = ask<queue::QueuedMessage>([&d = dispatcher_, ref](auto reply) { reply(d.message_for(ref)); });
  if (!message) return std::move(message).take_error();
  auto bytes = dispatcher_.spool().read_range(*message, offset, std::min(max_bytes, kMaxPiece));
  if (!bytes) return std::move(bytes).take_error();
  return ContentPiece{std::move(*bytes), message->content_size};
}

}  // namespace starling::net

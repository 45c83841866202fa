// The command table: each management command with its Exchange alias and handler. Handlers
// validate everything first (check), then write (proceed) inside the request's transaction.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mgmt/request.hpp"

namespace starling::mgmt {

using Handler = Reply (*)(Context&, const Request&);

struct CommandSpec {
  std::string_view name;
  std::string_view exchange_alias;
  Handler handler;
  // False for the queue commands: they ask the running server's delivery thread, which writes
  // its events to the store, so they must not wait for it inside the store's write transaction.
  bool uses_store = true;
};

// Helpers shared by the handler files.
std::optional<std::string> arg(const Request& r, std::string_view key);  // last value
bool has_arg(const Request& r, std::string_view key);
// Refuses options the command does not know.
Result<void> only_options(const Request& r, std::initializer_list<std::string_view> allowed);
// The confirmation protocol: true when the command may go ahead; otherwise `reply` says why
// (a question for a terminal, or an error without one).
bool confirmed(const Request& r, const std::string& question, Reply& reply);

// Handlers (commands.cpp, certificate_commands.cpp).
Reply get_receive_connector(Context&, const Request&);
Reply new_receive_connector(Context&, const Request&);
Reply set_receive_connector(Context&, const Request&);
Reply remove_receive_connector(Context&, const Request&);
Reply get_send_connector(Context&, const Request&);
Reply new_send_connector(Context&, const Request&);
Reply set_send_connector(Context&, const Request&);
Reply remove_send_connector(Context&, const Request&);
Reply get_transport_server(Context&, const Request&);  // transport_commands.cpp
Reply set_transport_server(Context&, const Request&);
Reply get_accepted_domain(Context&, const Request&);  // domain_commands.cpp
Reply new_accepted_domain(Context&, const Request&);
Reply set_accepted_domain(Context&, const Request&);
Reply remove_accepted_domain(Context&, const Request&);
Reply get_mailbox(Context&, const Request&);  // recipient_commands.cpp
Reply new_mailbox(Context&, const Request&);
Reply set_mailbox(Context&, const Request&);
Reply remove_mailbox(Context&, const Request&);
Reply get_distribution_group(Context&, const Request&);
Reply new_distribution_group(Context&, const Request&);
Reply set_distribution_group(Context&, const Request&);
Reply remove_distribution_group(Context&, const Request&);
Reply get_role_assignment(Context&, const Request&);
Reply new_role_assignment(Context&, const Request&);
Reply remove_role_assignment(Context&, const Request&);
Reply get_event(Context&, const Request&);
Reply get_certificate(Context&, const Request&);
Reply new_certificate(Context&, const Request&);
Reply import_certificate(Context&, const Request&);
Reply enable_certificate(Context&, const Request&);
Reply export_certificate(Context&, const Request&);
Reply remove_certificate(Context&, const Request&);
Reply test_starttls(Context&, const Request&);
Reply get_queue(Context&, const Request&);  // queue_commands.cpp
Reply get_message(Context&, const Request&);
Reply retry_queue(Context&, const Request&);
Reply suspend_queue(Context&, const Request&);
Reply resume_queue(Context&, const Request&);
Reply suspend_message(Context&, const Request&);
Reply resume_message(Context&, const Request&);
Reply remove_message(Context&, const Request&);
Reply export_message(Context&, const Request&);
Reply get_message_tracking_log(Context&, const Request&);  // tracking_commands.cpp

}  // namespace starling::mgmt

// The queue commands (docs/queues.md): get-queue, get-message, retry-/suspend-/resume-queue,
// suspend-/resume-/remove-message and export-message, over core::QueueControl — the running
// server's queues. They never touch the queue's files: with --offline there is no QueueControl and
// they say so. Identities are Exchange's: a queue "<server>\<name>" or "<name>", a message
// "<server>\<queue>\<n>", "<queue>\<n>" or its InternalMessageId. Every action is recorded as a
// change (13001) that reconfigures nothing: the store is not what changed.
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>

#include "core/names.hpp"
#include "core/queue_control.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/filter.hpp"
#include "mgmt/queue_commands.hpp"
#include "mgmt/values.hpp"

namespace starling::mgmt {
namespace {

using core::MessageAction;
using core::QueueAction;

constexpr FilterProperty kQueueProperties[] = {
    {"Identity", PropertyKind::kText},         {"DeliveryType", PropertyKind::kText},
    {"NextHopDomain", PropertyKind::kText},    {"NextHopConnector", PropertyKind::kText},
    {"Status", PropertyKind::kText},           {"MessageCount", PropertyKind::kNumber},
    {"LastError", PropertyKind::kText},        {"LastRetryTime", PropertyKind::kTime},
    {"NextRetryTime", PropertyKind::kTime},    {"IncomingRate", PropertyKind::kNumber},
    {"OutgoingRate", PropertyKind::kNumber},
};

constexpr FilterProperty kMessageProperties[] = {
    {"Identity", PropertyKind::kText},          {"FromAddress", PropertyKind::kText},
    {"Subject", PropertyKind::kText},           {"Size", PropertyKind::kNumber},
    {"Status", PropertyKind::kText},            {"DateReceived", PropertyKind::kTime},
    {"ExpirationTime", PropertyKind::kTime},    {"LastError", PropertyKind::kText},
    {"RetryCount", PropertyKind::kNumber},      {"Queue", PropertyKind::kText},
    {"InternetMessageId", PropertyKind::kText}, {"InternalMessageId", PropertyKind::kText},
    {"Recipients", PropertyKind::kText},
};

// Exchange's Get-Queue and Get-Message columns.
const std::vector<std::string> kQueueColumns{"Identity", "DeliveryType", "Status", "MessageCount", "NextHopDomain"};
const std::vector<std::string> kMessageColumns{"Identity", "FromAddress", "Status", "Size", "Subject"};

// As Exchange's -ResultSize: a million queued messages are not one reply.
constexpr int64_t kDefaultResultSize = 1000;

Reply from_error(Error e) { return failure(kExitFailed, std::move(e.message)); }

Reply needs_server(const Request& req) {
  return failure(kExitFailed, req.command +
                                  " needs the running server: the queues are starlingd's. Start starlingd and run the "
                                  "command without --offline");
}

Json time_value(int64_t t) { return t == 0 ? Json() : Json(format_time(t)); }

// Messages per second to three decimals: 0.017, not 0.016666666666666666.
double rate(double per_second) { return std::round(per_second * 1000) / 1000; }

std::string queue_identity(const Context& ctx, const std::string& queue) {
  return ctx.settings.server_name + "\\" + queue;
}

Json present_queue(const Context& ctx, const core::QueueInfo& q) {
  Json o;
  o["Identity"] = queue_identity(ctx, q.name);
  o["DeliveryType"] = q.delivery_type;
  o["NextHopDomain"] = q.next_hop_domain;
  o["NextHopConnector"] = q.next_hop_connector;
  o["Status"] = q.status;
  o["MessageCount"] = q.message_count;
  o["LastError"] = q.last_error;
  o["LastRetryTime"] = time_value(q.last_retry_time);
  o["NextRetryTime"] = time_value(q.next_retry_time);
  o["IncomingRate"] = rate(q.incoming_rate);
  o["OutgoingRate"] = rate(q.outgoing_rate);
  return o;
}

std::string message_identity(const Context& ctx, const core::MessageInfo& m) {
  return queue_identity(ctx, m.queue) + "\\" + std::to_string(m.number);
}

Json present_message(const Context& ctx, const core::MessageInfo& m) {
  Json o;
  o["Identity"] = message_identity(ctx, m);
  o["FromAddress"] = m.from_address.empty() ? "<>" : m.from_address;
  o["Subject"] = m.subject;
  o["Size"] = m.size;
  o["Status"] = m.status;
  o["DateReceived"] = time_value(m.date_received);
  o["ExpirationTime"] = time_value(m.expiration_time);
  o["LastError"] = m.last_error;
  o["RetryCount"] = m.retry_count;
  o["Queue"] = queue_identity(ctx, m.queue);
  o["InternetMessageId"] = m.internet_message_id;
  o["InternalMessageId"] = m.internal_id;
  Json recipients = Json::array();
  for (const auto& r : m.recipients) {
    recipients.push_back(Json{{"Address", r.address}, {"Status", r.status}, {"LastError", r.last_reply},
                              {"Queue", queue_identity(ctx, r.queue)}});
  }
  o["Recipients"] = std::move(recipients);
  return o;
}

// --- identities ----------------------------------------------------------------------------------

std::vector<std::string> split_identity(const std::string& identity) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = identity.find('\\', start);
    parts.push_back(identity.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

Result<void> check_server(const Context& ctx, const std::string& server) {
  if (core::iequals(server, ctx.settings.server_name)) return {};
  return make_error("no server named '" + server + "' (this server is '" + ctx.settings.server_name + "')");
}

// "<server>\<name>" or "<name>" -> the queue's name.
Result<std::string> queue_name(const Context& ctx, const std::string& identity) {
  auto parts = split_identity(identity);
  if (parts.size() > 2 || parts.back().empty()) {
    return make_error("'" + identity + "' is not a queue identity: SERVER\\QUEUE or QUEUE (get-queue lists them)");
  }
  if (parts.size() == 2) {
    if (auto s = check_server(ctx, parts[0]); !s) return std::move(s).take_error();
  }
  return parts.back();
}

std::optional<uint64_t> parse_number(const std::string& s) {
  if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoull(s);
}

// What a message identity names: a queue's message number, or an InternalMessageId (`text`).
struct MessageSelector {
  std::string identity;  // as given, for messages
  std::string queue;     // empty: any
  std::optional<uint64_t> number;
  std::string text;      // one part: an InternalMessageId, or else a number
};

Result<MessageSelector> parse_message_identity(const Context& ctx, const std::string& identity) {
  auto parts = split_identity(identity);
  MessageSelector s{identity, "", std::nullopt, ""};
  bool empty_part = std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
  if (parts.size() == 1 && !empty_part) {
    s.text = parts[0];
    return s;
  }
  if (parts.size() == 3 && !empty_part) {
    if (auto c = check_server(ctx, parts[0]); !c) return std::move(c).take_error();
    parts.erase(parts.begin());
  }
  if (parts.size() == 2 && !empty_part) {
    s.queue = parts[0];
    s.number = parse_number(parts[1]);
    if (s.number) return s;
  }
  return make_error("'" + identity +
                    "' is not a message identity: SERVER\\QUEUE\\N, QUEUE\\N or an InternalMessageId (get-message "
                    "lists them)");
}

// The messages the selector names, in every queue that holds them unless it names one. A bare
// word is an InternalMessageId first, a number otherwise.
std::vector<core::MessageInfo> select(const MessageSelector& s, std::vector<core::MessageInfo> all) {
  bool by_id = !s.text.empty() &&
               std::any_of(all.begin(), all.end(), [&](const auto& m) { return m.internal_id == s.text; });
  std::optional<uint64_t> number = s.number ? s.number : by_id ? std::nullopt : parse_number(s.text);
  std::erase_if(all, [&](const core::MessageInfo& m) {
    if (!s.queue.empty() && !core::iequals(m.queue, s.queue)) return true;
    if (by_id) return m.internal_id != s.text;
    return !number || m.number != *number;
  });
  return all;
}

Result<std::vector<core::MessageInfo>> find_messages(Context& ctx, const MessageSelector& s, bool recipients) {
  auto all = ctx.queues->messages(recipients);
  if (!all) return std::move(all).take_error();
  auto found = select(s, std::move(*all));
  if (found.empty()) return make_error("no message '" + s.identity + "' (get-message lists them)");
  return found;
}

Result<core::QueueInfo> find_queue(Context& ctx, const std::string& name) {
  auto all = ctx.queues->queues();
  if (!all) return std::move(all).take_error();
  for (auto& q : *all) {
    if (core::iequals(q.name, name)) return std::move(q);
  }
  return make_error("no queue named '" + name + "' (get-queue lists them)");
}

// --- options -------------------------------------------------------------------------------------

Result<std::optional<Filter>> filter_option(const Context& ctx, const Request& req,
                                            std::span<const FilterProperty> properties) {
  auto text = arg(req, "filter");
  if (!text) return std::optional<Filter>();
  auto f = Filter::parse(*text, properties, ctx.now);
  if (!f) return make_error("--filter: " + f.error());
  return std::optional<Filter>(std::move(*f));
}

Result<int64_t> result_size(const Request& req) {
  auto text = arg(req, "resultsize");
  if (!text) return kDefaultResultSize;
  if (core::iequals(*text, "unlimited")) return INT64_MAX;
  auto n = parse_integer("--result-size", *text);
  if (!n || *n < 1) return make_error("--result-size: a number from 1, or unlimited");
  return *n;
}

Result<bool> switch_option(const Request& req, std::string_view key, std::string_view shown, bool absent) {
  auto text = arg(req, key);
  if (!text) return absent;
  return parse_bool(shown, *text);
}

// Adds `o` to the reply unless the result size is reached; then warns once.
void add_limited(Reply& r, Json o, int64_t limit, const std::string& what) {
  if (static_cast<int64_t>(r.objects.size()) < limit) {
    r.objects.push_back(std::move(o));
  } else if (r.warnings.empty()) {
    r.warnings.push_back("there are more " + what + " than the " + std::to_string(limit) +
                         " shown; use --result-size N or --result-size unlimited, or a --filter");
  }
}

// --- actions -------------------------------------------------------------------------------------

Reply queue_action(Context& ctx, const Request& req, QueueAction action, std::string_view done) {
  const bool retry = action == QueueAction::kRetry;
  if (auto o = retry ? only_options(req, {"resubmit"}) : only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, req.command + ": which queue? (" + req.command + " QUEUE; get-queue lists them)");
  auto name = queue_name(ctx, *id);
  if (!name) return failure(kExitUsage, name.error());
  auto resubmit = switch_option(req, "resubmit", "--resubmit", false);
  if (!resubmit) return failure(kExitUsage, resubmit.error());
  if (*resubmit) action = QueueAction::kResubmit;
  if (!ctx.queues) return needs_server(req);
  auto queue = find_queue(ctx, *name);
  if (!queue) return from_error(std::move(queue).take_error());
  auto result = ctx.queues->act_on_queue(queue->name, action);
  if (!result) return from_error(std::move(result).take_error());
  Reply r;
  std::string identity = queue_identity(ctx, queue->name);
  r.messages.push_back("Queue " + identity + ": " + *result);
  r.change = std::string(*resubmit ? "resubmitted" : done) + " queue " + identity + ": " + *result;
  r.reconfigures = false;
  return r;
}

std::string describe(const Context& ctx, const core::MessageInfo& m) {
  return message_identity(ctx, m) + " (" + m.internal_id + ", from " +
         (m.from_address.empty() ? "<>" : m.from_address) + ")";
}

Reply message_action(Context& ctx, const Request& req, MessageAction action, std::string_view done) {
  const bool removing = action == MessageAction::kRemoveWithNdr;
  if (auto o = removing ? only_options(req, {"withndr"}) : only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) {
    return failure(kExitUsage, req.command + ": which message? (" + req.command + " SERVER\\QUEUE\\N; get-message lists them)");
  }
  auto selector = parse_message_identity(ctx, *id);
  if (!selector) return failure(kExitUsage, selector.error());
  auto with_ndr = switch_option(req, "withndr", "--with-ndr", true);
  if (!with_ndr) return failure(kExitUsage, with_ndr.error());
  if (removing && !*with_ndr) action = MessageAction::kRemoveWithoutNdr;
  if (!ctx.queues) return needs_server(req);
  auto found = find_messages(ctx, *selector, false);
  if (!found) return from_error(std::move(found).take_error());
  const core::MessageInfo& target = found->front();  // one message, perhaps in several queues
  std::string what = describe(ctx, target);
  std::string report = !removing ? "" : *with_ndr ? " with a non-delivery report to the sender" : " without a report";
  Reply r;
  if (removing && !confirmed(req, "Remove message " + what + report + "?", r)) return r;
  core::MessageRef ref{target.number, target.internal_id, selector->queue.empty() ? "" : target.queue};
  auto acted = ctx.queues->act_on_message(ref, action);
  if (!acted) return from_error(std::move(acted).take_error());
  r.default_properties = kMessageColumns;
  for (const auto& m : *acted) {
    r.objects.push_back(present_message(ctx, m));
    r.objects.back().erase("Recipients");
    if (m.status.starts_with("Pending")) {
      r.messages.push_back("Message " + message_identity(ctx, m) + " is being sent: it is " + m.status +
                           ", and the action applies when the attempt ends.");
    }
  }
  r.change = std::string(done) + " message " + what + report;
  r.reconfigures = false;
  return r;
}

}  // namespace

Reply get_queue(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"filter", "resultsize"}); !o) return failure(kExitUsage, o.error());
  auto filter = filter_option(ctx, req, kQueueProperties);
  if (!filter) return failure(kExitUsage, filter.error());
  auto limit = result_size(req);
  if (!limit) return failure(kExitUsage, limit.error());
  std::optional<std::string> name;
  if (auto id = arg(req, "identity")) {
    auto n = queue_name(ctx, *id);
    if (!n) return failure(kExitUsage, n.error());
    name = *n;
  }
  if (!ctx.queues) return needs_server(req);
  auto all = ctx.queues->queues();
  if (!all) return from_error(std::move(all).take_error());
  Reply r;
  r.default_properties = kQueueColumns;
  bool named_found = false;
  for (const auto& q : *all) {
    if (name && !core::iequals(q.name, *name)) continue;
    named_found = true;
    Json o = present_queue(ctx, q);
    if (*filter && !(*filter)->matches(o)) continue;
    add_limited(r, std::move(o), *limit, "queues");
  }
  if (name && !named_found) return failure(kExitFailed, "no queue named '" + *name + "' (get-queue lists them)");
  return r;
}

Reply get_message(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"filter", "queue", "includerecipientinfo", "resultsize"}); !o) {
    return failure(kExitUsage, o.error());
  }
  auto filter = filter_option(ctx, req, kMessageProperties);
  if (!filter) return failure(kExitUsage, filter.error());
  auto limit = result_size(req);
  if (!limit) return failure(kExitUsage, limit.error());
  auto include = switch_option(req, "includerecipientinfo", "--include-recipient-info", false);
  if (!include) return failure(kExitUsage, include.error());
  MessageSelector selector;
  if (auto id = arg(req, "identity")) {
    auto s = parse_message_identity(ctx, *id);
    if (!s) return failure(kExitUsage, s.error());
    selector = std::move(*s);
  }
  if (auto q = arg(req, "queue")) {
    auto n = queue_name(ctx, *q);
    if (!n) return failure(kExitUsage, "--queue: " + n.error());
    if (!selector.queue.empty() && !core::iequals(selector.queue, *n)) {
      return failure(kExitUsage, "the message " + selector.identity + " is not in the queue " + *q);
    }
    selector.queue = *n;
  }
  if (!ctx.queues) return needs_server(req);
  if (!selector.queue.empty()) {
    if (auto q = find_queue(ctx, selector.queue); !q) return from_error(std::move(q).take_error());
  }
  bool recipients = *include || (*filter && (*filter)->mentions("Recipients"));
  auto all = ctx.queues->messages(recipients);
  if (!all) return from_error(std::move(all).take_error());
  bool by_identity = !selector.identity.empty();
  std::vector<core::MessageInfo> chosen = by_identity ? select(selector, std::move(*all)) : std::move(*all);
  if (!by_identity && !selector.queue.empty()) {
    std::erase_if(chosen, [&](const auto& m) { return !core::iequals(m.queue, selector.queue); });
  }
  if (by_identity && chosen.empty()) {
    return failure(kExitFailed, "no message '" + selector.identity + "' (get-message lists them)");
  }
  Reply r;
  r.default_properties = kMessageColumns;
  for (const auto& m : chosen) {
    Json o = present_message(ctx, m);
    if (*filter && !(*filter)->matches(o)) continue;
    if (!*include) o.erase("Recipients");
    add_limited(r, std::move(o), *limit, "messages");
  }
  return r;
}

Reply retry_queue(Context& ctx, const Request& req) { return queue_action(ctx, req, QueueAction::kRetry, "retried"); }
Reply suspend_queue(Context& ctx, const Request& req) {
  return queue_action(ctx, req, QueueAction::kSuspend, "suspended");
}
Reply resume_queue(Context& ctx, const Request& req) { return queue_action(ctx, req, QueueAction::kResume, "resumed"); }

Reply suspend_message(Context& ctx, const Request& req) {
  return message_action(ctx, req, MessageAction::kSuspend, "suspended");
}
Reply resume_message(Context& ctx, const Request& req) {
  return message_action(ctx, req, MessageAction::kResume, "resumed");
}
Reply remove_message(Context& ctx, const Request& req) {
  return message_action(ctx, req, MessageAction::kRemoveWithNdr, "removed");
}

// One piece of the message from the offset the shell asks for; the shell writes the file.
Reply export_message(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {kExportOffsetKey}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "export-message: which message? (export-message SERVER\\QUEUE\\N --file FILE)");
  auto selector = parse_message_identity(ctx, *id);
  if (!selector) return failure(kExitUsage, selector.error());
  int64_t offset = 0;
  if (auto text = arg(req, kExportOffsetKey)) {
    auto n = parse_integer("offset", *text);
    if (!n || *n < 0) return failure(kExitUsage, "export-message: a bad offset in the request");
    offset = *n;
  }
  if (!ctx.queues) return needs_server(req);
  auto found = find_messages(ctx, *selector, false);
  if (!found) return from_error(std::move(found).take_error());
  const core::MessageInfo& m = found->front();
  core::MessageRef ref{m.number, m.internal_id, ""};
  auto piece = ctx.queues->message_content(ref, static_cast<uint64_t>(offset), kExportPieceBytes);
  if (!piece) return from_error(std::move(piece).take_error());
  if (piece->bytes.size() > kExportPieceBytes) return failure(kExitFailed, "export-message: the server sent too much");
  Reply r;
  r.objects.push_back(Json{{"Identity", message_identity(ctx, m)}, {"InternalMessageId", m.internal_id},
                           {"Size", piece->total_size}});
  r.file_base64 = to_base64(piece->bytes);
  if (offset == 0) {  // audited once per export, not once per piece
    r.change = "exported message " + describe(ctx, m);
    r.reconfigures = false;
  }
  return r;
}

}  // namespace starling::mgmt

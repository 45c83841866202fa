// get-message-tracking-log (Exchange's Get-MessageTrackingLog, docs/tracking.md): the entries of
// DIR/logs/tracking matching the filters, oldest first, the first --result-size of them (1000 by
// default, as Exchange). The files are read where the command runs: by starlingd's management
// thread, or by the shell with --offline.
#include <algorithm>
#include <cctype>
#include <string>

#include "core/names.hpp"
#include "logs/tracking_log.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"

namespace starling::mgmt {
namespace {

constexpr std::string_view kEventIds =
    "RECEIVE, SUBMIT, RESOLVE, EXPAND, SEND, DELIVER, DEFER, FAIL, DSN, POISONMESSAGE, RESUBMIT or BADMAIL";

// parse_time names --since in its errors; here the option is another.
Result<int64_t> time_option(const Request& req, std::string_view option, const Context& ctx) {
  auto t = parse_time(*arg(req, option), ctx.now);
  if (t) return *t * 1'000'000;
  std::string why = t.error();
  if (why.starts_with("--since")) why.replace(0, 7, "--" + std::string(option));
  return make_error(why);
}

Result<std::optional<size_t>> result_size(const Request& req) {
  auto text = arg(req, "resultsize");
  if (!text) return std::optional<size_t>(1000);
  if (core::iequals(*text, "unlimited")) return std::optional<size_t>();
  auto n = parse_integer("--result-size", *text);
  if (!n || *n < 1 || static_cast<uint64_t>(*n) > logs::kMaxUnlimitedResults) {
    return make_error("--result-size: a number from 1 to " + std::to_string(logs::kMaxUnlimitedResults) +
                      ", or unlimited");
  }
  return std::optional<size_t>(static_cast<size_t>(*n));
}

// Check: every filter parses, before any file is read.
Result<logs::TrackingQuery> query_of(const Context& ctx, const Request& req) {
  logs::TrackingQuery q;
  if (auto id = arg(req, "eventid")) {
    q.event_id = *id;
    std::transform(q.event_id.begin(), q.event_id.end(), q.event_id.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (!logs::is_tracking_event_id(q.event_id)) {
      return make_error("--event-id: '" + *id + "' is not an event id (" + std::string(kEventIds) + ")");
    }
  }
  for (const char* option : {"start", "end"}) {
    if (!has_arg(req, option)) continue;
    auto t = time_option(req, option, ctx);
    if (!t) return std::move(t).take_error();
    (std::string_view(option) == "start" ? q.start_us : q.end_us) = *t;
  }
  if (q.start_us && q.end_us && *q.start_us >= *q.end_us) {
    return make_error("--end must be later than --start (the end is not included)");
  }
  auto size = result_size(req);
  if (!size) return std::move(size).take_error();
  q.result_size = *size;
  q.sender = arg(req, "sender").value_or("");
  q.message_id = arg(req, "messageid").value_or("");
  q.internal_message_id = arg(req, "internalmessageid").value_or("");
  if (has_arg(req, "recipients")) q.recipients = as_list(req.args["recipients"]);
  return q;
}

void add_warnings(const logs::TrackingQuery& q, const logs::TrackingResult& found, Reply& r) {
  if (found.more) {
    r.warnings.push_back("only the first " + std::to_string(*q.result_size) +
                         " entries are shown; more match. Use --result-size N or unlimited, or narrow "
                         "the search with --start and --end");
  }
  if (found.capped) {
    r.warnings.push_back("the result stops at " + std::to_string(found.events.size()) +
                         " entries (the most one reply carries); narrow the search with --start and --end");
  }
  if (found.skipped_lines > 0) {
    r.warnings.push_back(std::to_string(found.skipped_lines) +
                         " line(s) of the tracking log are not entries and were skipped");
  }
}

}  // namespace

Reply get_message_tracking_log(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"sender", "recipients", "messageid", "internalmessageid", "eventid",
                                  "start", "end", "resultsize"});
      !o) {
    return failure(kExitUsage, o.error());
  }
  auto query = query_of(ctx, req);
  if (!query) return failure(kExitUsage, query.error());
  if (ctx.data_dir.empty()) return failure(kExitFailed, "the message tracking log is not available here");
  logs::flush_tracker();  // what has just happened is in the files too
  auto found = logs::search_tracking_log(ctx.data_dir / "logs" / "tracking", *query);
  if (!found) return failure(kExitFailed, found.error());
  Reply r;
  r.default_properties = {"Timestamp", "EventId", "Source", "Sender", "Recipients", "MessageSubject"};
  for (const logs::TrackingEvent& e : found->events) r.objects.push_back(logs::tracking_entry_json(e));
  add_warnings(*query, *found, r);
  return r;
}

}  // namespace starling::mgmt

// get-/set-transport-server: the transport server's delivery settings (retries, expiry, delay
// notices, outbound connection limits, external DNS servers, the reports' postmaster), shown and
// changed by their Exchange names. The identity is the server name; there is one per store.
#include <nlohmann/json.hpp>

#include "core/names.hpp"
#include "core/transport_settings.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/connectors.hpp"
#include "store/store.hpp"

namespace starling::mgmt {
namespace {

const std::vector<std::string> kDefaultColumns{"Identity", "TransientFailureRetryInterval", "MessageRetryInterval",
                                               "MessageExpirationTimeout", "MaxOutboundConnections"};

// "mx" or "mx\anything" name this server; anything else is another server, which this store
// does not hold.
Result<void> check_identity(const Context& ctx, const Request& req) {
  auto id = arg(req, "identity");
  if (!id) return {};
  std::string name = id->substr(0, id->find('\\'));
  if (!core::iequals(name, ctx.settings.server_name)) {
    return make_error("no transport server named '" + name + "' (this server is '" + ctx.settings.server_name + "')");
  }
  return {};
}

Json present(const Context& ctx, const core::TransportSettings& s) {
  Json out;
  out["Identity"] = ctx.settings.server_name;
  Json props = Json(s);
  for (const auto& [k, v] : props.items()) out[k] = v;
  return out;
}

std::string display(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x.get<std::string>();
    return "{" + out + "}";
  }
  return v.dump();
}

Reply from_error(Error e) { return failure(kExitFailed, std::move(e.message)); }

}  // namespace

Reply get_transport_server(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  if (auto i = check_identity(ctx, req); !i) return failure(kExitFailed, i.error());
  auto s = ctx.store.transport_settings();
  if (!s) return from_error(std::move(s).take_error());
  Reply r;
  r.default_properties = kDefaultColumns;
  r.objects.push_back(present(ctx, *s));
  return r;
}

Reply set_transport_server(Context& ctx, const Request& req) {
  if (auto i = check_identity(ctx, req); !i) return failure(kExitFailed, i.error());
  if (req.args.size() <= (has_arg(req, "identity") ? 1u : 0u)) {
    return failure(kExitUsage, "set-transport-server: nothing to change (set-transport-server --message-retry-interval 00:05:00 ...)");
  }
  auto current = ctx.store.transport_settings();
  if (!current) return from_error(std::move(current).take_error());
  // Check: every option converts and the result is valid, before anything is written.
  Json props = Json(*current);
  if (auto a = apply_options(props, req.args, {"identity"}); !a) return failure(kExitUsage, a.error());
  core::TransportSettings s = *current;
  if (auto p = read_properties(props, s); !p) return failure(kExitUsage, p.error());
  if (auto v = core::validate(s); !v) return failure(kExitFailed, v.error());
  Json before = Json(*current), after = Json(s);
  std::string changed;
  for (const auto& [k, v] : after.items()) {
    if (before[k] != v) changed += (changed.empty() ? "" : ", ") + k + "=" + display(v);
  }
  Reply r;
  if (changed.empty()) {  // the same values again: nothing to write, record or apply
    r.messages.push_back("Transport server '" + ctx.settings.server_name + "': nothing changed.");
    return r;
  }
  // Proceed.
  if (auto w = ctx.store.set_transport_settings(s); !w) return from_error(std::move(w).take_error());
  r.messages.push_back("Transport server '" + ctx.settings.server_name + "' changed: " + changed + ".");
  r.change = "set transport server " + ctx.settings.server_name + ": " + changed;
  return r;
}

}  // namespace starling::mgmt

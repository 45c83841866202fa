#include "core/connector.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace starling::core {
namespace {

constexpr std::pair<uint32_t, const char*> kAuthNames[] = {
    {kAuthTls, "Tls"},
    {kAuthBasic, "BasicAuth"},
    {kAuthBasicRequireTls, "BasicAuthRequireTLS"},
    {kAuthExternalAuthoritative, "ExternalAuthoritative"},
};

}  // namespace

std::string format_auth_mechanism(uint32_t flags) {
  std::string out;
  for (auto [flag, name] : kAuthNames) {
    if (!(flags & flag)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "None" : out;
}

Result<uint32_t> parse_auth_mechanism(std::string_view text) {
  uint32_t flags = 0;
  bool none = false;
  for (std::string_view item : split_list(text)) {
    if (iequals(item, "None")) {
      none = true;
      continue;
    }
    auto it = std::find_if(std::begin(kAuthNames), std::end(kAuthNames),
                           [&](const auto& n) { return iequals(item, n.second); });
    if (it == std::end(kAuthNames)) {
      return make_error("AuthMechanism: unknown value '" + std::string(item) +
                        "' (None, Tls, BasicAuth, BasicAuthRequireTLS, ExternalAuthoritative)");
    }
    flags |= it->first;
  }
  if (none && flags != 0) return make_error("AuthMechanism: None stands alone");
  return flags;
}

std::string format_binding(const Binding& b) {
  if (b.address.find(':') != std::string::npos) {
    return "[" + b.address + "]:" + std::to_string(b.port);
  }
  return b.address + ":" + std::to_string(b.port);
}

}  // namespace starling::core

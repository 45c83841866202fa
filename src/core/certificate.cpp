#include "core/certificate.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace starling::core {
namespace {

constexpr std::pair<Service, const char*> kServiceNames[] = {
    {Service::kImap, "IMAP"}, {Service::kPop, "POP"}, {Service::kUm, "UM"},
    {Service::kIis, "IIS"},   {Service::kSmtp, "SMTP"},
};

}  // namespace

std::optional<Services> parse_services(std::string_view text) {
  Services out = 0;
  bool none = false;
  for (std::string_view item : split_list(text)) {
    if (iequals(item, "None")) {
      none = true;
      continue;
    }
    auto it = std::find_if(std::begin(kServiceNames), std::end(kServiceNames),
                           [&](const auto& n) { return iequals(item, n.second); });
    if (it == std::end(kServiceNames)) return std::nullopt;
    out |= static_cast<Services>(it->first);
  }
  if (none && out != 0) return std::nullopt;
  return out;
}

std::string format_services(Services s) {
  std::string out;
  for (auto [flag, name] : kServiceNames) {
    if (!has_service(s, flag)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "None" : out;
}

}  // namespace starling::core

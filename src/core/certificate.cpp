#include "core/certificate.hpp"

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
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (iequals(item, "None")) {
      none = true;
    } else {
      bool found = false;
      for (auto [flag, name] : kServiceNames) {
        if (iequals(item, name)) {
          out |= static_cast<Services>(flag);
          found = true;
        }
      }
      if (!found) return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
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

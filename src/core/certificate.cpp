#include "core/certificate.hpp"

namespace starling::core {

std::string format_services(Services s) {
  static constexpr std::pair<Service, const char*> kNames[] = {
      {Service::kImap, "IMAP"}, {Service::kPop, "POP"}, {Service::kUm, "UM"},
      {Service::kIis, "IIS"},   {Service::kSmtp, "SMTP"},
  };
  std::string out;
  for (auto [flag, name] : kNames) {
    if (!has_service(s, flag)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "None" : out;
}

}  // namespace starling::core

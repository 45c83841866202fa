#include "smtp/received.hpp"

#include <array>

namespace starling::smtp {

std::string format_rfc5322_date(std::time_t when) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string format_received(const Message& m, std::string_view fqdn, std::string_view queue_id,
                            std::time_t when, bool name_user) {
  std::string h = "Received: from ";
  h += m.helo;
  h += " ([";
  h += m.peer_ip;
  h += "])\r\n\tby ";
  h += fqdn;
  h += " (Starling) with ";
  h += m.protocol;
  if (m.tls) {
    h += " (" + m.tls->version + " cipher " + m.tls->cipher + ")";
  }
  if (name_user && !m.authenticated_user.empty()) {
    h += " (authenticated as " + m.authenticated_user + ")";
  }
  h += " id ";
  h += queue_id;
  if (m.recipients.size() == 1) {
    h += "\r\n\tfor <" + m.recipients.front().str() + ">";
  }
  h += "; ";
  h += format_rfc5322_date(when);
  h += "\r\n";
  return h;
}

}  // namespace starling::smtp

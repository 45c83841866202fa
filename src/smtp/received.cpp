#include "smtp/received.hpp"

#include <array>

namespace starling::smtp {
namespace {

// The last line of defence against header injection: whatever the parsers let through, no
// field can end the header or start a new one. Controls (CR, LF, NUL, ESC...) and DEL become '?'.
void append_field(std::string& h, std::string_view field) {
  size_t start = h.size();
  h += field;
  for (size_t i = start; i < h.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(h[i]);
    if (u < 0x20 || u == 0x7f) h[i] = '?';
  }
}

}  // namespace

std::string format_rfc5322_date(std::time_t when) {
  // Every message received in the same second carries the same date: formatted once per second
  // and I/O thread (gmtime_r takes glibc's time zone lock, snprintf is slow).
  thread_local std::time_t last = -1;
  thread_local std::string last_text;
  if (when == last) return last_text;
  std::tm tm{};
  gmtime_r(&when, &tm);
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  last = when;
  last_text = buf;
  return last_text;
}

std::string format_received(const Message& m, std::string_view fqdn, std::string_view queue_id,
                            std::time_t when, bool name_user) {
  std::string h;
  h.reserve(256);
  h += "Received: from ";
  append_field(h, m.helo);
  h += " ([";
  append_field(h, m.peer_ip);
  h += "])\r\n\tby ";
  append_field(h, fqdn);
  h += " (Starling) with ";
  append_field(h, m.protocol);
  if (m.tls) {
    h += " (";
    append_field(h, m.tls->version);
    h += " cipher ";
    append_field(h, m.tls->cipher);
    h += ")";
  }
  if (name_user && !m.authenticated_user.empty()) {
    h += " (authenticated as ";
    append_field(h, m.authenticated_user);
    h += ")";
  }
  h += " id ";
  append_field(h, queue_id);
  if (m.recipients.size() == 1) {
    h += "\r\n\tfor <";
    append_field(h, m.recipients.front().str());
    h += ">";
  }
  h += "; ";
  h += format_rfc5322_date(when);
  h += "\r\n";
  return h;
}

}  // namespace starling::smtp

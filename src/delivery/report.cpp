#include "delivery/report.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>

#include "core/names.hpp"
#include "smtp/command.hpp"

namespace starling::delivery {
namespace {

// RFC 5322 §2.1.1: lines SHOULD stay within 78 characters and MUST within 998. Generated text
// is wrapped at kWrap; a value that cannot be wrapped (one long word) is capped at kMaxValue so
// that even unwrapped it fits a 998-octet line with its field name.
constexpr size_t kWrap = 76;
constexpr size_t kMaxValue = 900;
// RFC 2047 §2: an encoded-word is at most 75 characters; 45 octets give 60 base64 characters,
// plus "=?utf-8?B?" and "?=" makes 72.
constexpr size_t kEncodedWordOctets = 45;

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// The length of the valid UTF-8 sequence at s[i] (RFC 3629 §4: no overlongs, no surrogates),
// with its code point; 0 when the bytes there are not one.
size_t utf8_sequence(std::string_view s, size_t i, char32_t& cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  char32_t min;
  if (c < 0x80) { cp = c; return 1; }
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_utf8(std::string_view s) {
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// One line of 7-bit printable text: line breaks and tabs become spaces, runs of white space
// collapse, other control characters and every non-ASCII octet become '?', and the result is
// capped at kMaxValue (ending in "..."). Used for everything taken from outside (replies,
// addresses, names) so that none can add a header line (CRLF injection) or an 8-bit octet.
std::string clean_line(std::string_view s, size_t cap = kMaxValue) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (c < 0x20 || c >= 0x7F) {
      out += '?';
    } else {
      out += static_cast<char>(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > cap) {
    out.resize(cap - 3);
    out += "...";
  }
  return out;
}

// Header-style folding (RFC 5322 §2.2.3): "Name: value" broken before white space so lines stay
// near kWrap; a word longer than that stays whole (clean_line capped it below 998).
std::string fold_field(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ": ";
  size_t line_len = out.size();
  size_t pos = 0;
  bool first = true;
  while (pos < value.size()) {
    size_t space = value.find(' ', pos);
    std::string_view word = value.substr(pos, space == std::string_view::npos ? value.npos : space - pos);
    pos = space == std::string_view::npos ? value.size() : space + 1;
    if (word.empty()) continue;
    if (!first && line_len + 1 + word.size() > kWrap) {
      out += "\r\n ";
      line_len = 1;
    } else if (!first) {
      out += ' ';
      ++line_len;
    }
    out += word;
    line_len += word.size();
    first = false;
  }
  out += "\r\n";
  return out;
}

// Plain-text paragraph wrapping for the human-readable part, each line prefixed by `indent`.
std::string wrap(std::string_view text, std::string_view indent = "",
                 std::string_view continuation = {}) {
  if (continuation.empty()) continuation = indent;
  std::string out(indent);
  size_t line_len = indent.size();
  bool line_empty = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    std::string_view word = text.substr(pos, space == std::string_view::npos ? text.npos : space - pos);
    pos = space == std::string_view::npos ? text.size() : space + 1;
    if (word.empty()) continue;
    if (!line_empty && line_len + 1 + word.size() > kWrap) {
      out += "\r\n";
      out += continuation;
      line_len = continuation.size();
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++line_len;
    }
    out += word;
    line_len += word.size();
    line_empty = false;
  }
  out += "\r\n";
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// The Subject: field. An original subject in raw UTF-8 (RFC 6532) is carried as RFC 2047
// encoded-words so that the report's header stays 7-bit; words are split on character
// boundaries and folded, since white space between encoded-words is not part of the text.
std::string subject_field(std::string_view prefix, std::string_view subject) {
  if (is_ascii(subject) || !is_utf8(subject)) {
    return fold_field("Subject", std::string(prefix) + " " + clean_line(subject));
  }
  std::string clean;  // controls out, UTF-8 kept
  for (unsigned char c : subject) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    if (c < 0x20 || c == 0x7F) c = '?';
    clean += static_cast<char>(c);
  }
  if (clean.size() > kMaxValue) clean.resize(kMaxValue);
  std::string out = "Subject: " + std::string(prefix);
  char32_t cp;
  for (size_t i = 0; i < clean.size();) {
    size_t end = i;
    while (end < clean.size()) {
      size_t n = utf8_sequence(clean, end, cp);
      if (n == 0 || end + n - i > kEncodedWordOctets) break;
      end += n;
    }
    if (end == i) break;  // the cap cut a sequence in half: drop its remains
    out += "\r\n =?utf-8?B?" + base64(std::string_view(clean).substr(i, end - i)) + "?=";
    i = end;
  }
  out += "\r\n";
  return out;
}

// RFC 5322 §3.3 date-time in UTC: "Tue, 01 Dec 2026 16:05:00 +0000".
std::string rfc5322_date(int64_t unix_time) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  sys_seconds t{seconds{unix_time}};
  sys_days day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02lld:%02lld:%02lld +0000",
                kDays[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<long long>(hms.hours().count()),
                static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

// Letters and digits only: for the Message-ID's left part and the boundary.
std::string token(std::string_view s, size_t cap) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() == cap) break;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) out += static_cast<char>(c);
  }
  return out;
}

// The original's header section: up to (not including) the first empty line.
std::string_view header_section(std::string_view msg) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string_view::npos) return msg;
    std::string_view line = msg.substr(pos, nl - pos);
    if (line.empty() || line == "\r") return msg.substr(0, pos);
    pos = nl + 1;
  }
  return msg;
}

// The first Subject: field of the original, unfolded (RFC 5322 §2.2.3) and trimmed; nullopt
// when there is none.
std::optional<std::string> original_subject(std::string_view headers) {
  std::optional<std::string> subject;
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t nl = headers.find('\n', pos);
    std::string_view line = headers.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? headers.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    if (subject) {
      if (!continuation) break;
      *subject += line;  // unfolding removes only the CRLF; the white space stays
      continue;
    }
    if (continuation) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (core::iequals(name, "Subject")) subject = std::string(line.substr(colon + 1));
  }
  if (!subject) return std::nullopt;
  size_t b = subject->find_first_not_of(" \t");
  size_t e = subject->find_last_not_of(" \t");
  if (b == std::string::npos) return std::string();
  return subject->substr(b, e - b + 1);
}

// CRLF line ends throughout: a bare LF or bare CR in the original becomes CRLF, so the report
// never carries the bare line ends that SMTP smuggling relies on.
std::string crlf_lines(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32);
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

// RFC 6533 §3 utf-8-addr-xtext: an address with non-ASCII characters written in 7 bits, each
// such character (and '+', '=', '\\') as \x{HEX}. Invalid UTF-8 octets show as \x{FFFD}.
std::string utf8_addr_xtext(std::string_view s) {
  std::string out;
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {
      cp = 0xFFFD;
      n = 1;
    }
    i += n;
    if (cp > 0x20 && cp < 0x7F && cp != '+' && cp != '=' && cp != '\\') {
      out += static_cast<char>(cp);
    } else {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(cp));
      out += buf;
    }
  }
  return clean_line(out);
}

// "rfc822; al@fabrikam.com", or "utf-8; ..." for an internationalized address (RFC 6533 §3).
std::string address_field_value(std::string_view address) {
  if (is_ascii(address)) return "rfc822; " + clean_line(address);
  return "utf-8; " + utf8_addr_xtext(address);
}

// An address as a reader sees it in the text part: ASCII as is, otherwise in the RFC 6533 form.
std::string readable_address(std::string_view address) {
  return is_ascii(address) ? clean_line(address) : utf8_addr_xtext(address);
}

// A diagnostic that starts like an SMTP reply ("550 ...", "421-...") is diagnostic-type "smtp"
// (RFC 3464 §2.3.6); what this server says on its own ("no route to fabrikam.com") is not a
// reply from anyone and goes under the extension type "X-Starling".
bool looks_like_smtp_reply(std::string_view d) {
  return d.size() >= 3 && d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' &&
         d[2] >= '0' && d[2] <= '9' && (d.size() == 3 || d[3] == ' ' || d[3] == '-');
}

// What a status means and what to do about it, in plain words (RFC 3463 codes).
std::string_view explain_status(std::string_view status, bool delay) {
  if (delay) {
    return "The mail system could not deliver the message yet and keeps trying. You do not need "
           "to send it again.";
  }
  if (status == "5.1.10") {
    return "The recipient's domain publishes a null MX record (RFC 7505): it accepts no email at "
           "all. Reach the recipient another way.";
  }
  if (status == "5.4.4") {
    return "This server has no route to the recipient's domain. Its administrator must add or "
           "enable a send connector whose address space covers that domain.";
  }
  if (status == "5.4.6") {
    return "The message went round in a loop (its MX records or forwarding point back here). The "
           "administrator of the recipient's domain should check its MX records and forwarding.";
  }
  if (status == "4.4.7" || status == "5.4.7") {
    return "The message expired: the destination could not be reached in the time allowed. Try "
           "again later; if it keeps happening, the recipient's administrator should check "
           "their mail server.";
  }
  if (status == "5.6.7") {
    return "The message needs SMTPUTF8 (non-ASCII addresses or headers) and the destination does "
           "not support it. Use an ASCII address for the recipient.";
  }
  if (status == "5.3.4" || status == "5.2.3") {
    return "The message is larger than the destination accepts. Send a smaller message, for "
           "example a link instead of a large attachment.";
  }
  if (status.starts_with("5.1.")) {
    return "The address was refused. Check it for typing errors and send the message again, or "
           "ask the recipient for a current address.";
  }
  if (status.starts_with("5.2.")) {
    return "The recipient's mailbox cannot take the message (full or disabled). Try again "
           "later or reach the recipient another way.";
  }
  if (status.starts_with("5.7.")) {
    return "The destination refused the message by policy (permissions, authentication or spam "
           "filtering). The administrator of the recipient's domain can say why.";
  }
  return "The destination refused the message. If the reply above does not say why, forward "
         "this report to your email administrator.";
}

// What each kind of report says: its Action (RFC 3464 §2.3.3), Subject prefix, Message-ID
// prefix, and the heading of its recipient list.
struct KindWords {
  const char* action;
  const char* subject;
  const char* id;
  const char* list;
};

KindWords words_of(ReportInput::Kind kind) {
  switch (kind) {
    case ReportInput::Kind::kDelay: return {"delayed", "Delivery delayed:", "delay.", "Delayed recipients:"};
    case ReportInput::Kind::kDelivered: return {"delivered", "Delivered:", "delivered.", "Delivered to:"};
    case ReportInput::Kind::kRelayed: return {"relayed", "Relayed:", "relayed.", "Relayed to:"};
    case ReportInput::Kind::kFailure: break;
  }
  return {"failed", "Undeliverable:", "ndr.", "Failed recipients:"};
}

std::string opening(const ReportInput& in, bool headers_only) {
  switch (in.kind) {
    case ReportInput::Kind::kDelay:
      return "Delivery of your message to the recipients below has been delayed. The mail "
             "system is still trying to deliver it and will keep trying; you do not need to "
             "send it again. You will get another report if delivery finally fails.";
    case ReportInput::Kind::kDelivered:
      return "Your message was delivered to the mailboxes of the recipients below, as you asked "
             "to be told (a delivery notification). Its header is attached.";
    case ReportInput::Kind::kRelayed:
      return "Your message was passed on to the recipients below, to a mail system that does not "
             "send delivery notifications: this is the last report you will get about them. "
             "Its header is attached.";
    case ReportInput::Kind::kFailure: break;
  }
  std::string returned = !headers_only   ? "It is attached to this report."
                         : in.headers_only ? "Its header is attached to this report (as the sending "
                                             "system asked: RET=HDRS)."
                                           : "Its header is attached to this report (the message was "
                                             "too large to return whole).";
  return "Your message could not be delivered to the recipients below. " + returned;
}

std::string text_part(const ReportInput& in, std::string_view subject, bool headers_only) {
  const bool delay = in.kind == ReportInput::Kind::kDelay;
  const bool success = in.kind == ReportInput::Kind::kDelivered || in.kind == ReportInput::Kind::kRelayed;
  std::string t = wrap("This is the mail system at " + clean_line(in.reporting_mta) + ".");
  t += "\r\n";
  t += wrap(opening(in, headers_only));
  t += "\r\n";
  t += wrap("Subject: " + clean_line(subject), "  ", "      ");
  t += wrap("Received here: " + rfc5322_date(in.arrival), "  ");
  t += "\r\n";
  t += std::string(words_of(in.kind).list) + "\r\n";
  for (const ReportRecipient& r : in.recipients) {
    t += "\r\n";
    t += wrap(readable_address(r.address), "  ");
    t += wrap("Status: " + clean_line(r.status), "    ", "      ");
    if (!r.remote_mta.empty()) {
      t += wrap("Remote host: " + clean_line(r.remote_mta), "    ", "      ");
    }
    if (!r.diagnostic.empty()) {
      t += wrap((r.remote_mta.empty() ? (success ? "Result: " : "Reason: ") : delay ? "Its last reply: " : "Its reply: ") +
                    clean_line(r.diagnostic),
                "    ", "      ");
    }
    if (!success) t += wrap("What to do: " + std::string(explain_status(r.status, delay)), "    ", "      ");
  }
  t += "\r\n";
  t += wrap("For the administrator: the technical details are in the delivery status part of "
            "this report (RFC 3464). Queue id of the message on " + clean_line(in.reporting_mta) +
            ": " + clean_line(in.queue_id) + ".");
  return t;
}

// RFC 3464 §2.2.1, §2.3.1: ENVID and ORCPT are shown decoded from xtext; whatever they decode
// to is cleaned like any other outside text (an encoded CR LF must not start a field).
std::string decoded_xtext(std::string_view xtext) {
  return smtp::valid_xtext(xtext) ? clean_line(smtp::xtext_decode(xtext)) : clean_line(xtext);
}

// "rfc822;bob@example.com" -> "rfc822; bob@example.com".
std::string original_recipient(std::string_view orcpt) {
  size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return {};
  return clean_line(orcpt.substr(0, semi)) + "; " + decoded_xtext(orcpt.substr(semi + 1));
}

std::string status_part(const ReportInput& in) {
  // RFC 3464 §2.2: per-message fields, then one block per recipient, blank lines between.
  std::string s;
  if (!in.envid.empty()) s += fold_field("Original-Envelope-Id", decoded_xtext(in.envid));
  s += fold_field("Reporting-MTA", "dns; " + clean_line(in.reporting_mta));
  // The queue id is not the sender's ENVID (RFC 3461), so it is not an Original-Envelope-Id;
  // it goes in an extension field (RFC 3464 §2.4) for the administrator to look the message up.
  if (!in.queue_id.empty()) s += fold_field("X-Starling-Queue-Id", clean_line(in.queue_id));
  s += fold_field("Arrival-Date", rfc5322_date(in.arrival));
  for (const ReportRecipient& r : in.recipients) {
    s += "\r\n";
    if (std::string orcpt = original_recipient(r.orcpt); !orcpt.empty()) {
      s += fold_field("Original-Recipient", orcpt);
    }
    s += fold_field("Final-Recipient", address_field_value(r.address));
    s += fold_field("Action", words_of(in.kind).action);
    s += fold_field("Status", clean_line(r.status));
    if (!r.remote_mta.empty()) s += fold_field("Remote-MTA", "dns; " + clean_line(r.remote_mta));
    if (!r.diagnostic.empty()) {
      std::string d = clean_line(r.diagnostic);
      s += fold_field("Diagnostic-Code", (looks_like_smtp_reply(d) ? "smtp; " : "X-Starling; ") + d);
    }
  }
  return s;
}

}  // namespace

Report make_report(const ReportInput& in) {
  const KindWords words = words_of(in.kind);
  const std::string mta = clean_line(in.reporting_mta, 255);
  const bool headers_only = in.kind != ReportInput::Kind::kFailure || in.headers_only ||
                            in.original.size() > in.max_full_original;
  std::string_view original_headers = header_section(in.original);
  std::string subject = original_subject(original_headers).value_or("");
  if (subject.empty()) subject = "(no subject)";

  std::string part1 = text_part(in, subject, headers_only);
  std::string part2 = status_part(in);
  std::string part3 = crlf_lines(headers_only ? original_headers : std::string_view(in.original));
  // message/rfc822 and text/rfc822-headers may carry 8-bit octets (RFC 2046 §5.2.1, RFC 6532);
  // say so, so that the sender knows the report needs 8BITMIME.
  const char* part3_cte = is_ascii(part3) ? "7bit" : "8bit";

  // RFC 2046 §5.1.1: the boundary must not occur in any part. "=_" cannot appear in quoted-
  // printable or base64 text; the queue id makes a clash with the original unlikely, and the
  // loop makes it impossible.
  const std::string qid = token(in.queue_id, 40);
  std::string boundary;
  // At most 11 + 24 + 1 + 20 + 1 + 10 = 67 characters: RFC 2046 §5.1.1 allows 70.
  const std::string base = "=_starling_" + qid.substr(0, 24) + "_" + std::to_string(in.now);
  for (int n = 0;; ++n) {
    boundary = n == 0 ? base : base + "_" + std::to_string(n);
    if (part1.find(boundary) == std::string::npos && part2.find(boundary) == std::string::npos &&
        part3.find(boundary) == std::string::npos) {
      break;
    }
  }
  Report report;
  report.mail_from = "";
  report.recipients = {in.return_path};
  report.message_id = "<" + std::string(words.id) + std::to_string(in.now) + "." +
                      (qid.empty() ? std::string("report") : qid) + "@" +
                      (mta.empty() ? std::string("localhost") : mta) + ">";

  std::string postmaster = clean_line(in.postmaster, 255);
  if (postmaster.empty()) postmaster = "postmaster@" + mta;

  std::string& d = report.data;
  d += fold_field("Date", rfc5322_date(in.now));
  d += fold_field("From", "Mail Delivery System <" + postmaster + ">");
  // The return path may be an internationalized address (RFC 6531); it stays as given (controls
  // removed), since a report to it is sent with SMTPUTF8 anyway.
  std::string to;
  for (unsigned char c : in.return_path) {
    if (c >= 0x20 && c != 0x7F) to += static_cast<char>(c);
  }
  d += "To: <" + to + ">\r\n";
  d += subject_field(words.subject, subject);
  d += "Message-ID: " + report.message_id + "\r\n";
  d += "Auto-Submitted: auto-replied\r\n";  // RFC 3834 §5: no auto-reply to this
  d += "MIME-Version: 1.0\r\n";
  d += "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"" + boundary +
       "\"\r\n";
  d += "\r\n";
  d += "This is a MIME-formatted delivery status notification (RFC 3464).\r\n";
  d += "\r\n--" + boundary + "\r\n";
  d += "Content-Type: text/plain; charset=us-ascii\r\n";
  d += "Content-Transfer-Encoding: 7bit\r\n";
  d += "Content-Description: Notification\r\n\r\n";
  d += part1;
  d += "\r\n--" + boundary + "\r\n";
  d += "Content-Type: message/delivery-status\r\n";
  d += "Content-Description: Delivery report\r\n\r\n";
  d += part2;
  d += "\r\n--" + boundary + "\r\n";
  d += headers_only ? "Content-Type: text/rfc822-headers\r\n" : "Content-Type: message/rfc822\r\n";
  d += std::string("Content-Transfer-Encoding: ") + part3_cte + "\r\n";
  const bool failed = in.kind == ReportInput::Kind::kFailure;
  d += headers_only ? (failed ? "Content-Description: Undelivered message headers\r\n\r\n"
                              : "Content-Description: Message headers\r\n\r\n")
                    : "Content-Description: Undelivered message\r\n\r\n";
  d += part3;
  d += "\r\n--" + boundary + "--\r\n";
  return report;
}

}  // namespace starling::delivery

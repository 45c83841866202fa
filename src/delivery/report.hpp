// Delivery status notifications (RFC 3464, RFC 3462 multipart/report, RFC 3463 status codes):
// the non-delivery report for recipients that failed permanently or expired, the delay notice,
// and the success reports a sender asks for with NOTIFY=SUCCESS (RFC 3461): delivered here, or
// relayed to a next hop that does not offer DSN. Pure: the caller passes the time and the original message; the report is a complete
// message (CRLF lines) to be queued with the null reverse path, so it never causes a report of
// its own (no bounce of a bounce).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace starling::delivery {

struct ReportRecipient {
  std::string address;      // the original recipient, "local@domain"
  std::string status;       // RFC 3463 code: "5.1.1", "4.4.7", "5.1.10", ...
  std::string remote_mta;   // the host that answered, "mx.example.net"; empty when none did
  std::string diagnostic;   // the reply as given, "550 5.1.1 User unknown"; or what happened here
  std::string orcpt;        // RFC 3461 ORCPT as received ("rfc822;bob+2Bx@example.com"), or ""
};

struct ReportInput {
  // Action: failed, delayed, delivered (here: Maildir or LMTP), relayed (to a next hop without
  // DSN, which will not report).
  enum class Kind { kFailure, kDelay, kDelivered, kRelayed };
  Kind kind = Kind::kFailure;
  std::string reporting_mta;   // this server's FQDN
  std::string postmaster;      // From: ExternalPostmasterAddress
  std::string return_path;     // the original reverse path: the report's only recipient
  std::string queue_id;        // the original message's queue id (X-Starling-Queue-Id / Original-Envelope-Id)
  int64_t arrival = 0;         // Unix time the original message was accepted
  int64_t now = 0;             // Unix time the report is made (Date:, Message-ID)
  std::vector<ReportRecipient> recipients;
  std::string original;        // the original message, CRLF lines
  size_t max_full_original = 256 * 1024;  // larger originals are returned as headers only
  // RFC 3461: RET=HDRS asks for the headers only. Reports other than failures return only the
  // headers whatever RET says (§4.3).
  bool headers_only = false;
  std::string envid;           // ENVID as received (xtext), shown as Original-Envelope-Id; or ""
};

struct Report {
  std::string mail_from;                // always "" (null reverse path)
  std::vector<std::string> recipients;  // {return_path}
  std::string message_id;               // "<...@reporting_mta>", also in the data
  std::string data;                     // the whole report message, CRLF lines
};

// REQUIRES: !input.return_path.empty() (mail from <> is never reported on; the caller checks).
Report make_report(const ReportInput& input);

}  // namespace starling::delivery

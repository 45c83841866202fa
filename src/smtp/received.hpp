// The Received: trace header Starling prepends to every message (RFC 5321 §4.4, RFC 5322
// §3.6.7), and the RFC 5322 date it carries.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "smtp/session.hpp"

namespace starling::smtp {

// "Wed, 25 Nov 2026 17:36:26 +0000"
std::string format_rfc5322_date(std::time_t when);

// "Received: from HELO ([IP])\r\n\tby FQDN (Starling) with ESMTPS (TLSv1.3 cipher) id ID\r\n
//  \tfor <rcpt>; DATE\r\n" — "for" only with a single recipient, so a Bcc is not revealed.
// An authenticated session says ESMTPA/ESMTPSA (RFC 3848); the user is named ("(authenticated
// as alice@example.test)") only with `name_user`, since it tells every recipient a login name.
std::string format_received(const Message& m, std::string_view fqdn, std::string_view queue_id,
                            std::time_t when, bool name_user = false);

}  // namespace starling::smtp

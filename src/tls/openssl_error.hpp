// OpenSSL error-queue discipline: every call site clears the queue before and drains
// it into the message after, so one failure never leaks into the next report.
#pragma once

#include <string>
#include <string_view>

namespace starling::tls {

void clear_openssl_errors();
// "what: <reasons from the OpenSSL error queue>", and the queue is left empty.
std::string openssl_error(std::string_view what);

}  // namespace starling::tls

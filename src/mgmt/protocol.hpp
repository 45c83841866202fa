// The control protocol: one JSON request line from the shell, one JSON reply line from
// starlingd, over DIR/control.sock. The daemon takes the caller's identity from the socket
// (SO_PEERCRED), never from the request.
#pragma once

#include <string>

#include "mgmt/request.hpp"

namespace starling::mgmt {

std::string encode_request(const Request& r);
Result<Request> decode_request(const std::string& line);
std::string encode_reply(const Reply& r);
Result<Reply> decode_reply(const std::string& line);

}  // namespace starling::mgmt

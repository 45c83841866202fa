// Fuzz target: the control protocol (src/mgmt/protocol.hpp), one JSON request line as any local
// user may write it to DIR/control.sock, and one reply line as the shell reads it back.
//
// Checked besides memory and undefined behaviour: nothing throws (an exception escaping the
// decoder would end the management thread); a request that decodes has options that are
// strings or lists of strings, and encodes to a line that decodes to the same request.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "mgmt/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling;
  using fuzz::check;
  std::string line(reinterpret_cast<const char*>(data), size);
  auto request = mgmt::decode_request(line);
  if (request) {
    for (const auto& [name, value] : request->args.items()) {
      bool strings = value.is_string() || (value.is_array() && std::all_of(value.begin(), value.end(),
                                                                          [](const auto& v) { return v.is_string(); }));
      check(strings, "a request option that is no string or list of strings", name);
    }
    std::string encoded = mgmt::encode_request(*request);
    check(encoded.ends_with("\n") && encoded.find('\n') == encoded.size() - 1, "an encoded request that is not one line", encoded);
    auto again = mgmt::decode_request(encoded);
    check(again.ok(), "an encoded request that does not decode", encoded);
    check(again->command == request->command && again->args == request->args && again->yes == request->yes &&
              again->force == request->force && again->interactive == request->interactive,
          "a request changed by encoding and decoding", encoded);
  }
  auto reply = mgmt::decode_reply(line);
  if (reply) {
    std::string encoded = mgmt::encode_reply(*reply);
    check(mgmt::decode_reply(encoded).ok(), "an encoded reply that does not decode", encoded);
  }
  return 0;
}

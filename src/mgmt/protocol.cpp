#include "mgmt/protocol.hpp"

#include <algorithm>

namespace starling::mgmt {

std::string encode_request(const Request& r) {
  Json j{{"command", r.command}, {"args", r.args}, {"yes", r.yes}, {"force", r.force},
         {"interactive", r.interactive}};
  return j.dump() + "\n";
}

Result<Request> decode_request(const std::string& line) {
  Json j = Json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("command") || !j["command"].is_string() ||
      !j.value("args", Json::object()).is_object()) {
    return make_error("malformed request");
  }
  Request r;
  r.command = j["command"].get<std::string>();
  r.args = j.value("args", Json::object());
  for (const auto& [k, v] : r.args.items()) {
    bool ok = v.is_string() || (v.is_array() && std::all_of(v.begin(), v.end(), [](const Json& x) { return x.is_string(); }));
    if (!ok) return make_error("malformed request: option " + k);
  }
  // The switches are booleans or absent; anything else is refused, never thrown.
  for (const char* key : {"yes", "force", "interactive"}) {
    if (j.contains(key) && !j[key].is_boolean()) return make_error(std::string("malformed request: ") + key);
  }
  r.yes = j.value("yes", false);
  r.force = j.value("force", false);
  r.interactive = j.value("interactive", false);
  return r;
}

std::string encode_reply(const Reply& r) {
  Json j{{"exit_code", r.exit_code},
         {"objects", r.objects},
         {"default_properties", r.default_properties},
         {"messages", r.messages},
         {"warnings", r.warnings},
         {"error", r.error},
         {"confirm", r.confirm},
         {"confirm_optional", r.confirm_optional},
         {"file_base64", r.file_base64}};
  return j.dump() + "\n";
}

Result<Reply> decode_reply(const std::string& line) {
  Json j = Json::parse(line, nullptr, false);
  if (!j.is_object()) return make_error("malformed reply from starlingd");
  try {
    Reply r;
    r.exit_code = j.at("exit_code").get<int>();
    r.objects = j.at("objects");
    r.default_properties = j.at("default_properties").get<std::vector<std::string>>();
    r.messages = j.at("messages").get<std::vector<std::string>>();
    r.warnings = j.at("warnings").get<std::vector<std::string>>();
    r.error = j.at("error").get<std::string>();
    r.confirm = j.at("confirm").get<std::string>();
    r.confirm_optional = j.at("confirm_optional").get<bool>();
    r.file_base64 = j.at("file_base64").get<std::string>();
    return r;
  } catch (const std::exception& e) {
    return make_error(std::string("malformed reply from starlingd: ") + e.what());
  }
}

}  // namespace starling::mgmt

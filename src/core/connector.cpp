#include "core/connector.hpp"

namespace starling::core {

std::string format_binding(const Binding& b) {
  if (b.address.find(':') != std::string::npos) {
    return "[" + b.address + "]:" + std::to_string(b.port);
  }
  return b.address + ":" + std::to_string(b.port);
}

}  // namespace starling::core

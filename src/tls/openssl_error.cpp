#include "tls/openssl_error.hpp"

#include <openssl/err.h>

namespace starling::tls {

void clear_openssl_errors() { ERR_clear_error(); }

std::string openssl_error(std::string_view what) {
  std::string out(what);
  bool first = true;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

}  // namespace starling::tls

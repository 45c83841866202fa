#include "mgmt/password.hpp"

#include <sodium.h>

#include <mutex>

namespace starling::mgmt {
namespace {

bool sodium_ready() {
  // sodium_init is itself thread-safe; call_once keeps its cost off every verification.
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = sodium_init() >= 0; });
  return ok;
}

}  // namespace

Result<std::string> hash_password(std::string_view password) {
  if (!sodium_ready()) return make_error("password hashing unavailable: libsodium failed to initialize");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return make_error("password hashing failed (out of memory)");
  }
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES || !sodium_ready()) return false;
  char h[crypto_pwhash_STRBYTES] = {};  // crypto_pwhash_str_verify wants a NUL-terminated string
  hash.copy(h, hash.size());
  return crypto_pwhash_str_verify(h, password.data(), password.size()) == 0;
}

}  // namespace starling::mgmt

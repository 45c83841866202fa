// Fuzz target: certificate import (src/tls/certificate_files.hpp), the bytes an administrator
// gives import-certificate: PEM, DER, PKCS#7 or PKCS#12, detected from the bytes. Each input is
// read without a password and with the password "fuzz" (the seeds' PKCS#12 files and encrypted
// keys use it), and every certificate of a bundle read is then described as the store would
// (src/tls/certificate_io.hpp).
//
// Checked besides memory, undefined behaviour and time (libFuzzer's -timeout: an iteration
// count or a key size that ties a thread up is a finding): a bundle read has at least one
// certificate and each of its certificates can be described; a key read matches the first.
#include <openssl/err.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_support.hpp"
#include "tls/certificate_files.hpp"
#include "tls/certificate_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling;
  using fuzz::check;
  // OpenSSL's error queue is per thread and outlives a call: start each input with it empty.
  ERR_clear_error();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const std::optional<std::string>& password : {std::optional<std::string>{}, std::optional<std::string>{"fuzz"}}) {
    auto bundle = tls::read_certificate_file(bytes, password);
    fuzz::show(password ? "with a password" : "without a password",
               bundle ? std::to_string(bundle->certificates_pem.size()) + " certificates" +
                            (bundle->key_pem.empty() ? "" : " and a key")
                      : bundle.error());
    if (!bundle) {
      check(!bundle.error().empty(), "a certificate file refused without a reason");
      continue;
    }
    check(!bundle->certificates_pem.empty(), "a certificate bundle without certificates");
    for (size_t i = 0; i < bundle->certificates_pem.size(); ++i) {
      const std::string& key = i == 0 ? bundle->key_pem : std::string();
      auto described = tls::describe_certificate(bundle->certificates_pem[i], key);
      check(described.ok(), "an imported certificate that cannot be described",
            described ? "" : described.error());
      if (!key.empty()) check(described->has_private_key, "the key read does not match the first certificate");
    }
  }
  ERR_clear_error();
  return 0;
}

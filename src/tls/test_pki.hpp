// Test fixtures only: a small PKI built in memory with plain OpenSSL calls, so the tls tests
// never read files or depend on the code they test to make their inputs.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace starling::tls::testing {

struct TestIdentity {
  std::string key_pem;          // PKCS#8
  std::string certificate_pem;
};

struct IssueOptions {
  std::string common_name;
  std::string organization;                  // O=, before the CN; empty: none
  std::vector<std::string> dns_names;        // SAN
  bool rsa = false;                          // RSA 2048, else ECDSA P-256
  std::chrono::hours valid_from{-1};         // relative to now
  std::chrono::hours valid_until{24 * 365};  // relative to now
  bool ca = false;
  std::string extended_key_usage = "serverAuth";  // empty: no EKU extension
  unsigned long serial = 0;                       // 0: a fixed default per call
  std::string request_pem;  // a CA answering this PKCS#10 request: its key, no key_pem out
};

// `issuer` null: self-signed.
TestIdentity issue(const IssueOptions& options, const TestIdentity* issuer);

struct TestPki {
  TestIdentity root;          // self-signed CA:TRUE, ECDSA
  TestIdentity intermediate;  // CA:TRUE, issued by root
  TestIdentity leaf;          // mail.contoso.test, RSA 2048, serverAuth, issued by root
  TestIdentity expired;       // issued by root, expired yesterday
  TestIdentity client_only;   // issued by root, EKU clientAuth only
  TestIdentity chained_leaf;  // relay.contoso.test, issued by intermediate
};
inline constexpr unsigned long kLeafSerial = 0x1A2B3C4D5EUL;

// Built once per test process.
const TestPki& test_pki();

// PKCS#7 SignedData holding only `certificates_pem`, as DER or PEM.
std::string make_pkcs7_der(const std::vector<std::string>& certificates_pem);
std::string make_pkcs7_pem(const std::vector<std::string>& certificates_pem);
// The DER form of a PEM certificate.
std::string certificate_der(const std::string& certificate_pem);

}  // namespace starling::tls::testing

#include "tls/certificate_files.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include <algorithm>
#include <cstring>

#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {
namespace {

struct Contents {
  std::vector<X509Ptr> certificates;
  PKeyPtr key;
};

// Feeds `password` to OpenSSL's PEM decryption; without one, decryption fails instead of
// prompting on the terminal.
int password_callback(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* password = static_cast<const std::optional<std::string>*>(u);
  if (!password->has_value()) return -1;
  int n = static_cast<int>(std::min<size_t>(static_cast<size_t>(size), (*password)->size()));
  std::memcpy(buf, (*password)->data(), static_cast<size_t>(n));
  return n;
}

Result<void> add_pkcs7(Contents& out, const PKCS7* p7) {
  if (!PKCS7_type_is_signed(p7) || !p7->d.sign) {
    return make_error("the PKCS#7 file is not a certificate bundle (SignedData)");
  }
  STACK_OF(X509)* certs = p7->d.sign->cert;
  for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
    X509* c = sk_X509_value(certs, i);
    X509_up_ref(c);
    out.certificates.emplace_back(c);
  }
  return {};
}

Result<void> add_pem_key(Contents& out, const char* name, const char* header,
                         const unsigned char* data, long len,
                         const std::optional<std::string>& password) {
  if (out.key) return make_error("the file holds more than one private key");
  bool encrypted = std::strcmp(name, PEM_STRING_PKCS8) == 0 || std::strstr(header, "ENCRYPTED");
  if (encrypted && !password) {
    return make_error("the private key is encrypted: a password is needed");
  }
  // Re-armoured so OpenSSL handles every key encoding and encryption the same way.
  BioPtr bio = memory_bio();
  if (PEM_write_bio(bio.get(), name, header, data, len) <= 0) {
    return make_error(openssl_error("cannot read the private key"));
  }
  auto* u = const_cast<std::optional<std::string>*>(&password);
  out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, password_callback, u));
  if (!out.key) {
    return make_error(openssl_error(encrypted ? "cannot decrypt the private key (wrong password?)"
                                              : "the private key is corrupt"));
  }
  return {};
}

Result<Contents> read_pem(const std::string& bytes, const std::optional<std::string>& password) {
  Contents out;
  std::string skipped;  // block types read but not used, for the error message
  BioPtr bio = memory_bio(bytes);
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) break;  // end of input
      return make_error(openssl_error("corrupt PEM block"));
    }
    OpenSslBuffer<char> name_owner(name), header_owner(header);
    OpenSslBuffer<unsigned char> data_owner(data);
    std::string type = name;
    const unsigned char* p = data;
    Result<void> added;
    if (type == PEM_STRING_X509 || type == PEM_STRING_X509_OLD || type == PEM_STRING_X509_TRUSTED) {
      X509Ptr cert(type == PEM_STRING_X509_TRUSTED ? d2i_X509_AUX(nullptr, &p, len)
                                                   : d2i_X509(nullptr, &p, len));
      if (!cert) return make_error(openssl_error("corrupt certificate in the PEM file"));
      out.certificates.push_back(std::move(cert));
    } else if (type == PEM_STRING_PKCS7 || type == PEM_STRING_PKCS7_SIGNED) {
      Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, len));
      if (!p7) return make_error(openssl_error("corrupt PKCS#7 block in the PEM file"));
      added = add_pkcs7(out, p7.get());
    } else if (type == PEM_STRING_PKCS8INF || type == PEM_STRING_PKCS8 ||
               type == PEM_STRING_RSA || type == PEM_STRING_ECPRIVATEKEY) {
      added = add_pem_key(out, name, header, data, len, password);
    } else if (type != PEM_STRING_ECPARAMETERS) {
      skipped += (skipped.empty() ? "" : ", ") + type;
    }
    if (!added) return std::move(added).take_error();
  }
  clear_openssl_errors();  // the end-of-input "no start line"
  if (out.certificates.empty() && !skipped.empty()) {
    return make_error("no certificate in the file, only: " + skipped);
  }
  return out;
}

// Windows before Server 2019 and `openssl pkcs12 -legacy` encrypt the certificates with RC2-40,
// which OpenSSL 3 keeps in its legacy provider: loaded once, on the first file that needs it.
bool load_legacy_provider() {
  static OSSL_PROVIDER* legacy = OSSL_PROVIDER_try_load(nullptr, "legacy", 1);
  return legacy != nullptr;
}

Result<Contents> read_pkcs12(PKCS12* p12, const std::optional<std::string>& password) {
  // PKCS12_parse treats "" as "no password", trying both encodings of it (absent and empty).
  std::string pass = password.value_or("");
  if (PKCS12_mac_present(p12)) {
    bool ok = pass.empty()
                  ? PKCS12_verify_mac(p12, nullptr, 0) == 1 || PKCS12_verify_mac(p12, "", 0) == 1
                  : PKCS12_verify_mac(p12, pass.c_str(), static_cast<int>(pass.size())) == 1;
    if (!ok && ERR_peek_error() != 0) {
      return make_error(openssl_error("cannot check the PKCS#12 file's integrity"));
    }
    if (!ok && !password) return make_error("the PKCS#12 file is protected: a password is needed");
    if (!ok) return make_error("wrong password for the PKCS#12 file");
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* ca = nullptr;
  bool parsed = PKCS12_parse(p12, pass.c_str(), &key, &cert, &ca) == 1;
  if (!parsed && load_legacy_provider()) {
    clear_openssl_errors();
    parsed = PKCS12_parse(p12, pass.c_str(), &key, &cert, &ca) == 1;
  }
  if (!parsed) return make_error(openssl_error("cannot read the PKCS#12 file"));
  Contents out;
  out.key.reset(key);
  if (cert) out.certificates.emplace_back(cert);
  X509StackPtr others(ca);
  while (others && sk_X509_num(others.get()) > 0) {
    out.certificates.emplace_back(sk_X509_shift(others.get()));
  }
  return out;
}

Result<Contents> read_der(const std::string& bytes, const std::optional<std::string>& password) {
  const auto* begin = reinterpret_cast<const unsigned char*>(bytes.data());
  long len = static_cast<long>(bytes.size());
  const unsigned char* p = begin;
  if (X509Ptr cert{d2i_X509(nullptr, &p, len)}) {
    Contents out;
    out.certificates.push_back(std::move(cert));
    return out;
  }
  p = begin;
  if (Pkcs7Ptr p7{d2i_PKCS7(nullptr, &p, len)}) {
    clear_openssl_errors();
    Contents out;
    if (auto added = add_pkcs7(out, p7.get()); !added) return std::move(added).take_error();
    return out;
  }
  p = begin;
  if (Pkcs12Ptr p12{d2i_PKCS12(nullptr, &p, len)}) {
    clear_openssl_errors();
    return read_pkcs12(p12.get(), password);
  }
  clear_openssl_errors();  // each format's parse failure, none of them the one that matters
  return make_error("not a certificate file: expected PEM, DER, PKCS#7 or PKCS#12");
}

bool issued(X509* issuer, X509* subject) { return X509_check_issued(issuer, subject) == X509_V_OK; }

// Leaf first, then its issuers, then the rest in file order (see CertificateBundle).
Result<CertificateBundle> to_bundle(Contents in) {
  std::vector<X509Ptr> certs;
  for (auto& c : in.certificates) {
    if (std::none_of(certs.begin(), certs.end(),
                     [&](const X509Ptr& x) { return X509_cmp(x.get(), c.get()) == 0; })) {
      certs.push_back(std::move(c));
    }
  }
  if (certs.empty()) return make_error("no certificate in the file");
  size_t n = certs.size();
  size_t leaf = n;
  if (in.key) {
    for (size_t i = 0; i < n && leaf == n; ++i) {
      if (X509_check_private_key(certs[i].get(), in.key.get()) == 1) leaf = i;
    }
    clear_openssl_errors();  // the mismatches before the match
    if (leaf == n) return make_error("the private key does not match the certificate");
  } else {
    std::vector<size_t> issued_nothing;
    for (size_t i = 0; i < n; ++i) {
      bool issuer = false;
      for (size_t j = 0; j < n && !issuer; ++j) {
        issuer = j != i && issued(certs[i].get(), certs[j].get());
      }
      if (!issuer) issued_nothing.push_back(i);
    }
    if (issued_nothing.size() == 1) leaf = issued_nothing.front();
  }

  std::vector<bool> used(n, false);
  CertificateBundle out;
  auto take = [&](size_t i) {
    used[i] = true;
    out.certificates_pem.push_back(certificate_to_pem(certs[i].get()));
  };
  if (leaf != n) {
    take(leaf);
    for (size_t current = leaf; !issued(certs[current].get(), certs[current].get());) {
      size_t next = n;
      for (size_t j = 0; j < n && next == n; ++j) {
        if (!used[j] && issued(certs[j].get(), certs[current].get())) next = j;
      }
      if (next == n) break;
      take(next);
      current = next;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!used[i]) take(i);
  }
  if (in.key) out.key_pem = private_key_to_pem(in.key.get());
  if ((in.key && out.key_pem.empty()) ||
      std::any_of(out.certificates_pem.begin(), out.certificates_pem.end(),
                  [](const std::string& s) { return s.empty(); })) {
    return make_error(openssl_error("cannot encode the certificates as PEM"));
  }
  clear_openssl_errors();
  return out;
}

}  // namespace

Result<CertificateBundle> read_certificate_file(const std::string& bytes,
                                                const std::optional<std::string>& password) {
  if (bytes.empty()) return make_error("the file is empty");
  clear_openssl_errors();
  bool pem = bytes.find("-----BEGIN ") != std::string::npos;
  auto contents = pem ? read_pem(bytes, password) : read_der(bytes, password);
  if (!contents) return std::move(contents).take_error();
  return to_bundle(std::move(*contents));
}

Result<std::string> make_pkcs12(const std::vector<std::string>& chain_pem,
                                const std::string& key_pem, const std::string& password,
                                const std::string& friendly_name) {
  if (chain_pem.empty()) return make_error("no certificate to export");
  std::vector<X509Ptr> chain;
  for (const auto& pem : chain_pem) {
    auto cert = parse_certificate_pem(pem, "cannot read a certificate of the chain");
    if (!cert) return std::move(cert).take_error();
    chain.push_back(std::move(*cert));
  }
  PKeyPtr key;
  if (!key_pem.empty()) {
    auto parsed = parse_private_key_pem(key_pem, "cannot read the private key");
    if (!parsed) return std::move(parsed).take_error();
    key = std::move(*parsed);
    clear_openssl_errors();
    if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
      clear_openssl_errors();
      return make_error("the private key does not match the certificate");
    }
  }
  clear_openssl_errors();
  X509StackPtr ca(sk_X509_new_null());
  for (size_t i = 1; ca && i < chain.size(); ++i) {
    if (sk_X509_push(ca.get(), chain[i].get()) == 0) {
      return make_error(openssl_error("out of memory"));
    }
    X509_up_ref(chain[i].get());
  }
  // nid_key, nid_cert, iter, mac_iter, keytype 0: OpenSSL 3's defaults (AES-256-CBC, PBKDF2).
  const char* name = friendly_name.empty() ? nullptr : friendly_name.c_str();
  Pkcs12Ptr p12(PKCS12_create(password.c_str(), name, key.get(), chain.front().get(), ca.get(), 0,
                              0, 0, 0, 0));
  if (!p12) return make_error(openssl_error("cannot create the PKCS#12 file"));
  unsigned char* der = nullptr;
  int len = i2d_PKCS12(p12.get(), &der);
  OpenSslBuffer<unsigned char> owner(der);
  if (len <= 0) return make_error(openssl_error("cannot encode the PKCS#12 file"));
  return std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len));
}

}  // namespace starling::tls

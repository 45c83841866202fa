#include "tls/certificate_files.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include <algorithm>
#include <cstring>

#include "tls/certificate_checks.hpp"
#include "tls/certificate_limits.hpp"
#include "tls/distinguished_name.hpp"
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
  if (std::strcmp(name, PEM_STRING_PKCS8) == 0) {
    // PKCS#8 EncryptedPrivateKeyInfo: its PBKDF2 count is read before the key is derived.
    const unsigned char* p = data;
    std::unique_ptr<X509_SIG, OpenSslDeleter<X509_SIG_free>> sig(d2i_X509_SIG(nullptr, &p, len));
    if (!sig) return make_error(openssl_error("the encrypted private key is corrupt"));
    const X509_ALGOR* algorithm = nullptr;
    X509_SIG_get0(sig.get(), &algorithm, nullptr);
    IterationBudget budget;
    if (auto spent = budget.spend(algorithm, "the private key"); !spent) return spent;
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

constexpr const char* kWrongPkcs12Password = "wrong password for the PKCS#12 file";

// The password PKCS12_parse would use: "" means either no password or an empty one, whichever
// the MAC verifies with (RFC 7292 leaves the encoding of an absent password to the writer).
// The MAC's iteration count is checked before the MAC is computed.
Result<const char*> pkcs12_password(PKCS12* p12, const std::string& pass, IterationBudget& budget) {
  if (!PKCS12_mac_present(p12)) return pass.empty() ? nullptr : pass.c_str();
  const ASN1_INTEGER* iterations = nullptr;
  PKCS12_get0_mac(nullptr, nullptr, nullptr, &iterations, p12);
  int64_t count = 1;
  if (iterations && ASN1_INTEGER_get_int64(&count, iterations) != 1) count = INT64_MAX;
  if (auto spent = budget.spend(count, "the PKCS#12 file's integrity check (MAC)"); !spent) {
    return std::move(spent).take_error();
  }
  if (pass.empty()) {
    if (PKCS12_verify_mac(p12, nullptr, 0) == 1) return nullptr;
    if (PKCS12_verify_mac(p12, "", 0) == 1) return "";
  } else if (PKCS12_verify_mac(p12, pass.c_str(), static_cast<int>(pass.size())) == 1) {
    return pass.c_str();
  }
  if (ERR_peek_error() != 0) return make_error(openssl_error("cannot check the PKCS#12 file's integrity"));
  return make_error(kWrongPkcs12Password);
}

struct BagsFree {
  void operator()(STACK_OF(PKCS12_SAFEBAG)* s) const { sk_PKCS12_SAFEBAG_pop_free(s, PKCS12_SAFEBAG_free); }
};
struct AuthSafesFree {
  void operator()(STACK_OF(PKCS7)* s) const { sk_PKCS7_pop_free(s, PKCS7_free); }
};
using BagsPtr = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), BagsFree>;

// The file's parts, decrypted one by one after their iteration counts are spent from the
// budget: what PKCS12_parse does, with the counts checked before each key derivation.
class Pkcs12Reader {
 public:
  Pkcs12Reader(const char* pass, IterationBudget& budget)
      : pass_(pass), len_(pass ? static_cast<int>(std::strlen(pass)) : 0), budget_(budget) {}

  Result<Contents> read(PKCS12* p12) {
    std::unique_ptr<STACK_OF(PKCS7), AuthSafesFree> parts(PKCS12_unpack_authsafes(p12));
    if (!parts) return make_error(openssl_error("cannot read the PKCS#12 file"));
    for (int i = 0; i < sk_PKCS7_num(parts.get()); ++i) {
      auto bags = unpack(sk_PKCS7_value(parts.get(), i));
      if (!bags) return std::move(bags).take_error();
      if (auto added = add_bags(bags->get(), 0); !added) return std::move(added).take_error();
    }
    return std::move(out_);
  }

 private:
  Result<BagsPtr> unpack(PKCS7* part) {
    if (PKCS7_type_is_data(part)) return BagsPtr(PKCS12_unpack_p7data(part));
    if (!PKCS7_type_is_encrypted(part)) return BagsPtr(sk_PKCS12_SAFEBAG_new_null());  // ignored
    if (!part->d.encrypted || !part->d.encrypted->enc_data || !part->d.encrypted->enc_data->algorithm) {
      return make_error("the PKCS#12 file has an encrypted part without its parameters");
    }
    const X509_ALGOR* algorithm = part->d.encrypted->enc_data->algorithm;
    if (auto spent = budget_.spend(algorithm, "a part of the PKCS#12 file"); !spent) {
      return std::move(spent).take_error();
    }
    BagsPtr bags(PKCS12_unpack_p7encdata(part, pass_, len_));
    if (!bags && load_legacy_provider()) {
      clear_openssl_errors();
      bags.reset(PKCS12_unpack_p7encdata(part, pass_, len_));
    }
    if (!bags) return make_error(openssl_error("cannot read the PKCS#12 file"));
    return bags;
  }

  // Nested SafeContents are followed a few levels deep; nobody writes more than one.
  Result<void> add_bags(const STACK_OF(PKCS12_SAFEBAG)* bags, int depth) {
    if (!bags) return make_error(openssl_error("cannot read the PKCS#12 file"));
    if (depth > 4) return make_error("the PKCS#12 file nests its contents too deeply");
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
      const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
      Result<void> added;
      switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_certBag: added = add_certificate(bag); break;
        case NID_keyBag: added = add_key(PKCS12_SAFEBAG_get0_p8inf(bag)); break;
        case NID_pkcs8ShroudedKeyBag: added = add_shrouded_key(bag); break;
        case NID_safeContentsBag: added = add_bags(PKCS12_SAFEBAG_get0_safes(bag), depth + 1); break;
        default: break;  // CRLs, secrets: not ours
      }
      if (!added) return added;
    }
    return {};
  }

  Result<void> add_certificate(const PKCS12_SAFEBAG* bag) {
    if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate) return {};
    X509Ptr cert(PKCS12_SAFEBAG_get1_cert(bag));
    if (!cert) return make_error(openssl_error("corrupt certificate in the PKCS#12 file"));
    out_.certificates.push_back(std::move(cert));
    return {};
  }

  // As PKCS12_parse: the first key is the one; later ones are not decrypted.
  Result<void> add_shrouded_key(const PKCS12_SAFEBAG* bag) {
    if (out_.key) return {};
    const X509_SIG* shrouded = PKCS12_SAFEBAG_get0_pkcs8(bag);
    const X509_ALGOR* algorithm = nullptr;
    if (shrouded) X509_SIG_get0(shrouded, &algorithm, nullptr);
    if (!algorithm) return make_error("the PKCS#12 file's private key has no encryption parameters");
    if (auto spent = budget_.spend(algorithm, "the PKCS#12 file's private key"); !spent) return spent;
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, OpenSslDeleter<PKCS8_PRIV_KEY_INFO_free>> p8(
        PKCS12_decrypt_skey(bag, pass_, len_));
    if (!p8 && load_legacy_provider()) {
      clear_openssl_errors();
      p8.reset(PKCS12_decrypt_skey(bag, pass_, len_));
    }
    if (!p8) return make_error(openssl_error("cannot decrypt the private key in the PKCS#12 file"));
    return add_key(p8.get());
  }

  Result<void> add_key(const PKCS8_PRIV_KEY_INFO* p8) {
    if (out_.key) return {};
    out_.key.reset(EVP_PKCS82PKEY(p8));
    if (!out_.key) return make_error(openssl_error("the private key in the PKCS#12 file is corrupt"));
    return {};
  }

  const char* pass_;
  int len_;
  IterationBudget& budget_;
  Contents out_;
};

Result<Contents> read_pkcs12(PKCS12* p12, const std::optional<std::string>& password) {
  IterationBudget budget;
  const std::string given = password.value_or("");  // outlives the reader, which points into it
  auto pass = pkcs12_password(p12, given, budget);
  if (!pass && !password && pass.error() == kWrongPkcs12Password) {
    return make_error("the PKCS#12 file is protected: a password is needed");
  }
  if (!pass) return std::move(pass).take_error();
  return Pkcs12Reader(*pass, budget).read(p12);
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

// Before to_bundle, whose work grows with the square of the number of certificates.
Result<void> check_limits(const Contents& in) {
  if (in.certificates.size() > kMaxCertificatesPerFile) {
    return make_error("the file holds " + std::to_string(in.certificates.size()) +
                      " certificates; Starling reads at most " + std::to_string(kMaxCertificatesPerFile));
  }
  for (const auto& cert : in.certificates) {
    std::string why = certificate_limit_exceeded(cert.get());
    if (!why.empty()) {
      std::string cn = common_name(X509_get_subject_name(cert.get()));
      return make_error("certificate " + (cn.empty() ? std::string("without a CN") : "'" + cn + "'") + ": " + why);
    }
  }
  if (in.key) {
    std::string why = key_limit_exceeded(in.key.get());
    if (!why.empty()) return make_error("the private key: " + why.substr(why.find(' ') + 1));
  }
  return {};
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
  if (bytes.size() > kMaxCertificateFileBytes) {
    return make_error("the file is " + std::to_string(bytes.size()) + " bytes; certificate files are at most " +
                      std::to_string(kMaxCertificateFileBytes) + " bytes (1 MB)");
  }
  clear_openssl_errors();
  bool pem = bytes.find("-----BEGIN ") != std::string::npos;
  auto contents = pem ? read_pem(bytes, password) : read_der(bytes, password);
  if (!contents) return std::move(contents).take_error();
  if (auto within = check_limits(*contents); !within) return std::move(within).take_error();
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

#include "tls/certificate_request.hpp"

#include <openssl/pem.h>

#include "tls/distinguished_name.hpp"
#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {
namespace {

struct ExtensionStackFree {
  void operator()(STACK_OF(X509_EXTENSION)* s) const {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  }
};

}  // namespace

Result<CertificateRequest> make_certificate_request(const std::string& subject,
                                                    const std::vector<std::string>& domains,
                                                    KeyType key_type, int rsa_bits) {
  clear_openssl_errors();
  X509ReqPtr req(X509_REQ_new());
  if (!req) return make_error(openssl_error("cannot create the request"));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (auto set = set_distinguished_name(name, subject); !set) return std::move(set).take_error();
  std::vector<std::string> names = certificate_domains(common_name(name), domains);
  if (names.empty()) return make_error("the request needs a CN in the subject or a domain");
  if (auto ok = check_new_key_and_names(rsa_bits, names.size()); !ok) return std::move(ok).take_error();

  PKeyPtr key = generate_key(key_type, rsa_bits);
  if (!key) return make_error(openssl_error("cannot generate a key"));
  // RFC 2986 §4.1: version 0 (v1) is the only one defined.
  if (X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return make_error(openssl_error("cannot build the request"));
  }
  // The SAN travels as an extensionRequest attribute (RFC 2985 §5.4.2); CAs copy it over.
  std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackFree> extensions(
      sk_X509_EXTENSION_new_null());
  X509_EXTENSION* san = make_subject_alt_name(names);
  if (!extensions || !san || sk_X509_EXTENSION_push(extensions.get(), san) == 0) {
    X509_EXTENSION_free(san);
    return make_error(openssl_error("cannot build the subjectAltName"));
  }
  if (X509_REQ_add_extensions(req.get(), extensions.get()) != 1) {
    return make_error(openssl_error("cannot add the subjectAltName to the request"));
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0) {
    return make_error(openssl_error("cannot sign the request"));
  }

  CertificateRequest out;
  out.key_pem = private_key_to_pem(key.get());
  BioPtr bio = memory_bio();
  if (out.key_pem.empty() || !bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return make_error(openssl_error("cannot encode the request"));
  }
  out.request_pem = bio_string(bio.get());
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  OpenSslBuffer<unsigned char> owner(der);
  if (len <= 0) return make_error(openssl_error("cannot encode the request"));
  out.request_der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  return out;
}

Result<std::string> public_key_id(const std::string& pem) {
  clear_openssl_errors();
  BioPtr bio = memory_bio(pem);
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
    return make_error(openssl_error("not a PEM certificate, request or key"));
  }
  OpenSslBuffer<char> name_owner(name), header_owner(header);
  OpenSslBuffer<unsigned char> data_owner(data);
  std::string type = name;
  const unsigned char* p = data;
  PKeyPtr key;
  if (type == PEM_STRING_X509 || type == PEM_STRING_X509_OLD) {
    X509Ptr cert(d2i_X509(nullptr, &p, len));
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  } else if (type == PEM_STRING_X509_REQ || type == PEM_STRING_X509_REQ_OLD) {
    X509ReqPtr req(d2i_X509_REQ(nullptr, &p, len));
    if (req) key.reset(X509_REQ_get_pubkey(req.get()));
  } else if (type == PEM_STRING_PUBLIC) {
    key.reset(d2i_PUBKEY(nullptr, &p, len));
  } else if (type == PEM_STRING_PKCS8INF || type == PEM_STRING_RSA ||
             type == PEM_STRING_ECPRIVATEKEY) {
    auto parsed = parse_private_key_pem(pem);  // handles every private key encoding
    if (!parsed) return std::move(parsed).take_error();
    key = std::move(*parsed);
  } else {
    return make_error("not a certificate, request or key: " + type);
  }
  if (!key) return make_error(openssl_error("cannot read the public key of the " + type));
  unsigned char* spki = nullptr;
  int spki_len = i2d_PUBKEY(key.get(), &spki);
  OpenSslBuffer<unsigned char> spki_owner(spki);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (spki_len <= 0 ||
      EVP_Digest(spki, static_cast<size_t>(spki_len), md, &md_len, EVP_sha256(), nullptr) != 1) {
    return make_error(openssl_error("cannot hash the public key"));
  }
  return hex_upper(md, md_len);
}

}  // namespace starling::tls

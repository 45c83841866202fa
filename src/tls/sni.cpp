#include "tls/sni.hpp"

#include "core/names.hpp"

namespace starling::tls {
namespace {

struct Attachment {
  const SniTable* table;
  ContextCache* cache;
  std::string own_name;
};

int attachment_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, [](void*, void* p, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<Attachment*>(p);
  });
  return index;
}

int on_servername(SSL* ssl, int*, void*) {
  const char* host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto* a = static_cast<Attachment*>(SSL_get_ex_data(ssl, attachment_index()));
  if (!host || !a || !a->table) return SSL_TLSEXT_ERR_OK;  // the connector's certificate
  if (core::iequals(core::normalize_name(host), a->own_name)) return SSL_TLSEXT_ERR_OK;
  const SniCertificate* cert = a->table->find(host);
  if (!cert) return SSL_TLSEXT_ERR_OK;
  auto ctx = cert->served.empty() ? a->cache->get(cert->thumbprint, cert->chain_pem, cert->key_pem)
                                  : a->cache->get(cert->served);
  if (ctx && (*ctx)->native_handle() != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, (*ctx)->native_handle());
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void SniTable::add(std::string_view name, std::shared_ptr<const SniCertificate> cert) {
  std::string n = core::normalize_name(name);
  if (core::is_wildcard(n)) {
    wildcard_.try_emplace(n.substr(2), std::move(cert));
  } else {
    exact_.try_emplace(std::move(n), std::move(cert));
  }
}

const SniCertificate* SniTable::find(std::string_view host) const {
  std::string h = core::normalize_name(host);
  if (auto it = exact_.find(h); it != exact_.end()) return it->second.get();
  size_t dot = h.find('.');
  if (dot == std::string::npos || dot == 0) return nullptr;
  if (auto it = wildcard_.find(h.substr(dot + 1)); it != wildcard_.end()) return it->second.get();
  return nullptr;
}

void install_sni_callback(SSL_CTX* ctx) {
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
}

void attach_sni(SSL* ssl, const SniTable* table, ContextCache* cache, std::string own_name) {
  SSL_set_ex_data(ssl, attachment_index(), new Attachment{table, cache, core::normalize_name(own_name)});
}

}  // namespace starling::tls

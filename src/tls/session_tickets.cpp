#include "tls/session_tickets.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace starling::tls {
namespace {

std::optional<TicketKey> make_key() {
  TicketKey k;
  if (RAND_priv_bytes(k.name.data(), k.name.size()) != 1 ||
      RAND_priv_bytes(k.cipher_key.data(), k.cipher_key.size()) != 1 ||
      RAND_priv_bytes(k.mac_key.data(), k.mac_key.size()) != 1) {
    return std::nullopt;
  }
  return k;
}

bool same_name(const TicketKey& k, const unsigned char* name) {
  return std::memcmp(k.name.data(), name, k.name.size()) == 0;
}

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Fetched once for the process: a fetch by name per ticket would take OpenSSL's name-map locks on
// every handshake. Kept until exit on purpose (freed after OpenSSL's own cleanup it would crash).
const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

bool init_ticket_crypto(const TicketKey& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* mac, bool encrypt) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(mac, key.mac_key.data(), key.mac_key.size(), params) != 1) return false;
  return encrypt ? EVP_EncryptInit_ex2(cipher, ticket_cipher(), key.cipher_key.data(), iv, nullptr) == 1
                 : EVP_DecryptInit_ex2(cipher, ticket_cipher(), key.cipher_key.data(), iv, nullptr) == 1;
}

// OpenSSL's ticket callback: 1 sealed or opened, 2 opened under the previous key (OpenSSL then
// issues a new ticket), 0 no ticket now / unknown key (a full handshake), -1 an internal error.
int on_ticket(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
              int encrypt) {
  auto* ring = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (!ring || !ticket_cipher()) return 0;
  const auto now = TicketKeyRing::Clock::now();
  const int iv_size = EVP_CIPHER_get_iv_length(ticket_cipher());
  if (encrypt) {
    auto key = ring->current(now);
    if (!key || RAND_bytes(iv, iv_size) != 1) return 0;
    std::copy(key->name.begin(), key->name.end(), name);
    return init_ticket_crypto(*key, iv, cipher, mac, true) ? 1 : -1;
  }
  auto found = ring->find(name, now);
  if (!found) return 0;
  if (!init_ticket_crypto(found->key, iv, cipher, mac, false)) return -1;
  return found->age == TicketKeyRing::Age::kPrevious ? 2 : 1;
}

}  // namespace

TicketKeyRing::TicketKeyRing(Clock::time_point now, Clock::duration rotation)
    : rotation_(rotation), rotated_at_(now), current_(make_key()) {}

void TicketKeyRing::rotate(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  replace_keys(now);
}

void TicketKeyRing::replace_keys(Clock::time_point now) {
  auto fresh = make_key();
  if (!fresh) return;  // the old keys stay; the next ticket tries again
  // A key that was current for longer than a period is too old to keep as the previous one.
  bool stale = now - rotated_at_ >= 2 * rotation_;
  previous_ = stale ? std::nullopt : current_;
  current_ = fresh;
  rotated_at_ = now;
}

void TicketKeyRing::rotate_if_due(Clock::time_point now) {
  if (now - rotated_at_ >= rotation_ || !current_) replace_keys(now);
}

std::optional<TicketKey> TicketKeyRing::current(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  rotate_if_due(now);
  return current_;
}

std::optional<TicketKeyRing::Found> TicketKeyRing::find(const unsigned char* name, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  rotate_if_due(now);
  if (current_ && same_name(*current_, name)) return Found{*current_, Age::kCurrent};
  if (previous_ && same_name(*previous_, name)) return Found{*previous_, Age::kPrevious};
  return std::nullopt;
}

TicketKeyRing& process_ticket_keys() {
  static TicketKeyRing ring;
  return ring;
}

bool use_ticket_keys(SSL_CTX* ctx, TicketKeyRing& ring) {
  return SSL_CTX_set_ex_data(ctx, ring_index(), &ring) == 1 &&
         SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) == 1;
}

}  // namespace starling::tls

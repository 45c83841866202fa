// Session ticket keys (TLS 1.3 tickets, RFC 8446 §4.6.1; TLS 1.2 tickets, RFC 5077): one key ring
// for the whole process, shared by every server SSL_CTX (connectors, SNI contexts) and every I/O
// thread, so a returning client resumes whichever context or thread serves it. Keys are random,
// made at start with RAND_priv_bytes and never written anywhere (a restart invalidates every
// ticket), and rotate every 12 hours: new tickets use the newest key, tickets under the previous
// key still decrypt and are renewed, anything else gets a full handshake. Thread-safe.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <mutex>
#include <optional>

namespace starling::tls {

struct TicketKey {
  static constexpr size_t kNameSize = 16;  // OpenSSL's ticket key name: the ticket's first bytes
  using Name = std::array<unsigned char, kNameSize>;
  Name name{};
  std::array<unsigned char, 32> cipher_key{};  // AES-256-CBC, as OpenSSL's own tickets
  std::array<unsigned char, 32> mac_key{};     // HMAC-SHA256
};

class TicketKeyRing {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::hours kRotation{12};

  // Makes the first key. Should the random generator fail, the ring has no key and issues no
  // tickets (every handshake is a full one) until a later rotation succeeds.
  explicit TicketKeyRing(Clock::time_point now = Clock::now(), Clock::duration rotation = kRotation);

  enum class Age { kCurrent, kPrevious };
  struct Found {
    TicketKey key;
    Age age;
  };
  // The key for new tickets, rotating first when one is due. Empty: issue no ticket.
  std::optional<TicketKey> current(Clock::time_point now);
  // The key a ticket names. kPrevious: decrypt it and issue a fresh one. Empty: unknown or
  // retired, so a full handshake.
  std::optional<Found> find(const unsigned char* name, Clock::time_point now);
  // Rotates now, whatever the time (tests; what a due rotation does).
  void rotate(Clock::time_point now);

 private:
  // REQUIRES: mutex_ held.
  void rotate_if_due(Clock::time_point now);
  void replace_keys(Clock::time_point now);

  std::mutex mutex_;
  Clock::duration rotation_;
  Clock::time_point rotated_at_;
  std::optional<TicketKey> current_;
  std::optional<TicketKey> previous_;
};

// The ring every server context of this process shares.
TicketKeyRing& process_ticket_keys();
// Makes `ctx` seal and open its tickets with `ring`'s keys (replacing OpenSSL's per-context
// random key). `ring` must outlive `ctx`. False if OpenSSL refused the callback.
bool use_ticket_keys(SSL_CTX* ctx, TicketKeyRing& ring);

}  // namespace starling::tls

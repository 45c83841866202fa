#include "tls/session_tickets.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <memory>

#include "tls/server_context.hpp"
#include "tls/test_pki.hpp"

namespace starling::tls {
namespace {

using Clock = TicketKeyRing::Clock;
using std::chrono::hours;

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

TEST(TicketKeyRing, KeepsItsKeyUntilTheRotationIsDue) {
  const auto t0 = Clock::time_point{} + hours(1000);
  TicketKeyRing ring(t0);
  auto first = ring.current(t0);
  ASSERT_TRUE(first);
  EXPECT_EQ(ring.current(t0 + hours(11))->name, first->name);
  auto found = ring.find(first->name.data(), t0 + hours(11));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->age, TicketKeyRing::Age::kCurrent);
  EXPECT_EQ(found->key.cipher_key, first->cipher_key);
}

TEST(TicketKeyRing, RotationKeepsThePreviousKeyForDecryptionOnly) {
  const auto t0 = Clock::time_point{} + hours(1000);
  TicketKeyRing ring(t0);
  auto first = *ring.current(t0);
  auto second = ring.current(t0 + hours(12));
  ASSERT_TRUE(second);
  EXPECT_NE(second->name, first.name);
  EXPECT_NE(second->cipher_key, first.cipher_key);
  EXPECT_NE(second->mac_key, first.mac_key);
  auto old = ring.find(first.name.data(), t0 + hours(13));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->age, TicketKeyRing::Age::kPrevious);
  EXPECT_EQ(old->key.mac_key, first.mac_key);
  // One more rotation retires the first key.
  EXPECT_FALSE(ring.find(first.name.data(), t0 + hours(24)));
  EXPECT_EQ(ring.find(second->name.data(), t0 + hours(24))->age, TicketKeyRing::Age::kPrevious);
}

TEST(TicketKeyRing, AKeyUnusedForTwoPeriodsIsNotKeptAsPrevious) {
  const auto t0 = Clock::time_point{} + hours(1000);
  TicketKeyRing ring(t0);
  auto first = *ring.current(t0);
  EXPECT_FALSE(ring.find(first.name.data(), t0 + hours(30)));
  EXPECT_NE(ring.current(t0 + hours(30))->name, first.name);
}

TEST(TicketKeyRing, UnknownNameIsNotFound) {
  TicketKeyRing ring;
  TicketKey::Name other{};
  other.fill(0x5a);
  EXPECT_FALSE(ring.find(other.data(), Clock::now()));
}

TEST(TicketKeyRing, ProcessRingIsOne) { EXPECT_EQ(&process_ticket_keys(), &process_ticket_keys()); }

// Handshakes in memory between a test client and a server context from make_server_context.
class Resumption : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& leaf = testing::test_pki().leaf;
    auto made = make_server_context(leaf.certificate_pem, leaf.key_pem);
    ASSERT_TRUE(made) << made.error();
    server_ = *made;
    ASSERT_TRUE(use_ticket_keys(server_->native_handle(), ring_));
    client_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(client_.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(client_.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(client_.get(), [](SSL*, SSL_SESSION*) {
      ++tickets_seen_;
      return 0;  // not kept: the test takes the session from the connection
    });
  }

  // One connection: true when the handshake resumed `session`. `out` gets the new session.
  bool connect(SSL_CTX* server, int max_version, SSL_SESSION* session, SessionPtr* out = nullptr) {
    SslPtr c(SSL_new(client_.get()));
    SslPtr s(SSL_new(server));
    SSL_set_max_proto_version(c.get(), max_version);
    if (session) SSL_set_session(c.get(), session);
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(c.get(), cb, cb);
    SSL_set_bio(s.get(), sb, sb);
    SSL_set_connect_state(c.get());
    SSL_set_accept_state(s.get());
    int rc = 0, rs = 0;
    for (int i = 0; i < 20 && (rc != 1 || rs != 1); ++i) {
      if (rc != 1) rc = SSL_do_handshake(c.get());
      if (rs != 1) rs = SSL_do_handshake(s.get());
    }
    EXPECT_EQ(rc, 1);
    EXPECT_EQ(rs, 1);
    char byte;
    EXPECT_LE(SSL_read(c.get(), &byte, 1), 0);  // takes in the TLS 1.3 tickets
    ERR_clear_error();
    if (out) out->reset(SSL_get1_session(c.get()));
    // An orderly close: OpenSSL makes the session of a connection freed without one unresumable.
    SSL_shutdown(c.get());
    SSL_shutdown(s.get());
    return SSL_session_reused(s.get()) == 1;
  }

  // A full handshake that leaves a ticket, then one that resumes with it.
  void expect_ticket_resumes(int version) {
    SessionPtr first;
    EXPECT_FALSE(connect(server_->native_handle(), version, nullptr, &first));
    ASSERT_TRUE(first && SSL_SESSION_has_ticket(first.get()));
    EXPECT_TRUE(connect(server_->native_handle(), version, first.get()));
  }

  TicketKeyRing ring_;
  ContextPtr server_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_{nullptr, SSL_CTX_free};
  static inline int tickets_seen_ = 0;
};

TEST_F(Resumption, Tls13TicketResumes) { expect_ticket_resumes(TLS1_3_VERSION); }

TEST_F(Resumption, OneTicketPerFullHandshake) {
  tickets_seen_ = 0;
  connect(server_->native_handle(), TLS1_3_VERSION, nullptr);
  EXPECT_EQ(tickets_seen_, 1);
}

TEST_F(Resumption, Tls12TicketResumes) { expect_ticket_resumes(TLS1_2_VERSION); }

TEST_F(Resumption, AnotherContextSharingTheRingResumes) {
  // Another connector's context, or an SNI one: the same ring opens the ticket.
  const auto& other = testing::test_pki().chained_leaf;
  auto second = make_server_context(other.certificate_pem + testing::test_pki().intermediate.certificate_pem,
                                    other.key_pem);
  ASSERT_TRUE(second) << second.error();
  ASSERT_TRUE(use_ticket_keys((*second)->native_handle(), ring_));
  SessionPtr first;
  connect(server_->native_handle(), TLS1_3_VERSION, nullptr, &first);
  EXPECT_TRUE(connect((*second)->native_handle(), TLS1_3_VERSION, first.get()));
}

TEST_F(Resumption, PreviousKeyStillResumesAndRenewsTheTicket) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SessionPtr first;
    connect(server_->native_handle(), version, nullptr, &first);
    ring_.rotate(Clock::now());
    SessionPtr renewed;
    EXPECT_TRUE(connect(server_->native_handle(), version, first.get(), &renewed)) << version;
    ASSERT_TRUE(renewed && SSL_SESSION_has_ticket(renewed.get()));
    const unsigned char* ticket = nullptr;
    size_t size = 0;
    SSL_SESSION_get0_ticket(renewed.get(), &ticket, &size);
    ASSERT_GE(size, TicketKey::kNameSize);
    auto name = ring_.current(Clock::now())->name;
    EXPECT_TRUE(std::equal(name.begin(), name.end(), ticket)) << "not renewed under the new key: " << version;
  }
}

TEST_F(Resumption, RetiredOrForeignKeyMeansAFullHandshake) {
  SessionPtr first;
  connect(server_->native_handle(), TLS1_3_VERSION, nullptr, &first);
  ring_.rotate(Clock::now());
  ring_.rotate(Clock::now());
  EXPECT_FALSE(connect(server_->native_handle(), TLS1_3_VERSION, first.get()));
  // A restarted process: a new ring, whose keys never sealed this ticket.
  connect(server_->native_handle(), TLS1_3_VERSION, nullptr, &first);
  TicketKeyRing restarted;
  ASSERT_TRUE(use_ticket_keys(server_->native_handle(), restarted));
  EXPECT_FALSE(connect(server_->native_handle(), TLS1_3_VERSION, first.get()));
}

}  // namespace
}  // namespace starling::tls

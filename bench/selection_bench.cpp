// Microbenchmarks of STARTTLS certificate selection and per-connection TLS setup, with 10 and
// with 10,000 certificates in the store (bench/README.md, "starling-selection-bench").
//
// The store: five real ECDSA P-256 key+certificate pairs (generate_self_signed; four of them are
// in the store, the fifth lends its PEMs to the synthetic records) and N-4 synthetic
// core::Certificate records with distinct thumbprints and names, mixed exact/wildcard names,
// renewals sharing names, CA-issued/self-signed, some not enabled for SMTP, some without a
// private key. The synthetic records are what the selection rule reads; they never take part in
// a handshake (except in the ConnectionSetup "all contexts cached" variant, where their contexts
// are built from the fifth pair's PEMs).
//
// Per configuration change: BM_SelectCertificate*, BM_BuildSniTable (expected to grow with N).
// Per handshake: BM_SniLookup_*, BM_ConnectionSetup, BM_Handshake* (expected flat in N).

#include <benchmark/benchmark.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/certificate.hpp"
#include "core/names.hpp"
#include "core/selection.hpp"
#include "diag/evaluation.hpp"
#include "tls/certificate_io.hpp"
#include "tls/server_context.hpp"
#include "tls/sni.hpp"

namespace {

using namespace starling;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "selection_bench: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

// The connector's FQDN (what select_certificate is asked about).
constexpr const char* kConnectorName = "mail.contoso.com";
// Named by no certificate in the store.
constexpr const char* kUncoveredName = "mail.nowhere.example.org";

// A certificate in the store, as the runtime's SNI table reads it.
using Record = diag::CertificateRecord;

Record record(core::Certificate props, std::string certificate_pem, std::string key_pem) {
  Record r;
  r.stored.thumbprint = props.thumbprint;
  r.stored.certificate_pem = std::move(certificate_pem);
  r.stored.key_pem = std::move(key_pem);
  r.props = std::move(props);
  return r;
}

Record make_real(const std::string& cn, std::vector<std::string> domains) {
  tls::SelfSignedRequest req;
  req.common_name = cn;
  req.domains = std::move(domains);
  req.key_type = tls::KeyType::kEcdsaP256;
  req.validity_days = 365;
  auto made = tls::generate_self_signed(req);
  if (!made) die("generate_self_signed(" + cn + "): " + made.error());
  auto props = tls::describe_certificate(made->certificate_pem, made->key_pem);
  if (!props) die("describe_certificate(" + cn + "): " + props.error());
  Record r = record(*props, made->certificate_pem, made->key_pem);
  r.props.services = static_cast<core::Services>(core::Service::kSmtp);  // the store's field
  r.props.chain_trusted = false;                                          // self-signed
  if (!r.props.has_private_key) die(cn + ": key does not match");
  return r;
}

// Index 0 is the connector's certificate; 1..3 are served by SNI; 4 lends its PEMs to the
// synthetic records and is not itself in the store.
const std::vector<Record>& real_certs() {
  static const std::vector<Record> certs = [] {
    std::vector<Record> v;
    v.push_back(make_real("mail.contoso.com", {"mail.contoso.com", "contoso.com"}));
    v.push_back(make_real("*.fabrikam.com", {"*.fabrikam.com"}));
    v.push_back(make_real("smtp.tailspin.example", {"smtp.tailspin.example", "mx.tailspin.example"}));
    v.push_back(make_real("mx.wingtip.example", {"mx.wingtip.example", "*.wingtip.example"}));
    v.push_back(make_real("filler.invalid", {"filler.invalid"}));
    return v;
  }();
  return certs;
}
constexpr size_t kRealInStore = 4;

// SNI host names used per handshake, and the real certificate each must be served.
struct SniCase {
  const char* host;
  size_t real_index;
};
constexpr SniCase kSniCases[] = {
    {"smtp.tailspin.example", 2},  // exact
    {"relay.fabrikam.com", 1},     // wildcard
    {"mx.wingtip.example", 3},     // exact (the certificate also has a wildcard)
    {"in.wingtip.example", 3},     // wildcard
};
constexpr size_t kSniCaseCount = sizeof kSniCases / sizeof kSniCases[0];

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string thumbprint_for(size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016llX%016llX%08X",
                static_cast<unsigned long long>(splitmix64(i)),
                static_cast<unsigned long long>(splitmix64(i ^ 0xA5A5A5A5ULL)),
                static_cast<unsigned>(i & 0xFFFFFFFFu));
  return buf;
}

// Synthetic record i (i >= kRealInStore). Pairs of records share names (a renewal and the
// certificate it replaced); the name shapes cycle through mail+apex, wildcard, mail+smtp+apex and
// wildcard+apex, so the SNI table has about one name per certificate (N names for N). The first three synthetic records also list the connector's name, but rank
// below the real one (self-signed and older), so the connector keeps real certificate 0.
core::Certificate synthetic(size_t i, core::SysTime now) {
  using std::chrono::hours;
  core::Certificate c;
  c.thumbprint = thumbprint_for(i);
  size_t g = i / 2;
  std::string tenant = "tenant" + std::to_string(g) + ".example.net";
  switch (g % 4) {
    case 0: c.domains = {"mail." + tenant, tenant}; break;
    case 1: c.domains = {"*." + tenant}; break;
    case 2: c.domains = {"mail." + tenant, "smtp." + tenant, tenant}; break;
    default: c.domains = {"*." + tenant, tenant}; break;
  }
  bool shares_connector_name = i < kRealInStore + 3;
  if (shares_connector_name) c.domains.push_back(kConnectorName);
  c.subject = "CN=" + c.domains.front();
  c.is_self_signed = shares_connector_name || i % 3 == 0;
  c.chain_trusted = !c.is_self_signed && i % 5 != 0;
  c.issuer = c.is_self_signed ? c.subject : "CN=Contoso Issuing CA " + std::to_string(i % 3) + ", O=Contoso";
  c.services = static_cast<core::Services>(core::Service::kSmtp);
  if (i % 7 == 0) c.services = static_cast<core::Services>(core::Service::kIis);  // not enabled for SMTP
  c.has_private_key = i % 11 != 0;
  c.private_key_exportable = false;
  c.not_before = now - hours(24 * (1 + static_cast<int64_t>(i % 700)));
  c.not_after = c.not_before + hours(24 * 398);
  c.serial_number = c.thumbprint.substr(0, 16);
  c.public_key_size = 256;
  c.key_algorithm = "ECDSA";
  c.signature_algorithm = "ecdsa-with-SHA256";
  c.status = c.not_after < now ? "DateInvalid" : "Valid";
  return c;
}

long rss_kib() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * 4;  // 4 KiB pages
}

// One store of N certificates, its SNI table and its context caches. Built once per N.
struct World {
  size_t n = 0;
  core::SysTime now{};
  std::vector<Record> records;             // the store
  std::vector<core::Certificate> props;    // diag::selectable(records)
  std::shared_ptr<const tls::SniTable> sni;
  std::vector<std::string> spread_hosts;   // one covered host per table name, shuffled
  tls::ContextCache cache;                 // contexts of the real certificates only
  tls::ContextPtr connector_ctx;           // real certificate 0, from `cache`
  std::unique_ptr<tls::ContextCache> full_cache;  // a context for every certificate (lazy)
  tls::ContextPtr full_connector_ctx;

  const std::string& real_thumbprint(size_t k) const { return real_certs()[k].props.thumbprint; }
};

std::unique_ptr<World> make_world(size_t n) {
  auto w = std::make_unique<World>();
  w->n = n;
  w->now = std::chrono::system_clock::now();
  const auto& real = real_certs();
  const Record& filler = real[4];
  if (n < kRealInStore) die("N must be at least 4");
  for (size_t i = kRealInStore; i < n; ++i) {
    w->records.push_back(record(synthetic(i, w->now), filler.stored.certificate_pem, filler.stored.key_pem));
  }
  for (size_t k = 0; k < kRealInStore; ++k) w->records.push_back(real[k]);  // real ones last
  for (const auto& r : w->records) w->props.push_back(r.props);

  std::vector<std::string> names;
  w->sni = diag::build_sni_table(w->records, w->now, &names);
  for (const auto& name : names) {
    std::string host = core::is_wildcard(name) ? "host" + name.substr(1) : name;
    if (!w->sni->find(host)) die("table name not found: " + host);
    w->spread_hosts.push_back(host);
  }
  std::mt19937 rng(12345);
  std::shuffle(w->spread_hosts.begin(), w->spread_hosts.end(), rng);
  // Copy so the strings' heap buffers lie in the shuffled order: reading the next host is then a
  // sequential access, and the random accesses measured are the table's.
  w->spread_hosts = std::vector<std::string>(w->spread_hosts.begin(), w->spread_hosts.end());

  for (size_t k = 0; k < kRealInStore; ++k) {
    auto ctx = w->cache.get(real[k].props.thumbprint, real[k].stored.certificate_pem, real[k].stored.key_pem);
    if (!ctx) die("make_server_context: " + ctx.error());
    if (k == 0) w->connector_ctx = *ctx;
  }
  // The table must serve the expected real certificate for each SNI host.
  for (const auto& c : kSniCases) {
    const tls::SniCertificate* found = w->sni->find(c.host);
    if (!found || found->thumbprint != w->real_thumbprint(c.real_index)) {
      die(std::string("SNI table gives the wrong certificate for ") + c.host);
    }
  }
  return w;
}

// Deliberately never destroyed: their SSL_CTXs must not be freed after OpenSSL's atexit cleanup.
World& world(size_t n) {
  static auto* worlds = new std::map<size_t, std::unique_ptr<World>>;
  auto& w = (*worlds)[n];
  if (!w) w = make_world(n);
  return *w;
}

// The cache after clients have named every certificate's host: one context per certificate.
void fill_full_cache(World& w) {
  if (w.full_cache) return;
  long before = rss_kib();
  auto start = Clock::now();
  w.full_cache = std::make_unique<tls::ContextCache>();
  for (const auto& r : w.records) {
    auto ctx = w.full_cache->get(r.props.thumbprint, r.stored.certificate_pem, r.stored.key_pem);
    if (!ctx) die("make_server_context: " + ctx.error());
    if (r.props.thumbprint == w.real_thumbprint(0)) w.full_connector_ctx = *ctx;
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "note: built %zu contexts in %.2f s (%.1f us each), RSS +%ld KiB (%.1f KiB each)\n",
               w.records.size(), secs, secs * 1e6 / static_cast<double>(w.records.size()),
               rss_kib() - before,
               static_cast<double>(rss_kib() - before) / static_cast<double>(w.records.size()));
}

void set_store_counters(benchmark::State& state, const World& w) {
  state.counters["certs"] = static_cast<double>(w.records.size());
  state.counters["sni_names"] = static_cast<double>(w.sni->size());
}

// ---- per configuration change ----------------------------------------------------------------

void BM_SelectCertificate(benchmark::State& state) {
  World& w = world(static_cast<size_t>(state.range(0)));
  core::SelectionInput in{kConnectorName, "", w.now, std::chrono::hours(24 * 30)};
  auto check = core::select_certificate(w.props, in);
  if (!check.chosen || check.chosen->thumbprint != w.real_thumbprint(0)) {
    state.SkipWithError("the connector's certificate was not chosen");
    return;
  }
  for (auto _ : state) {
    auto s = core::select_certificate(w.props, in);
    benchmark::DoNotOptimize(s);
  }
  set_store_counters(state, w);
  state.counters["ranked"] = static_cast<double>(check.ranking.size());
}

// No certificate lists the name: both passes (exact, wildcard) and the condition scan run.
void BM_SelectCertificate_NoMatch(benchmark::State& state) {
  World& w = world(static_cast<size_t>(state.range(0)));
  core::SelectionInput in{kUncoveredName, "", w.now, std::chrono::hours(24 * 30)};
  auto check = core::select_certificate(w.props, in);
  if (check.chosen || check.condition != core::NoCertificate::kNoneListsName) {
    state.SkipWithError("expected no certificate");
    return;
  }
  for (auto _ : state) {
    auto s = core::select_certificate(w.props, in);
    benchmark::DoNotOptimize(s);
  }
  set_store_counters(state, w);
}

// diag::build_sni_table over the store (run by load_runtime after every change).
void BM_BuildSniTable(benchmark::State& state) {
  World& w = world(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    auto table = diag::build_sni_table(w.records, w.now);
    benchmark::DoNotOptimize(table);
  }
  set_store_counters(state, w);
}

// ---- per handshake ---------------------------------------------------------------------------

template <typename Pick>
void sni_lookup(benchmark::State& state, Pick pick, bool expect_found) {
  World& w = world(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    const std::string& host = pick(w, i++);
    const tls::SniCertificate* found = w.sni->find(host);
    benchmark::DoNotOptimize(found);
    if ((found != nullptr) != expect_found) {
      state.SkipWithError(("unexpected lookup result for " + host).c_str());
      break;
    }
  }
  set_store_counters(state, w);
}

const std::string kExactHost = "smtp.tailspin.example";
const std::string kWildcardHost = "relay.fabrikam.com";
const std::string kUncoveredHost = kUncoveredName;

void BM_SniLookup_Exact(benchmark::State& state) {
  sni_lookup(state, [](World&, size_t) -> const std::string& { return kExactHost; }, true);
}
void BM_SniLookup_Wildcard(benchmark::State& state) {
  sni_lookup(state, [](World&, size_t) -> const std::string& { return kWildcardHost; }, true);
}
void BM_SniLookup_Uncovered(benchmark::State& state) {
  sni_lookup(state, [](World&, size_t) -> const std::string& { return kUncoveredHost; }, false);
}
// A different covered host each time, in shuffled order over every name in the table, so the
// lookups touch the whole table (its memory, not one hot bucket).
void BM_SniLookup_Spread(benchmark::State& state) {
  sni_lookup(state, [](World& w, size_t i) -> const std::string& {
    return w.spread_hosts[i % w.spread_hosts.size()];
  }, true);
}

// Server-side setup of one STARTTLS connection, without the handshake's cryptography:
// SSL_new from the connector's cached context, attach_sni (with the connector's FQDN),
// SSL_set_accept_state, then what the servername callback (sni.cpp's on_servername, file-local)
// does for a host the table covers:
// the own-name check, SniTable::find, ContextCache::get, SSL_set_SSL_CTX; then SSL_free.
// range(1): 0 = the cache holds the four real certificates' contexts; 1 = it holds a context for
// every certificate in the store (N contexts).
void BM_ConnectionSetup(benchmark::State& state) {
  World& w = world(static_cast<size_t>(state.range(0)));
  bool full = state.range(1) != 0;
  if (full) fill_full_cache(w);
  tls::ContextCache& cache = full ? *w.full_cache : w.cache;
  SSL_CTX* connector = (full ? w.full_connector_ctx : w.connector_ctx)->native_handle();
  size_t i = 0;
  for (auto _ : state) {
    const SniCase& c = kSniCases[i++ % kSniCaseCount];
    SSL* ssl = SSL_new(connector);
    tls::attach_sni(ssl, w.sni.get(), &cache, kConnectorName);
    SSL_set_accept_state(ssl);
    // on_servername (a host equal to the connector's own name keeps its certificate):
    if (!core::iequals(core::normalize_name(c.host), kConnectorName)) {
      if (const tls::SniCertificate* cert = w.sni->find(c.host)) {
        auto ctx = cache.get(cert->thumbprint, cert->chain_pem, cert->key_pem);
        if (ctx && (*ctx)->native_handle() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, (*ctx)->native_handle());
      }
    }
    benchmark::DoNotOptimize(ssl);
    SSL_free(ssl);
  }
  set_store_counters(state, w);
  state.counters["cached_contexts"] = full ? static_cast<double>(w.records.size()) : 4.0;
}

// The same without the servername callback's work (no SNI, or a host the table does not cover
// after the lookup): the difference from BM_ConnectionSetup is the SNI path.
void BM_ConnectionSetup_NoSni(benchmark::State& state) {
  World& w = world(static_cast<size_t>(state.range(0)));
  SSL_CTX* connector = w.connector_ctx->native_handle();
  for (auto _ : state) {
    SSL* ssl = SSL_new(connector);
    tls::attach_sni(ssl, w.sni.get(), &w.cache, kConnectorName);
    SSL_set_accept_state(ssl);
    benchmark::DoNotOptimize(ssl);
    SSL_free(ssl);
  }
  set_store_counters(state, w);
}

struct ClientContext {
  SSL_CTX* ctx;
  ClientContext() : ctx(SSL_CTX_new(TLS_client_method())) {
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // self-signed; the signature is still checked
  }
};
ClientContext& client_context() {
  static auto* c = new ClientContext;  // never destroyed, as the worlds
  return *c;
}

bool handshake_step_ok(SSL* ssl, int rc) {
  if (rc == 1) return true;
  int e = SSL_get_error(ssl, rc);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

// The thumbprint as the store writes it: SHA-1 of the DER, upper-case hex.
std::string sha1_hex(const X509* cert) {
  if (!cert) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha1(), md, &len) != 1) return "";
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02X", md[i]);
    out += buf;
  }
  return out;
}

struct HandshakeTimes {
  double server_s = -1;  // negative: the handshake failed or ended on another context
  double total_s = 0;
};

// One full in-memory TLS 1.3 handshake over a BIO pair (fresh client, no resumption), exactly as
// Connection::upgrade_to_tls sets up the server side (SSL_set_fd replaced by the BIO pair).
// Times the server side (SSL_new to handshake complete, plus SSL_free) and the whole pair.
// `expected`, when set, must be the context the server ended up on.
// `peer_thumbprint`, when set, receives the thumbprint of the certificate the client was sent.
HandshakeTimes handshake(World& w, const char* host, SSL_CTX* expected,
                         std::string* peer_thumbprint = nullptr) {
  HandshakeTimes t;
  auto total_start = Clock::now();
  SSL* client = SSL_new(client_context().ctx);
  if (host) SSL_set_tlsext_host_name(client, host);
  BIO* cbio = nullptr;
  BIO* sbio = nullptr;
  BIO_new_bio_pair(&cbio, 0, &sbio, 0);
  SSL_set_bio(client, cbio, cbio);
  SSL_set_connect_state(client);

  auto s0 = Clock::now();
  SSL* server = SSL_new(w.connector_ctx->native_handle());
  SSL_set_bio(server, sbio, sbio);
  tls::attach_sni(server, w.sni.get(), &w.cache, kConnectorName);
  SSL_set_accept_state(server);
  Clock::duration server_time = Clock::now() - s0;

  bool ok = false;
  int cr = 0, sr = 0;
  for (int round = 0; round < 8; ++round) {
    if (cr != 1) {
      cr = SSL_do_handshake(client);
      if (!handshake_step_ok(client, cr)) break;
    }
    auto a = Clock::now();
    if (sr != 1) sr = SSL_do_handshake(server);
    server_time += Clock::now() - a;
    if (!handshake_step_ok(server, sr)) break;
    if (cr == 1 && sr == 1) {
      ok = SSL_version(server) == TLS1_3_VERSION && (!expected || SSL_get_SSL_CTX(server) == expected);
      break;
    }
  }
  if (ok && peer_thumbprint) *peer_thumbprint = sha1_hex(SSL_get0_peer_certificate(client));
  SSL_free(client);
  auto f = Clock::now();
  SSL_free(server);
  server_time += Clock::now() - f;
  t.total_s = std::chrono::duration<double>(Clock::now() - total_start).count();
  if (ok) t.server_s = std::chrono::duration<double>(server_time).count();
  return t;
}

void run_handshakes(benchmark::State& state, bool with_sni) {
  World& w = world(static_cast<size_t>(state.range(0)));
  std::vector<SSL_CTX*> expected;
  for (const auto& c : kSniCases) {
    auto ctx = w.cache.get(w.real_thumbprint(c.real_index), "", "");
    expected.push_back(ctx ? (*ctx)->native_handle() : nullptr);
  }
  // Once, untimed: the client must be sent the certificate the table names.
  for (size_t k = 0; k < kSniCaseCount; ++k) {
    std::string peer;
    const char* host = with_sni ? kSniCases[k].host : nullptr;
    size_t want = with_sni ? kSniCases[k].real_index : 0;
    handshake(w, host, with_sni ? expected[k] : w.connector_ctx->native_handle(), &peer);
    if (peer != w.real_thumbprint(want)) {
      state.SkipWithError("the client was not sent the expected certificate");
      return;
    }
  }
  double total = 0;
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % kSniCaseCount;
    HandshakeTimes t = with_sni ? handshake(w, kSniCases[k].host, expected[k])
                                : handshake(w, nullptr, w.connector_ctx->native_handle());
    if (t.server_s < 0) {
      state.SkipWithError("handshake failed or served the wrong certificate");
      ERR_clear_error();
      break;
    }
    state.SetIterationTime(t.server_s);
    total += t.total_s;
  }
  set_store_counters(state, w);
  state.counters["client+server_us"] =
      benchmark::Counter(total * 1e6 / static_cast<double>(std::max<size_t>(i, 1)));
}

// Time column = server side only (manual time); client+server_us = the whole handshake pair.
void BM_Handshake_Sni(benchmark::State& state) { run_handshakes(state, true); }
// The same without SNI: the connector's certificate, the callback returns at once. The
// difference from BM_Handshake_Sni is the SNI path (lookup, cache, SSL_set_SSL_CTX).
void BM_Handshake_NoSni(benchmark::State& state) { run_handshakes(state, false); }

constexpr int64_t kSmall = 10;
constexpr int64_t kLarge = 10000;

BENCHMARK(BM_SelectCertificate)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_SelectCertificate_NoMatch)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_BuildSniTable)->Arg(kSmall)->Arg(kLarge)->ArgName("N")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SniLookup_Exact)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_SniLookup_Wildcard)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_SniLookup_Uncovered)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_SniLookup_Spread)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_ConnectionSetup)
    ->Args({kSmall, 0})->Args({kLarge, 0})->Args({kSmall, 1})->Args({kLarge, 1})
    ->ArgNames({"N", "all_cached"});
BENCHMARK(BM_ConnectionSetup_NoSni)->Arg(kSmall)->Arg(kLarge)->ArgName("N");
BENCHMARK(BM_Handshake_Sni)->Arg(kSmall)->Arg(kLarge)->ArgName("N")->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Handshake_NoSni)->Arg(kSmall)->Arg(kLarge)->ArgName("N")->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

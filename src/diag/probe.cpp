#include "diag/probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "tls/certificate_io.hpp"

namespace starling::diag {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads one SMTP reply (all its lines); returns the code, or 0.
int read_reply(int fd, std::string& text) {
  text.clear();
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1) {
    line += c;
    if (c != '\n') continue;
    text += line;
    if (line.size() >= 4 && line[3] == ' ') return std::atoi(line.substr(0, 3).c_str());
    if (line.size() < 4 || line[3] != '-') return 0;
    line.clear();
  }
  return 0;
}

bool send_line(int fd, const std::string& line) {
  std::string l = line + "\r\n";
  return ::write(fd, l.data(), l.size()) == static_cast<ssize_t>(l.size());
}

// Signature algorithms as OpenSSL names them for TLS 1.2 and 1.3 alike.
const char* signature_algorithms(ProbeOffer offer) {
  switch (offer) {
    case ProbeOffer::kRsaOnly:
      return "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
             "rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512";
    case ProbeOffer::kEcdsaFirst:
      return "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ecdsa_secp521r1_sha512:"
             "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
             "rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512";
    case ProbeOffer::kDefault: break;
  }
  return nullptr;
}

}  // namespace

std::string describe(ProbeOffer offer) {
  switch (offer) {
    case ProbeOffer::kRsaOnly: return "offering RSA only";
    case ProbeOffer::kEcdsaFirst: return "offering ECDSA first";
    case ProbeOffer::kDefault: break;
  }
  return "";
}

ProbeResult probe_starttls(const core::Binding& binding, const std::string& sni,
                           std::chrono::milliseconds timeout, ProbeOffer offer) {
  ProbeResult r;
  std::string address = binding.address;
  if (address == "0.0.0.0") address = "127.0.0.1";
  if (address == "::") address = "::1";
  std::string where = core::format_binding({address, binding.port});
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(binding.port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(binding.port);
    len = sizeof *v6;
  } else {
    r.detail = "bad binding address " + address;
    return r;
  }
  Fd s{::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    r.detail = "cannot connect to " + where + ": " + std::strerror(errno);
    return r;
  }
  std::string text;
  if (read_reply(s.fd, text) != 220) {
    r.detail = "no 220 banner from " + where + (text.empty() ? "" : ": " + text.substr(0, text.find('\r')));
    return r;
  }
  if (!send_line(s.fd, "EHLO starling-probe") || read_reply(s.fd, text) != 250) {
    r.detail = "EHLO refused by " + where;
    return r;
  }
  r.starttls_offered = text.find("STARTTLS") != std::string::npos;
  if (!r.starttls_offered) {
    r.detail = "STARTTLS is not advertised on " + where;
    send_line(s.fd, "QUIT");
    return r;
  }
  if (!send_line(s.fd, "STARTTLS") || read_reply(s.fd, text) != 220) {
    r.detail = "STARTTLS refused on " + where + ": " + text.substr(0, text.find('\r'));
    return r;
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, s.fd);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (const char* algorithms = signature_algorithms(offer)) SSL_set1_sigalgs_list(ssl, algorithms);
  if (SSL_connect(ssl) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    r.detail = "TLS handshake with " + where + " failed: " + buf;
  } else {
    r.ok = true;
    r.tls_version = SSL_get_version(ssl);
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int n = 0;
      X509_digest(peer, EVP_sha1(), md, &n);
      static constexpr char kHex[] = "0123456789ABCDEF";
      for (unsigned i = 0; i < n; ++i) {
        r.served_thumbprint += kHex[md[i] >> 4];
        r.served_thumbprint += kHex[md[i] & 15];
      }
      EVP_PKEY* key = X509_get0_pubkey(peer);
      r.served_key_type = key ? tls::key_algorithm(key) : "Unknown";
      X509_free(peer);
    }
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return r;
}

}  // namespace starling::diag

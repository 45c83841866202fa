// What Starling accepts in a certificate file, bounded so that no file can tie a thread up: a
// certificate with 60,000 names, a PKCS#12 file with 2^31 iterations or a 16384-bit key did.
// Every bound is checked before the work it bounds; each refusal names the limit. The names
// limit itself is core::kMaxCertificateNames (the selection rule honours it too).
#pragma once

#include <cstddef>
#include <cstdint>

namespace starling::tls {

// A certificate file: a leaf, its chain and a key are a few kilobytes; a PKCS#7 bundle of every
// public root is about 200 KB.
inline constexpr size_t kMaxCertificateFileBytes = 1024 * 1024;
inline constexpr size_t kMaxCertificatesPerFile = 500;

// RSA modulus sizes: 2048 is the floor of OpenSSL's default security level; above 8192 each
// handshake's signature costs the I/O thread tens of milliseconds or more.
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 8192;

// Password-based encryption in PKCS#12 and encrypted PKCS#8 keys: each iteration count (the
// MAC's, each encrypted part's, the key's) at most a million, and all of them together at most
// three million, about a second of CPU. OpenSSL writes 2048, Windows 2000, Java 10,000; OWASP's
// 2023 advice for PBKDF2-HMAC-SHA256 is 600,000.
inline constexpr int64_t kMaxPbeIterations = 1'000'000;
inline constexpr int64_t kMaxPbeIterationsTotal = 3'000'000;

}  // namespace starling::tls

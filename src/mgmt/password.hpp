// Mailbox passwords (SMTP AUTH, RFC 4954): only a libsodium Argon2id hash is ever stored, in
// crypto_pwhash_str's self-describing form ("$argon2id$v=19$m=65536,t=2,p=1$salt$hash"), so the
// cost can be raised later without invalidating stored hashes. Cost: OPSLIMIT_INTERACTIVE and
// MEMLIMIT_INTERACTIVE (2 passes over 64 MiB, tens of milliseconds): an attacker holding a
// stolen store pays that per guess, and the daemon can still verify a login inline.
// Thread safety: both functions may be called from any thread at once; neither touches the
// store, a log or any global state other than libsodium's one-time initialization.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace starling::mgmt {

// A fresh random salt every call: hashing one password twice gives two different strings.
// Fails only when libsodium cannot initialize or allocate its working memory.
Result<std::string> hash_password(std::string_view password);

// True when `password` matches `hash` (a hash_password result). False for a wrong password, an
// empty or malformed hash, or when the verifier runs out of memory — never an exception. Takes
// the same time for a wrong password as for a right one (Argon2 work, then a constant-time compare).
bool verify_password(std::string_view hash, std::string_view password);

}  // namespace starling::mgmt

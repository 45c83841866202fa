// Recipients (docs/mailbox-delivery.md): mailboxes, distribution groups and the accepted domains' types,
// and the pure rule that resolves an address to what it is here. A Directory is an immutable
// snapshot built from the store after every change and shared between threads; lookups are by
// lower-cased address, so aliases and case variants reach the same recipient.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace starling::core {

enum class DomainType {
  kAuthoritative,  // every recipient must exist here: unknown -> 550 5.1.1
  kInternalRelay,  // existing recipients here, the rest through the matching send connector
  kExternalRelay,  // nothing delivered here: everything through a send connector
};
std::string_view domain_type_name(DomainType t);          // "Authoritative", ...
std::optional<DomainType> parse_domain_type(std::string_view text);  // case-insensitive

struct AcceptedDomain {
  std::string domain;  // lower-case
  DomainType type = DomainType::kAuthoritative;
  bool is_default = false;
  std::string delivery_target = "Maildir";  // "Maildir", "lmtp:HOST:PORT", "lmtp:[v6]:PORT", "lmtp:/socket"
};

// "Maildir" | "lmtp:127.0.0.1:24" | "lmtp:[::1]:24" | "lmtp:/run/dovecot/lmtp".
struct DeliveryTarget {
  enum class Kind { kMaildir, kLmtpTcp, kLmtpUnix };
  Kind kind = Kind::kMaildir;
  std::string host;  // kLmtpTcp: name or IP (no brackets); kLmtpUnix: the socket path
  uint16_t port = 0;
};
Result<DeliveryTarget> parse_delivery_target(std::string_view text);
// The canonical spelling of a parsed target: "Maildir", "lmtp:host:24", "lmtp:[::1]:24", "lmtp:/path".
std::string format_delivery_target(const DeliveryTarget& t);

// "Alice@Contoso.TEST" -> "alice@contoso.test": a dot-atom local part (RFC 5322 §3.2.3, at most
// 64 octets, RFC 5321 §4.5.3.1.1) at a valid host name; nullopt for anything else.
std::optional<std::string> normalize_address(std::string_view address);
// The domain of a normalized address (after the last '@'); empty without one.
std::string_view address_domain(std::string_view address);

// A group expands to at most this many recipients; the rest are dropped (a mail loop or an
// accidental all-hands group must not multiply a message without bound).
inline constexpr size_t kMaxGroupMembers = 1000;

struct Mailbox {
  std::string name;                          // unique, as an administrator names it
  std::string primary_address;               // lower-case local@domain; names the Maildir
  std::vector<std::string> email_addresses;  // further addresses, lower-case, without "smtp:"
  std::string password_hash;                 // libsodium crypto_pwhash_str form; empty: no AUTH
  bool enabled = true;
  std::string delivery_target;               // empty: the domain's DeliveryTarget
};

struct DistributionGroup {
  std::string name;
  std::string primary_address;
  std::vector<std::string> email_addresses;
  std::vector<std::string> members;  // addresses (of mailboxes, groups, or outside recipients)
};

class Directory {
 public:
  Directory() = default;
  Directory(std::vector<AcceptedDomain> domains, std::vector<Mailbox> mailboxes,
            std::vector<DistributionGroup> groups);

  const AcceptedDomain* domain(std::string_view name) const;  // any case; null: not accepted
  const AcceptedDomain* default_domain() const;               // the one marked, or the first
  const Mailbox* mailbox_by_address(std::string_view address) const;  // any case
  const Mailbox* mailbox_by_name(std::string_view name) const;

  struct Resolution {
    enum class Kind {
      kNotLocal,  // the domain is not accepted here: relay rules apply
      kMailbox,   // delivered here, to `mailbox`
      kGroup,     // a distribution group: `members` (expanded, nested groups too, without repeats)
      kUnknown,   // Authoritative domain, no such recipient: 550 5.1.1; also a disabled mailbox,
                  // at any domain type (its addresses stay claimed; its mail is not sent on)
      kRelay,     // InternalRelay without such a recipient, or ExternalRelay: send on
    };
    Kind kind = Kind::kNotLocal;
    const Mailbox* mailbox = nullptr;
    std::vector<std::string> members;  // lower-case addresses, for kGroup: mailboxes by their
                                       // primary address (disabled ones left out), outside
                                       // addresses as listed; at most kMaxGroupMembers
  };
  Resolution resolve(std::string_view address) const;

  // The addresses `mailbox` may send as (primary and every alias), for 550 5.7.60.
  bool may_send_as(const Mailbox& mailbox, std::string_view address) const;

  const DistributionGroup* group_by_address(std::string_view address) const;  // any case
  // The mailbox's DeliveryTarget, else its domain's, else "Maildir".
  std::string delivery_target(const Mailbox& mailbox) const;
  const std::vector<AcceptedDomain>& domains() const { return domains_; }
  const std::vector<Mailbox>& mailboxes() const { return mailboxes_; }
  const std::vector<DistributionGroup>& groups() const { return groups_; }

 private:
  std::vector<AcceptedDomain> domains_;
  std::vector<Mailbox> mailboxes_;
  std::vector<DistributionGroup> groups_;
  std::map<std::string, size_t, std::less<>> mailbox_index_;  // address -> mailboxes_ index
  std::map<std::string, size_t, std::less<>> group_index_;    // address -> groups_ index
};

}  // namespace starling::core

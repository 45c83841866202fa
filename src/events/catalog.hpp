// The event catalog: every event Starling logs, in one place — ID, level, category, symbolic
// name and message template. A template names its fields in braces ("{Connector}"); the event's
// data carries the same fields, so `get-event --format json` exposes them. Each event has a
// documentation page, docs/events/<ID>.md.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace starling::events {

enum class Level { kInformation, kWarning, kError };
std::string_view level_name(Level l);
std::optional<Level> parse_level(std::string_view s);  // case-insensitive

struct EventDefinition {
  int id;
  Level level;
  std::string_view category;
  std::string_view name;
  std::string_view message;  // template with {Field} placeholders
};

// Known IDs.
inline constexpr int kConfigurationUpdated = 12002;
inline constexpr int kStartTlsCertificateNotFound = 12014;
inline constexpr int kStartTlsCertificateExpired = 12016;
inline constexpr int kStartTlsCertificateExpiresSoon = 12018;
inline constexpr int kStartTlsCertificateRestored = 12020;
inline constexpr int kManagementChange = 13001;
inline constexpr int kManagementAccessDenied = 13002;
inline constexpr int kSmtpSendTlsRequiredFailed = 2015;
inline constexpr int kOutboundDeliveryDeferred = 12030;
inline constexpr int kOutboundDeliveryFailed = 12031;
inline constexpr int kQueueFileCorrupt = 12032;
inline constexpr int kSmtpAuthenticationFailed = 12040;

std::span<const EventDefinition> catalog();
const EventDefinition* find_event(int id);

}  // namespace starling::events

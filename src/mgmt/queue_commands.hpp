// What the shell and starlingd agree on for export-message, which travels in pieces: the shell
// asks for the message piece after piece, each request naming the offset under a key no command
// line option can produce (it holds a ':' and capitals, which option_key() never yields), and
// writes each piece to the file with the caller's rights. A piece is at most kExportPieceBytes,
// so that a reply (base64: 4/3 of it) stays far below what the control socket will carry in its
// reply timeout, whatever the message's size.
#pragma once

#include <cstdint>
#include <string_view>

namespace starling::mgmt {

inline constexpr std::string_view kExportOffsetKey = "Export:Offset";
inline constexpr uint64_t kExportPieceBytes = 1024 * 1024;

}  // namespace starling::mgmt

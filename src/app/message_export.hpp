// export-message on the shell's side: the message is asked of starlingd piece after piece
// (mgmt/queue_commands.hpp) and written with the caller's own rights to a temporary file beside
// the one named, which takes that name only once whole. An existing file is replaced only with
// --force; a failure leaves nothing behind.
#pragma once

#include <functional>
#include <string>

#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::app {

using RunRequest = std::function<Result<mgmt::Reply>(const mgmt::Request&)>;

// Runs export-message `request` through `run` into `path`. A refusal from starlingd (exit code,
// error) comes back as the reply; a failure here is an error. The reply says what was written.
Result<mgmt::Reply> export_message(mgmt::Request request, const std::string& path, bool force, const RunRequest& run);

}  // namespace starling::app

#include "app/cli_help.hpp"

#include <algorithm>

namespace starling::app {
namespace {

constexpr size_t kWidth = 80;

// `text` folded at spaces to kWidth columns, continuation lines indented by `indent`; the first
// line starts at column `first_column` (what precedes it on that line is the caller's).
std::string wrap(const std::string& text, size_t indent, size_t first_column) {
  std::string out;
  size_t column = first_column;
  bool line_start = true;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = std::min(text.find(' ', start), text.size());
    std::string word = text.substr(start, end - start);
    start = end + 1;
    if (!line_start && column + 1 + word.size() > kWidth) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
      line_start = true;
    }
    if (!line_start) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_start = false;
  }
  return out + "\n";
}

// "  LABEL   text...", text aligned at `column` (on the next line when the label is longer).
std::string entry(const std::string& label, const std::string& text, size_t column) {
  std::string out = "  " + label;
  if (out.size() + 2 > column) {
    out += "\n" + std::string(column, ' ');
  } else {
    out += std::string(column - out.size(), ' ');
  }
  return out + wrap(text, column, column);
}

std::string global_summary() {
  std::string out;
  for (const auto& o : global_options()) {
    if (o.help.empty()) continue;
    out += entry(option_label(o), o.help, 28);
  }
  return out;
}

}  // namespace

std::string option_label(const CliOption& o) {
  std::string label = (o.name.size() == 1 ? "-" : "--") + o.name;
  for (const auto& a : o.aliases) label += (a.size() == 1 ? ", -" : ", --") + a;
  if (!o.is_switch()) label += " " + o.value_name;
  return label;
}

std::string usage_line(const CliCommand& c) {
  std::string out = "starling " + c.name;
  if (!c.identity.empty()) out += c.identity_required ? " " + c.identity : " [" + c.identity + "]";
  if (!c.options.empty()) out += " [OPTIONS]";
  return out;
}

const std::vector<std::string>& value_notes() {
  static const std::vector<std::string> kNotes{
      "Option names ignore case, '-' and '_': --max-message-size, --MaxMessageSize and -MaxMessageSize are "
      "the same; --option=value and -Option:value work too. Repeat an option, or give a comma list, for "
      "several values.",
      "BOOL: true, false, $true or $false. A switch (an option without a value) may be followed by one.",
      "SIZE: 10MB, 512KB, 1GB or a number of bytes; tables show 10 MB (10,485,760 bytes).",
      "DURATION: [d.]hh:mm:ss (00:05:00, 2.00:00:00) or seconds; tables show [d.]hh:mm:ss.",
      "LIST: comma-separated; '' or $null clears it.",
  };
  return kNotes;
}

std::string exit_status_note() {
  return "0 success, 1 the operation failed (or test-starttls found a problem), 2 usage error, 77 permission "
         "denied.";
}

std::string general_help() {
  std::string out =
      "usage: starling [GLOBAL OPTIONS] COMMAND [ARGUMENT] [OPTIONS]\n"
      "       starling COMMAND --help | starling help COMMAND\n\n";
  out += wrap("Manages a Starling transport server: through starlingd's control socket (DIR/control.sock), "
              "or on its store with --offline. Exchange names work too (Get-ReceiveConnector, "
              "-Services SMTP, -Confirm:$false).",
              0, 0);
  size_t width = 0;
  for (const auto& c : cli_commands()) width = std::max(width, c.name.size());
  for (CommandGroup g : kAllGroups) {
    std::string lines;
    for (const auto& c : cli_commands()) {
      if (c.group == g) lines += entry(c.name, c.summary, width + 4);
    }
    if (!lines.empty()) out += "\n" + std::string(group_title(g)) + ":\n" + lines;
  }
  out += "\nGlobal options (anywhere on the line):\n" + global_summary();
  out += "\nValues:\n";
  for (const auto& n : value_notes()) out += "  " + wrap(n, 2, 2);
  out += "\nExit status:\n  " + wrap(exit_status_note(), 2, 2);
  return out;
}

std::string command_help(const CliCommand& c) {
  std::string out = "usage: " + usage_line(c) + " [GLOBAL OPTIONS]\n";
  if (!c.alias.empty()) out += "Exchange: " + c.alias + "\n";
  out += "\n" + wrap(std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(c.summary[0])))) +
                         c.summary.substr(1) + ".",
                     0, 0);
  if (!c.identity.empty()) out += "\nArgument:\n" + entry(c.identity, c.identity_help, 28);
  if (!c.options.empty()) {
    out += "\nOptions:\n";
    for (const auto& o : c.options) out += entry(option_label(o), o.help, 28);
  }
  out += "\nGlobal options:\n" + global_summary();
  return out;
}

}  // namespace starling::app

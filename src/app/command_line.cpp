#include "app/command_line.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <optional>

#include "app/daemon_options.hpp"
#include "core/names.hpp"
#include "mgmt/values.hpp"

namespace starling::app {
namespace {

bool is_option_token(const std::string& t) { return t.size() >= 2 && t[0] == '-'; }

// "--max-message-size=20MB" -> ("max-message-size", "20MB"); "-Confirm:$false" too. The value
// starts after the first '=' or ':'.
std::pair<std::string, std::optional<std::string>> split_option(const std::string& token) {
  std::string name = token.substr(token[1] == '-' ? 2 : 1);
  if (size_t eq = name.find_first_of("=:"); eq != std::string::npos) return {name.substr(0, eq), name.substr(eq + 1)};
  return {name, std::nullopt};
}

bool is_bool_word(const std::string& t) { return mgmt::parse_bool("", t).ok(); }

// The refusal of a secret given as an argument, with what to do instead.
Error secret_refused(const std::string& key) {
  return make_error(std::string(key == "password" ? mgmt::kPasswordOnCommandLine : mgmt::kCredentialOnCommandLine));
}

Error unknown_option(const CliCommand* command, const std::string& name) {
  if (!command) return make_error("unknown option --" + name + " (starling --help lists the global options)");
  if (command->property_options) {
    std::string known;
    for (const auto& o : command->options) known += (known.empty() ? "" : ", ") + o.property;
    return make_error(command->name + ": unknown property '" + mgmt::option_key(name) + "' (--" + name +
                      "); the properties are: " + known);
  }
  std::string known;
  for (const auto& o : command->options) known += (known.empty() ? "--" : ", --") + o.name;
  return make_error(command->name + ": unknown option --" + name +
                    (known.empty() ? "; it takes none" : "; its options are " + known) + " (starling " +
                    command->name + " --help)");
}

// The first word that is neither an option nor a global option's value: the command, or
// "help". Options before it can only be global ones.
std::optional<size_t> command_position(const std::vector<std::string>& words) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") return i + 1 < words.size() ? std::optional(i + 1) : std::nullopt;
    if (!is_option_token(w)) return i;
    auto [name, value] = split_option(w);
    const CliOption* o = find_cli_option(nullptr, name);
    if (!o || value || i + 1 >= words.size()) continue;
    if (!o->is_switch() || is_bool_word(words[i + 1])) ++i;  // its value
  }
  return std::nullopt;
}

struct Normalized {
  std::vector<std::string> words;  // for CLI11, every option by its first long name
  bool help = false;
};

// Spells every option the way CLI11 was told (`--first-name`, `--first-name=value`); a switch
// followed by a boolean word takes it as its value. Refuses secrets and unknown options.
Result<Normalized> normalize(const std::vector<std::string>& words, const CliCommand* command) {
  Normalized out;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") {
      out.words.insert(out.words.end(), words.begin() + static_cast<long>(i), words.end());
      break;
    }
    if (!is_option_token(w)) {
      out.words.push_back(w);
      continue;
    }
    auto [name, value] = split_option(w);
    std::string key = mgmt::option_key(name);
    if (key == "identity" && command && !command->identity.empty()) {
      if (!value) {
        if (i + 1 >= words.size()) return make_error("--identity needs a value");
        value = words[++i];
      }
      out.words.push_back("--identity");
      out.words.push_back(*value);
      continue;
    }
    const CliOption* o = find_cli_option(command, name);
    if (!o) return unknown_option(command, name);
    if (o->name == "help") {
      out.help = true;
      continue;
    }
    if (o->is_switch()) {
      if (!value && i + 1 < words.size() && is_bool_word(words[i + 1])) value = words[++i];
      if (value) {
        auto b = mgmt::parse_bool("--" + o->name, *value);
        if (!b) return std::move(b).take_error();
        value = *b ? "true" : "false";
      }
    }
    if (value && value->empty()) {
      out.words.push_back("--" + o->name);
      out.words.push_back("");  // CLI11 refuses "--x=": an empty value clears a list or a text
    } else {
      out.words.push_back("--" + o->name + (value ? "=" + *value : ""));
    }
  }
  return out;
}

std::string cli11_names(const CliOption& o) {
  std::string names = "--" + o.name;
  for (const auto& a : o.aliases) names += ",--" + a;
  return names;
}

CLI::Option* add_to(CLI::App& app, const CliOption& o) {
  if (o.is_switch()) return app.add_flag(cli11_names(o), o.help);
  return app.add_option(cli11_names(o), o.help)
      ->type_name(o.value_name)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

bool flag_value(const CLI::Option* o) { return o->count() > 0 && o->as<bool>(); }

std::string last(const CLI::Option* o) { return o->results().empty() ? "" : o->results().back(); }

struct Globals {
  CLI::Option* data_dir;
  CLI::Option* format;
  CLI::Option* property;
  CLI::Option* offline;
  CLI::Option* yes;
  CLI::Option* force;
  CLI::Option* version;
  CLI::Option* confirm;
};

Globals add_globals(CLI::App& app) {
  Globals g{};
  for (const auto& o : global_options()) {
    if (o.name == "help") continue;  // handled while normalizing, for every command alike
    CLI::Option* added = add_to(app, o);
    if (o.name == "data-dir") g.data_dir = added->envname("STARLING_DATA_DIR");
    if (o.name == "format") g.format = added;
    if (o.name == "property") g.property = added;
    if (o.name == "offline") g.offline = added;
    if (o.name == "yes") g.yes = added;
    if (o.name == "force") g.force = added;
    if (o.name == "version") g.version = added;
    if (o.name == "confirm") g.confirm = added->group("");
  }
  return g;
}

Result<void> read_globals(const Globals& g, Invocation& inv) {
  inv.data_dir = g.data_dir->count() > 0 ? last(g.data_dir) : kDefaultDataDir;
  if (inv.data_dir.empty()) return make_error("--data-dir: an empty directory name");
  if (g.format->count() > 0) {
    inv.format = core::to_lower(last(g.format));
    if (inv.format != "table" && inv.format != "list" && inv.format != "json") {
      return make_error("--format must be table, list or json");
    }
  }
  for (const auto& p : g.property->results()) {
    for (const auto& name : mgmt::as_list(p)) inv.properties.push_back(name);
  }
  inv.offline = flag_value(g.offline);
  inv.yes = flag_value(g.yes);
  inv.force = flag_value(g.force);
  inv.version = flag_value(g.version);
  if (g.confirm->count() > 0) {  // -Confirm:$false is --yes
    auto b = mgmt::parse_bool("-Confirm", last(g.confirm));
    if (!b) return std::move(b).take_error();
    inv.yes = inv.yes || !*b;
  }
  return {};
}

void read_command(const CliCommand& c, const std::vector<CLI::Option*>& options, CLI::Option* identity,
                  Invocation& inv) {
  for (size_t i = 0; i < options.size(); ++i) {
    const auto& results = options[i]->results();
    if (options[i]->count() == 0) continue;
    std::string key = mgmt::option_key(c.options[i].name);
    if (c.options[i].is_switch()) {
      inv.args[key] = flag_value(options[i]) ? "true" : "false";
    } else if (results.size() == 1) {
      inv.args[key] = results.front();
    } else {
      inv.args[key] = results;
    }
  }
  if (identity && identity->count() > 0) inv.args["identity"] = last(identity);
}

}  // namespace

Result<Invocation> parse_command_line(const std::vector<std::string>& argv) {
  std::vector<std::string> words(argv.begin() + (argv.empty() ? 0 : 1), argv.end());
  for (const auto& w : words) {  // wherever it is, before anything else could misread it
    if (w == "--") break;
    if (is_option_token(w) && is_secret_option(mgmt::option_key(split_option(w).first))) {
      return secret_refused(mgmt::option_key(split_option(w).first));
    }
  }
  Invocation inv;
  const CliCommand* command = nullptr;
  auto at = command_position(words);
  if (at && core::iequals(words[*at], "help")) {  // `starling help [COMMAND]`
    inv.help = true;
    words.erase(words.begin() + static_cast<long>(*at));
    at = command_position(words);
  }
  if (at) {
    command = find_cli_command(words[*at]);
    if (!command) return make_error("unknown command '" + words[*at] + "' (starling --help lists the commands)");
    words[*at] = command->name;
  }
  auto normalized = normalize(words, command);
  if (!normalized) return std::move(normalized).take_error();
  inv.help = inv.help || normalized->help;
  inv.command = command;

  CLI::App app{"starling"};
  app.set_help_flag();
  Globals globals = add_globals(app);
  CLI::App* sub = nullptr;
  std::vector<CLI::Option*> options;
  CLI::Option* identity = nullptr;
  if (command) {
    sub = app.add_subcommand(command->name)->fallthrough();
    sub->set_help_flag();
    for (const auto& o : command->options) options.push_back(add_to(*sub, o));
    if (!command->identity.empty()) identity = sub->add_option("identity,--identity", command->identity_help);
  }
  std::vector<std::string> reversed(normalized->words.rbegin(), normalized->words.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (what.find("not expected") != std::string::npos && command && command->identity.empty()) {
      what = command->name + " takes no argument (" + what + ")";
    }
    return make_error(what);
  }
  if (auto g = read_globals(globals, inv); !g) return std::move(g).take_error();
  if (command) read_command(*command, options, identity, inv);
  return inv;
}

}  // namespace starling::app

// gliomagrade: grade glioma (LGG vs HGG) from T1, T2 and FLAIR MRI.
// The only place that catches errors: each command throws gg::Error, printed here as one line.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "common/error.h"
#include "common/version.h"
#include "train/train.h"

namespace gg::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

}  // namespace gg::cli

namespace {

// Levenshtein distance, for "did you mean ...?" on a mistyped command.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

std::string suggest_command(const std::string& word) {
  std::string best;
  size_t best_d = 3;
  for (const auto& c : gg::cli::command_registry()) {
    const size_t d = edit_distance(word, c.name);
    if (d < best_d) best_d = d, best = c.name;
  }
  return best;
}

bool is_command(const std::string& word) {
  for (const auto& c : gg::cli::command_registry())
    if (c.name == word) return true;
  return false;
}

// The first word that is neither an option nor the value of --threads: the command the user meant.
std::string first_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') return a;
  }
  return {};
}

void on_interrupt(int) {
  // Staged outputs are removed by their destructors only on a normal unwind; an interrupt exits
  // at once with 130 and leaves at most a *.partial-* directory, never a half-written result.
  std::_Exit(130);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  spdlog::set_pattern("%v");

  CLI::App app{
      "gliomagrade: grade glioma (LGG vs HGG) from T1, T2 and FLAIR MRI with one\n"
      "ImageNet-pretrained GoogLeNet per sequence and a vote of the three."};
  app.set_version_flag("--version", std::string("gliomagrade ") + gg::kVersion);
  app.require_subcommand(1);
  app.footer(
      "Typical use:\n"
      "  gliomagrade run --out results            whole protocol on the built-in synthetic cohort\n"
      "  gliomagrade run DATA --out results       ... on a BraTS folder or manifest CSV\n"
      "  gliomagrade <command> --help             options of one command\n"
      "Method after Chin J Med Imaging Technol 2022;38(11):1715-9 (GoogLeNet transfer learning,\n"
      "vote of T1, T2, FLAIR models); our default evaluation is per patient, without leakage.");
  auto& g = gg::cli::global_options();
  app.add_flag("-v,--verbose", g.verbose, "More detail, and the full error chain");
  app.add_flag("-q,--quiet", g.quiet, "No progress lines");
  app.add_option("--threads", g.threads, "Worker threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);

  // After the global options are parsed and before any command runs.
  app.parse_complete_callback([&g] { gg::train::set_compute_threads(g.threads); });

  auto& registry = gg::cli::command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& c : registry) c.add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A mistyped command reaches CLI11 as "subcommand required" or "extra argument".
    const std::string word = first_word(argc, argv);
    if (!word.empty() && !is_command(word)) {
      const std::string hint = suggest_command(word);
      std::fprintf(stderr, "gliomagrade: error: unknown command '%s'%s\n", word.c_str(),
                   hint.empty() ? "" : (" (did you mean '" + hint + "'?)").c_str());
      std::fprintf(stderr, "Run gliomagrade --help for the list of commands.\n");
      return static_cast<int>(gg::ExitCode::kUsage);
    }
    std::fprintf(stderr, "gliomagrade: error: %s\n", e.what());
    std::fprintf(stderr, "Run with --help for usage.\n");
    return static_cast<int>(gg::ExitCode::kUsage);
  } catch (const gg::Error& e) {
    std::fprintf(stderr, "gliomagrade: error: %s\n", gg::format_error(e).c_str());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gliomagrade: internal error: %s\n", e.what());
    std::fprintf(stderr, "This is a bug; please report it with the command line.\n");
    return static_cast<int>(gg::ExitCode::kUnexpected);
  }
  return 0;
}

// A fixture cache shared by test processes. CTest runs every TEST in its own process, so a
// fixture built in a function-local static is rebuilt for every test; cached_fixture() builds it
// once per build tree instead and lets later (and concurrent) processes reuse it.
//
// Staleness: an entry's key is the sha256 of the executable that built it (the test binary for
// in-process fixtures, the gliomagrade executable for CLI ones) plus the caller's parameters (put
// every input that shapes the fixture in them: seeds, sizes, input files' fingerprints). A rebuilt
// binary gives a new key; entries of the same name built by other code are then deleted.
//
// Entries are shared and must be treated as READ-ONLY: a test that writes into its fixture copies
// it to a TempDir first.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace gg::testing {

namespace fs = std::filesystem;

// Where entries live: GG_TEST_CACHE_DIR from the environment, else <build dir>/test-cache (a
// compile definition), so `rm -rf build` clears it and a fresh build starts empty.
fs::path fixture_cache_root();

// sha256 (hex) of a file's bytes, memoised per process. Throws gg::Error if it cannot be read.
std::string file_fingerprint(const fs::path& file);

// file_fingerprint(file), or "absent" when there is no such file (for optional inputs such as the
// pretrained weights in ../shared).
std::string optional_file_fingerprint(const fs::path& file);

// Returns the directory <root>/<name>-<code>-<params> holding the fixture. If it is absent, calls
// build(dir) on an empty staging directory under <root> and renames that into place once build
// returns; concurrent processes wait on an exclusive flock on <root>/<name>.lock meanwhile. If
// build throws, the staging directory is removed (nothing is cached) and the exception propagates.
// `name`: letters, digits and '_' only. `code`: the executable whose bytes the fixture depends on.
// While the process lives it holds a shared lock on <name>.lock, so no other process deletes the
// entry it uses. Thread-safe.
fs::path cached_fixture(const std::string& name, const std::string& params,
                        const std::function<void(const fs::path& dir)>& build,
                        const fs::path& code = "/proc/self/exe");

}  // namespace gg::testing

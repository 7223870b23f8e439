// prep internals: the slice store's file formats (see prep.h for the layout).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "prep/prep.h"

namespace gg::prep::internal {

inline constexpr char kTensorMagic[9] = "GGSLICE1";
inline constexpr uint32_t kTensorVersion = 1;
inline constexpr int64_t kTensorHeaderBytes = 32;
inline constexpr int kStoreFormatVersion = 1;
inline constexpr const char* kStoreMarker = "store.json";

// Creates `path` holding the header for n×h×w and room for the rows (zero-filled, written later
// with write_rows). Throws kRuntime naming the file.
void create_tensor_file(const fs::path& path, int64_t n, int h, int w);

// Writes `count` consecutive rows starting at row `first` (thread-safe: pwrite on its own fd).
void write_rows(const fs::path& path, int64_t first, int64_t count, int64_t row_bytes,
                const uint8_t* data);

// The store's index.csv text: one line per (item, sequence).
std::string index_csv(const std::vector<SliceItem>& items, int size);

}  // namespace gg::prep::internal

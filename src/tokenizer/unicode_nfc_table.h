// Unicode data for NFC, generated into unicode_nfc_table.cpp by
// `scripts/gen_tokenizer_golden.py --nfc-table` (Hangul syllables are algorithmic, not listed).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sift::nfc {

// Code points first..last share a non-zero canonical combining class. Sorted by first.
struct CombiningRun {
    char32_t first;
    char32_t last;
    uint8_t ccc;
};

// Full canonical decomposition of `cp`: kDecompositionPool[offset, offset + length). Sorted by cp.
struct Decomposition {
    char32_t cp;
    uint16_t offset;
    uint8_t length;
};

// first + second compose to `composite` (primary composites only). Sorted by (first, second).
struct Composition {
    char32_t first;
    char32_t second;
    char32_t composite;
};

extern const CombiningRun kCombiningRuns[];
extern const size_t kCombiningRunCount;
extern const char32_t kDecompositionPool[];
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionCount;
extern const Composition kCompositions[];
extern const size_t kCompositionCount;

}  // namespace sift::nfc

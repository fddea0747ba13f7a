// Quantize/dequantize against golden files from gguf-py and ggml (scripts/gen_quant_golden.py).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "tensor/quant_blocks.h"

namespace sift {
namespace {

std::vector<uint8_t> read_golden(const std::string& name) {
    const std::string path = std::string(SIFT_TEST_DATA) + "/quant/" + name;
    std::ifstream file(path, std::ios::binary);
    EXPECT_TRUE(file.good()) << "missing golden file " << path
                             << " (scripts/gen_quant_golden.py writes it)";
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::vector<float> read_floats(const std::string& name) {
    const std::vector<uint8_t> bytes = read_golden(name);
    EXPECT_EQ(bytes.size() % sizeof(float), 0u) << name;
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
}

int64_t row_bytes(DType type, int64_t n) {
    const std::optional<int64_t> bytes = dtype_row_bytes(type, n);
    EXPECT_TRUE(bytes.has_value()) << dtype_name(type) << " n=" << n;
    return bytes.value_or(0);
}

std::string golden_name(DType type) {
    return std::string(dtype_name(type));
}

// Index of the first block whose bytes differ, or -1.
int64_t first_bad_block(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                        int64_t block_bytes) {
    for (size_t off = 0; off < a.size(); off += static_cast<size_t>(block_bytes)) {
        if (std::memcmp(a.data() + off, b.data() + off, static_cast<size_t>(block_bytes)) != 0) {
            return static_cast<int64_t>(off) / block_bytes;
        }
    }
    return -1;
}

constexpr DType kGoldenQuantizeTypes[] = {DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                          DType::Q5_0, DType::Q5_1, DType::Q8_0};
constexpr DType kKQuantTypes[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};
constexpr DType kComputableTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                      DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                      DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};

std::string input_file(DType type) {
    if (type == DType::F16 || type == DType::BF16) return "float.in.f32";
    if (dtype_traits(type).block_size == kQK_K) return "kquant.in.f32";
    return "legacy.in.f32";
}

std::string type_param_name(const testing::TestParamInfo<DType>& info) {
    return golden_name(info.param);
}

// (1) Our quantization equals gguf-py's (numpy) bytes, bit for bit.
class QuantizeGolden : public testing::TestWithParam<DType> {};

TEST_P(QuantizeGolden, MatchesGgufPy) {
    const DType type = GetParam();
    const std::vector<float> x = read_floats(input_file(type));
    const std::vector<uint8_t> want = read_golden(golden_name(type) + ".q");
    const int64_t n = static_cast<int64_t>(x.size());
    ASSERT_EQ(static_cast<int64_t>(want.size()), row_bytes(type, n));
    std::vector<uint8_t> got(want.size());
    quantize_row(type, x.data(), got.data(), n);
    const DTypeTraits& traits = dtype_traits(type);
    const int64_t bad = first_bad_block(got, want, traits.block_bytes);
    EXPECT_EQ(bad, -1) << "first differing block " << bad << ", first input "
                       << (bad >= 0 ? x[bad * traits.block_size] : 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantizeGolden, testing::ValuesIn(kGoldenQuantizeTypes),
                         type_param_name);

// The K-quants equal ggml's own C reference quantizers (quantize_row_*_ref) bit for bit.
class QuantizeGgmlGolden : public testing::TestWithParam<DType> {};

TEST_P(QuantizeGgmlGolden, MatchesGgmlReference) {
    const DType type = GetParam();
    const std::vector<float> x = read_floats("kquant.in.f32");
    std::vector<uint8_t> want = read_golden(golden_name(type) + ".ggml.q");
    const int64_t n = static_cast<int64_t>(x.size());
    ASSERT_EQ(static_cast<int64_t>(want.size()), row_bytes(type, n));
    std::vector<uint8_t> got(want.size());
    quantize_row(type, x.data(), got.data(), n);
    const int64_t bad = first_bad_block(got, want, dtype_traits(type).block_bytes);
    EXPECT_EQ(bad, -1) << "first differing super-block " << bad;
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantizeGgmlGolden, testing::ValuesIn(kKQuantTypes),
                         type_param_name);

// (2) Our dequantization of the golden bytes equals gguf-py's, bit for bit.
class DequantizeGolden : public testing::TestWithParam<DType> {};

TEST_P(DequantizeGolden, MatchesGgufPy) {
    const DType type = GetParam();
    const std::vector<uint8_t> q = read_golden(golden_name(type) + ".q");
    const std::vector<float> want = read_floats(golden_name(type) + ".deq.f32");
    const int64_t n = static_cast<int64_t>(want.size());
    ASSERT_EQ(static_cast<int64_t>(q.size()), row_bytes(type, n));
    std::vector<float> got(want.size());
    dequantize_row(type, q.data(), got.data(), n);
    // Conversions must keep NaN payloads; arithmetic NaNs (inf * 0 from an overflowed f16 scale)
    // have a hardware-chosen sign and payload, so there any NaN matches any NaN.
    const bool arithmetic = dtype_traits(type).quantized;
    int64_t n_bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        const bool same = std::bit_cast<uint32_t>(got[i]) == std::bit_cast<uint32_t>(want[i]);
        const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
        if (same || (arithmetic && both_nan)) continue;
        if (n_bad++ < 5) {
            ADD_FAILURE() << "element " << i << ": got " << got[i] << " (0x" << std::hex
                          << std::bit_cast<uint32_t>(got[i]) << "), want " << want[i] << " (0x"
                          << std::bit_cast<uint32_t>(want[i]) << ")" << std::dec;
        }
    }
    EXPECT_EQ(n_bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Quant, DequantizeGolden,
                         testing::Values(DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1,
                                         DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K,
                                         DType::Q5_K, DType::Q6_K, DType::Q8_K),
                         type_param_name);

// (3) K-quant round trip: error within bounds per super-block, zeros stay zeros, deterministic.
double max_relative_rmse(DType type) {
    // Uniform rounding error is step / sqrt(12) with step = range / levels; on Gaussian data
    // (32-sample range ~4 sigma, 16-sample absmax ~2 sigma, 256-sample ~3 sigma) that is 0.077,
    // 0.037, 0.018 and 0.007 of the RMS; the bounds add ~30% for scale rounding and heavy tails.
    switch (type) {
        case DType::Q4_K:
            return 0.10;  // 15 levels per 32, 6-bit scales and mins
        case DType::Q5_K:
            return 0.05;  // 31 levels per 32, 6-bit scales and mins
        case DType::Q6_K:
            return 0.025;  // 63 levels per 16, 8-bit scales
        case DType::Q8_K:
            return 0.015;  // 255 levels per 256, float scale
        default:
            return 0.0;
    }
}

class KQuantRoundTrip : public testing::TestWithParam<DType> {};

TEST_P(KQuantRoundTrip, ErrorWithinBoundAndDeterministic) {
    const DType type = GetParam();
    const std::vector<float> x = read_floats("kquant.in.f32");
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
    quantize_row(type, x.data(), q.data(), n);
    std::vector<float> y(x.size());
    dequantize_row(type, q.data(), y.data(), n);

    const double bound = max_relative_rmse(type);
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        double err2 = 0, sig2 = 0;
        for (int64_t j = b * kQK_K; j < (b + 1) * kQK_K; ++j) {
            err2 += (static_cast<double>(y[j]) - x[j]) * (static_cast<double>(y[j]) - x[j]);
            sig2 += static_cast<double>(x[j]) * x[j];
        }
        if (sig2 == 0) {
            EXPECT_EQ(err2, 0.0) << "all-zero super-block " << b << " must stay zero";
            continue;
        }
        EXPECT_LE(std::sqrt(err2 / sig2), bound) << "super-block " << b;
    }

    // Same bytes again, and block by block (no state carried between blocks or calls).
    std::vector<uint8_t> again(q.size());
    quantize_row(type, x.data(), again.data(), n);
    EXPECT_EQ(again, q);
    const int64_t block_bytes = dtype_traits(type).block_bytes;
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        quantize_row(type, x.data() + b * kQK_K, again.data() + b * block_bytes, kQK_K);
    }
    EXPECT_EQ(again, q);
}

INSTANTIATE_TEST_SUITE_P(Quant, KQuantRoundTrip, testing::ValuesIn(kKQuantTypes), type_param_name);

TEST(KQuant, Q8KBsumsAreSumsOfQs) {
    const std::vector<float> x = read_floats("kquant.in.f32");
    std::vector<block_q8_K> q(x.size() / kQK_K);
    quantize_row(DType::Q8_K, x.data(), q.data(), static_cast<int64_t>(x.size()));
    for (const block_q8_K& block : q) {
        for (int j = 0; j < kQK_K / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += block.qs[16 * j + l];
            EXPECT_EQ(block.bsums[j], sum);
        }
    }
}

TEST(KQuant, ScaleMinUnpacking) {
    // Pack known 6-bit values the documented way and read them back.
    const uint8_t sc[8] = {0, 1, 17, 63, 32, 45, 62, 5};
    const uint8_t mn[8] = {63, 2, 0, 31, 48, 7, 19, 60};
    uint8_t packed[kKScaleSize];
    for (int j = 0; j < 4; ++j) {
        packed[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
        packed[j + 4] = static_cast<uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
        packed[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        kquant_scale_min(j, packed, &s, &m);
        EXPECT_EQ(s, sc[j]) << j;
        EXPECT_EQ(m, mn[j]) << j;
    }
}

// Worst-case error of one legacy block: half a step, except Q4_0/Q5_0 whose level grid ends one
// step short on the side opposite the extreme value (q = 2^b is clamped to 2^b - 1).
double legacy_max_error(DType type, double lo, double hi) {
    const double amax = std::fmax(std::fabs(lo), std::fabs(hi));
    switch (type) {
        case DType::Q4_0:
            return amax / 8;
        case DType::Q5_0:
            return amax / 16;
        case DType::Q4_1:
            return (hi - lo) / 15 / 2;
        case DType::Q5_1:
            return (hi - lo) / 31 / 2;
        case DType::Q8_0:
            return amax / 127 / 2;
        default:
            return 0;
    }
}

// Legacy types on the golden inputs: a sanity bound on top of the bit-exact goldens.
TEST(LegacyQuant, RoundTripErrorBounded) {
    const std::vector<float> x = read_floats("legacy.in.f32");
    const int64_t n = static_cast<int64_t>(x.size());
    for (DType type : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0}) {
        std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
        quantize_row(type, x.data(), q.data(), n);
        std::vector<float> y(x.size());
        dequantize_row(type, q.data(), y.data(), n);
        for (int64_t b = 15; b < n / 32; ++b) {  // blocks 0..14 are the awkward ones (f16 overflow)
            const float* xb = x.data() + b * 32;
            double lo = xb[0], hi = xb[0];
            for (int j = 0; j < 32; ++j) {
                lo = std::fmin(lo, xb[j]);
                hi = std::fmax(hi, xb[j]);
            }
            // Slack: f16 rounding of d and m, 2^-11 relative or, for subnormal d, half of the
            // 2^-24 f16 step times |q| <= 128.
            const double amax = std::fmax(std::fabs(lo), std::fabs(hi));
            const double bound =
                legacy_max_error(type, lo, hi) * (1 + 1e-6) + 4 * amax * 0x1p-11 + 128 * 0x1p-25;
            for (int j = 0; j < 32; ++j) {
                EXPECT_LE(std::fabs(static_cast<double>(y[b * 32 + j]) - xb[j]), bound)
                    << dtype_name(type) << " block " << b << " element " << j;
            }
        }
    }
}

// fp16/bf16 conversions beyond the goldens: every half and every rounding tie.
TEST(Fp16, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << std::hex << h;
    }
}

TEST(Fp16, TiesRoundToEven) {
    // Midway between adjacent finite halves (exact in float): the even one wins, both signs.
    for (uint32_t h = 0; h < 0x7BFF; ++h) {
        const double lo = fp16_to_fp32(static_cast<uint16_t>(h));
        const double hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));
        const float mid = static_cast<float>((lo + hi) / 2);
        const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
        ASSERT_EQ(fp32_to_fp16(mid), even) << std::hex << h;
        ASSERT_EQ(fp32_to_fp16(-mid), even | 0x8000) << std::hex << h;
        // One float ulp either side of the tie rounds to the nearer half.
        ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
        ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
    }
    EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);  // below the 65520 tie: max finite half
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);    // tie with 65536 (even): inf
    EXPECT_EQ(fp32_to_fp16(1e-45f), 0x0000);      // float subnormal flushes to +0
}

TEST(Bf16, EveryNonNanRoundTripsAndNanStaysQuietNan) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = bf16_to_fp32(static_cast<uint16_t>(h));
        const uint16_t back = fp32_to_bf16(f);
        if (std::isnan(f)) {
            ASSERT_EQ(back, h | 0x40) << std::hex << h;  // quiet bit set, payload kept
        } else {
            ASSERT_EQ(back, h) << std::hex << h;
        }
    }
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie to even: down
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie to even: up
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX rounds to inf
}

// (4) Traits table and block structs agree (also static_asserted in dtype.cpp).
template <typename Block>
void expect_traits(DType type, int64_t block_size) {
    const DTypeTraits& traits = dtype_traits(type);
    EXPECT_EQ(traits.block_bytes, static_cast<int64_t>(sizeof(Block))) << traits.name;
    EXPECT_EQ(traits.block_size, block_size) << traits.name;
    EXPECT_TRUE(traits.quantized) << traits.name;
    EXPECT_TRUE(traits.computable) << traits.name;
}

TEST(DTypeTraits, MatchBlockStructs) {
    expect_traits<block_q4_0>(DType::Q4_0, kQK4_0);
    expect_traits<block_q4_1>(DType::Q4_1, kQK4_1);
    expect_traits<block_q5_0>(DType::Q5_0, kQK5_0);
    expect_traits<block_q5_1>(DType::Q5_1, kQK5_1);
    expect_traits<block_q8_0>(DType::Q8_0, kQK8_0);
    expect_traits<block_q4_K>(DType::Q4_K, kQK_K);
    expect_traits<block_q5_K>(DType::Q5_K, kQK_K);
    expect_traits<block_q6_K>(DType::Q6_K, kQK_K);
    expect_traits<block_q8_K>(DType::Q8_K, kQK_K);
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
        const DTypeTraits& traits = dtype_traits(type);
        EXPECT_EQ(traits.block_size, 1) << traits.name;
        EXPECT_EQ(traits.block_bytes, type == DType::F32 ? 4 : 2) << traits.name;
        EXPECT_TRUE(traits.computable) << traits.name;
    }
}

TEST(DTypeTraits, ComputableIsExactlyWhatQuantImplements) {
    int64_t n_computable = 0;
    for (uint32_t id = 0; id < 64; ++id) {
        const DTypeTraits* traits = dtype_find(id);
        if (traits != nullptr && traits->computable) ++n_computable;
    }
    EXPECT_EQ(n_computable, static_cast<int64_t>(std::size(kComputableTypes)));
    // Every computable type goes through both directions (each has a case in the dispatch).
    for (DType type : kComputableTypes) {
        const int64_t n = dtype_traits(type).block_size * 2;
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
        std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
        quantize_row(type, x.data(), q.data(), n);
        std::vector<float> y(x.size());
        dequantize_row(type, q.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i)
            EXPECT_NEAR(y[i], x[i], 0.5) << dtype_name(type) << " " << i;
    }
}

TEST(QuantDeathTest, RejectsPartialBlocksAndOtherTypes) {
    std::vector<float> x(512, 1.0f);
    std::vector<uint8_t> q(1024);
    EXPECT_DEATH(quantize_row(DType::Q4_0, x.data(), q.data(), 33), "check failed: .*block_size");
    EXPECT_DEATH(dequantize_row(DType::Q4_K, q.data(), x.data(), 100),
                 "check failed: .*block_size");
    EXPECT_DEATH(quantize_row(DType::Q2_K, x.data(), q.data(), 256), "check failed: .*computable");
}

}  // namespace
}  // namespace sift

// Helpers for the CPU backend tests: random data, typed buffers, the ISAs to sweep.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_context.h"
#include "backend/cpu/cpu_kernels.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "tensor/tensor.h"

namespace sift::test {

// Unit roundoff of F32.
inline constexpr double kF32Eps = 1.0 / (1 << 24);

inline std::vector<float> random_floats(int64_t n, uint64_t seed, float stddev = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
}

// The ISAs this machine can run: scalar always, AVX2 when present.
inline std::vector<cpu::CpuIsa> available_isas() {
    std::vector<cpu::CpuIsa> isas = {cpu::CpuIsa::ISA_SCALAR};
    if (cpu::cpu_isa_detect() == cpu::CpuIsa::ISA_AVX2) isas.push_back(cpu::CpuIsa::ISA_AVX2);
    return isas;
}

inline std::string isa_tag(cpu::CpuIsa isa) {
    return cpu::cpu_isa_name(isa);
}

// A row-major matrix of `type` with rows quantized from F32 (the values every path then sees).
struct TypedMatrix {
    DType type;
    int64_t cols = 0, rows = 0;
    int64_t row_stride = 0;  // bytes; may exceed the row's bytes (padding between rows)
    std::vector<uint8_t> bytes;
    std::vector<float> values;  // dequantized, [rows][cols]

    TypedMatrix(DType t, int64_t n_cols, int64_t n_rows, uint64_t seed, int64_t pad_bytes = 0)
        : type(t), cols(n_cols), rows(n_rows) {
        const int64_t row_bytes = *dtype_row_bytes(t, n_cols);
        row_stride = row_bytes + pad_bytes;
        bytes.assign(static_cast<size_t>(row_stride * n_rows + 64), 0xAB);
        values.resize(static_cast<size_t>(n_cols * n_rows));
        const std::vector<float> src = random_floats(n_cols * n_rows, seed, 0.5f);
        for (int64_t r = 0; r < n_rows; ++r) {
            quantize_row(t, src.data() + r * n_cols, bytes.data() + r * row_stride, n_cols);
            dequantize_row(t, bytes.data() + r * row_stride, values.data() + r * n_cols, n_cols);
        }
    }

    Tensor tensor() {
        Tensor v = Tensor::view(bytes.data(), type, {cols, rows});
        v.nb[1] = row_stride;
        v.nb[2] = v.nb[3] = row_stride * rows;
        return v;
    }
};

inline const DType kComputableTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                                         DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                         DType::Q4_K, DType::Q5_K, DType::Q6_K};

}  // namespace sift::test

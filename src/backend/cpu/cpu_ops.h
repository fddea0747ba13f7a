// The CPU implementations of ops.h, one function per op over a CpuContext. CpuBackend forwards to
// these; tests call them directly to exercise both ISAs and both matmul modes.
#pragma once

#include "backend/cpu/cpu_context.h"
#include "backend/ops.h"
#include "tensor/tensor.h"

namespace sift::cpu {

// cpu_matmul.cpp
void cpu_matmul(CpuContext& ctx, const Tensor& w, const Tensor& x, Tensor out);

// cpu_attention.cpp
void cpu_attention(CpuContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                   Tensor out);

// cpu_elementwise.cpp
void cpu_get_rows(CpuContext& ctx, const Tensor& table, const Tensor& ids, Tensor out);
void cpu_add(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cpu_mul(CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor out);
void cpu_scale(CpuContext& ctx, const Tensor& x, float s, Tensor out);
void cpu_rms_norm(CpuContext& ctx, const Tensor& x, const Tensor* w, float eps, Tensor out);
void cpu_rope(CpuContext& ctx, const Tensor& x, const Tensor& pos, const RopeParams& params,
              Tensor out);
void cpu_swiglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
void cpu_geglu(CpuContext& ctx, const Tensor& gate, const Tensor& up, Tensor out);
void cpu_set_rows(CpuContext& ctx, const Tensor& src, const Tensor& idx, Tensor dst);
void cpu_argmax(CpuContext& ctx, const Tensor& x, Tensor out);

}  // namespace sift::cpu

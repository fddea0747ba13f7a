// cuda_attention: checks the inputs (as the CPU does), picks a kernel (attention_select), and
// runs it: the tensor-core prefill kernel (cuda_attention_mma.cu) or the general split-K kernel
// (cuda_attention_vec.cu) followed, when the cells were split, by attention_combine here. A Q8_0
// cache is read directly by the split-K kernel (decode) or first converted to F16 over the
// attended cells (prefill; cuda_kv_quant.cu).
#include <algorithm>

#include "backend/cuda/cuda_attention.cuh"
#include "backend/cuda/cuda_kv_quant.cuh"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_ops.h"

namespace sift::cuda {
namespace {

// One warp per span of 32 cells: its sequence (one, mixed or none), position range, and whether
// it holds an empty cell (or runs past cell_end).
__global__ void cell_spans_kernel(const int32_t* cell_pos, const int32_t* cell_seq,
                                  int64_t cell_begin, int64_t cell_end, int n_spans,
                                  CellSpan* spans) {
    pdl_prologue();
    const int span = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (span >= n_spans) return;
    const int64_t c = cell_begin + static_cast<int64_t>(span) * kSpanCells + lane;
    const int32_t seq = c < cell_end ? cell_seq[c] : -1;
    const bool filled = seq >= 0;
    const int32_t pos = filled ? cell_pos[c] : 0;
    int32_t smin = filled ? seq : INT32_MAX, smax = filled ? seq : INT32_MIN;
    int32_t pmin = filled ? pos : INT32_MAX, pmax = filled ? pos : INT32_MIN;
    for (int o = 16; o > 0; o >>= 1) {
        smin = min(smin, __shfl_xor_sync(0xffffffffu, smin, o));
        smax = max(smax, __shfl_xor_sync(0xffffffffu, smax, o));
        pmin = min(pmin, __shfl_xor_sync(0xffffffffu, pmin, o));
        pmax = max(pmax, __shfl_xor_sync(0xffffffffu, pmax, o));
    }
    const unsigned empty = __ballot_sync(0xffffffffu, !filled);
    if (lane == 0) {
        CellSpan s;
        s.seq = smax < 0 ? kSeqNone : (smin == smax ? smin : kSeqMixed);
        s.pos_min = pmin;
        s.pos_max = pmax;
        s.has_empty = empty != 0;
        spans[span] = s;
    }
}

// Block-wide reductions (blockDim.x a multiple of 32); `red` holds 32 floats.
template <typename Op>
__device__ float block_reduce(float v, float* red, Op op) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();  // `red` may still be read from a previous call
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) v = op(v, red[w]);
    return v;
}

// Merges the splits' (m, l, acc) of one (token, head): weights e^(m_s - M), M the largest m.
// The weights are computed once into shared memory; each thread then sums its output columns
// over the splits with 4 independent chains, so the loads of several splits are in flight.
// The tokens of the partial states' rows: row i is token t_base + i, less q_pos[0] % 128 when
// q_pos is given (block-sparse query blocks start at a multiple of 128 positions); rows outside
// [0, n_tokens) are padding.
struct PartialRows {
    int t_base = 0;
    const int32_t* q_pos = nullptr;
    int n_tokens = 0;
};

__global__ void attention_combine_kernel(PartialRows rows, const float* partial, int n_split,
                                         int head_dim, int n_head, float* out, int64_t out_nb1,
                                         int64_t out_nb2) {
    pdl_prologue();
    extern __shared__ float w_s[];  // [n_split]
    __shared__ float red[32];
    const int row = blockIdx.x;  // partial row * n_head + head
    const int h = row % n_head;
    const int t =
        rows.t_base + row / n_head - (rows.q_pos != nullptr ? rows.q_pos[0] % kBsaBlock : 0);
    if (t < 0 || t >= rows.n_tokens) return;
    const int stride = head_dim + 2;
    const float* base = partial + static_cast<int64_t>(row) * n_split * stride;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < n_split; s += blockDim.x) mx = fmaxf(mx, base[s * stride]);
    mx = block_reduce(mx, red, [](float x, float y) { return fmaxf(x, y); });
    float l = 0;
    for (int s = threadIdx.x; s < n_split; s += blockDim.x) {
        const float w = mx == -INFINITY ? 0.0f : expf(base[s * stride] - mx);
        w_s[s] = w;
        l += w * base[s * stride + 1];
    }
    l = block_reduce(l, red, [](float x, float y) { return x + y; });  // also orders w_s
    float* o = reinterpret_cast<float*>(reinterpret_cast<char*>(out) + t * out_nb2 + h * out_nb1);
    const float inv = l > 0 ? 1.0f / l : 0.0f;  // no visible key (mx = -inf): zeros, as the CPU
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc[4] = {0, 0, 0, 0};
        int s = 0;
        for (; s + 4 <= n_split; s += 4) {
#pragma unroll
            for (int k = 0; k < 4; ++k) acc[k] += w_s[s + k] * base[(s + k) * stride + 2 + d];
        }
        for (; s < n_split; ++s) acc[0] += w_s[s] * base[s * stride + 2 + d];
        o[d] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) * inv;
    }
}

enum class AttnKernel { ATTN_MMA, ATTN_VEC, ATTN_Q8_TO_F16 };

struct AttnPlan {
    AttnKernel kernel = AttnKernel::ATTN_VEC;
    int n_split = 1;          // vec: blocks the cells are split across; mma: per split row
    int tiles_per_split = 0;  // vec: 32-cell steps per split
    int split_from = 0;       // mma: first query block split across the cells
};

// Split-KV for the tensor-core kernel, where a few query blocks would hold the GPU's critical
// path: the block-sparse mask's dense tail (the prompt's last_full blocks see every key
// block, while the other rows see a few), or a dense grid too small to fill the GPU (a short
// batch over a long cache). Shares of 8192 cells (128 tiles), at most 16, and the partial
// states (heavy rows x 128 x heads x splits x (head_dim + 2) floats) at most 256 MB.
void mma_split_plan(const CudaContext& ctx, const AttentionInputs& in, const AttnArgs& a,
                    AttnPlan& plan) {
    const int n_blocks = attention_mma_qblocks(a);
    plan.split_from = n_blocks;
    plan.n_split = 1;
    const int64_t n_cells = a.cell_end - a.cell_begin;
    int64_t n_split = std::min<int64_t>(16, n_cells / 8192);
    int n_heavy = 0;
    if (a.block_mask != nullptr) {
        n_heavy = std::clamp(in.dense_tail, 0, n_blocks);
    } else if (static_cast<int64_t>(n_blocks) * a.n_head < ctx.sm_count) {
        n_heavy = n_blocks;
        n_split = std::min<int64_t>(
            n_split, (2 * ctx.sm_count + n_blocks * a.n_head - 1) / (n_blocks * a.n_head));
    }
    const int64_t row_bytes = static_cast<int64_t>(kBsaBlock) * a.n_head * (a.head_dim + 2) * 4;
    n_split = std::min<int64_t>(n_split,
                                (int64_t{256} << 20) / std::max<int64_t>(1, n_heavy * row_bytes));
    if (n_heavy == 0 || n_split < 2) return;
    plan.split_from = n_blocks - n_heavy;
    plan.n_split = static_cast<int>(n_split);
}

bool aligned16(const void* p, int64_t nb1, int64_t nb2) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && nb1 % 16 == 0 && nb2 % 16 == 0;
}

// The one place attention picks its kernel and work split.
AttnPlan attention_select(const CudaContext& ctx, const AttentionInputs& in, const AttnArgs& a) {
    AttnPlan plan;
    const DType kt = in.k.type, vt = in.v.type;
    const bool q8 = kt == DType::Q8_0 || vt == DType::Q8_0;
    auto f16_or_q8 = [](DType t) { return t == DType::F16 || t == DType::Q8_0; };
    // Tensor cores for prompts: a 64-token Q tile is then at least a quarter full; below 16
    // tokens most of each mma is padding and the vec kernel, which reads every K/V row once for
    // all query heads of a KV head, moves less memory. The mma kernel needs F16 K/V (its
    // operand type), a head_dim it is instantiated for, and 16-byte rows for cp.async/float4.
    const bool mma_shape = a.n_tokens >= 16 && attention_mma_supported(a.head_dim) &&
                           aligned16(a.q, a.q_nb1, a.q_nb2) &&
                           aligned16(a.out, a.out_nb1, a.out_nb2);
    if (mma_shape && kt == DType::F16 && vt == DType::F16) {
        plan.kernel = AttnKernel::ATTN_MMA;
        mma_split_plan(ctx, in, a, plan);
        return plan;
    }
    // Q8_0 for a prompt: one F16 copy of the attended cells (each converted row then serves a
    // whole query tile) and the tensor cores. Decode reads Q8_0 in the vec kernel (half the
    // bytes of F16, and no scratch to grow inside a captured graph); what it does not read
    // (F32 beside Q8_0, a cache base not 16-byte aligned) is converted too.
    if (q8 && ((mma_shape && f16_or_q8(kt) && f16_or_q8(vt)) || !attention_vec_reads(kt, vt, a))) {
        plan.kernel = AttnKernel::ATTN_Q8_TO_F16;
        return plan;
    }
    // Vec kernel: split the cells when (token, KV head, head chunk) blocks would not fill the
    // GPU (decode, speculative verify): aim at ~8 blocks per SM (each keeps one 32-cell step of
    // K/V in flight while computing another: enough bytes in flight to cover DRAM latency),
    // each split at least 8 steps (256 cells) so the combine pass stays small.
    const int64_t n_steps = (a.cell_end - a.cell_begin + kVecTile - 1) / kVecTile;
    const int64_t blocks =
        static_cast<int64_t>(a.n_tokens) * a.n_head_kv * ((a.group + kVecRows - 1) / kVecRows);
    int64_t n_split = 1;
    if (blocks < 2 * ctx.sm_count && n_steps >= 16) {
        n_split = std::clamp<int64_t>((8 * ctx.sm_count + blocks - 1) / blocks, 1, n_steps / 8);
    }
    const int64_t per_split = std::max<int64_t>(1, (n_steps + n_split - 1) / n_split);
    plan.tiles_per_split = static_cast<int>(per_split);
    plan.n_split = static_cast<int>(std::max<int64_t>(1, (n_steps + per_split - 1) / per_split));
    return plan;
}

void check_inputs(const AttentionInputs& in, const Tensor& out) {
    const Tensor &q = in.q, &k = in.k, &v = in.v;
    SIFT_CHECK(q.type == DType::F32 && q.nb[0] == 4 && q.ne[3] == 1,
               "attention: q must be F32 [hd, heads, T]");
    SIFT_CHECK(out.type == DType::F32 && out.nb[0] == 4 && out.ne == q.ne,
               "attention: out must match q");
    for (const Tensor* t : {&k, &v}) {
        SIFT_CHECK(t->type == DType::F32 || t->type == DType::F16 || t->type == DType::Q8_0,
                   "attention: K/V must be F32, F16 or Q8_0");
        SIFT_CHECK(t->nb[0] == dtype_traits(t->type).block_bytes,
                   "attention: K/V head rows must be contiguous");
        SIFT_CHECK(t->ne[0] == q.ne[0] && t->ne[1] == k.ne[1] && t->ne[2] >= in.cell_end,
                   "attention: K/V shape");
        // The kernels read F16/F32 K/V in 16-byte pieces (cp.async, uint4); Q8_0 rows are
        // checked where they are read (attention_vec_reads, kv_q8_0_to_f16).
        SIFT_CHECK(t->type == DType::Q8_0 ||
                       (aligned16(t->data, t->nb[1], t->nb[2]) && t->row_bytes() % 16 == 0),
                   "attention (CUDA): K/V rows must be whole, 16-byte aligned 16-byte chunks");
    }
    SIFT_CHECK(q.ne[0] <= 256, "attention (CUDA): head_dim {} above 256", q.ne[0]);
    SIFT_CHECK(k.ne[1] > 0 && q.ne[1] % k.ne[1] == 0, "attention: {} heads over {} KV heads",
               q.ne[1], k.ne[1]);
    SIFT_CHECK(0 <= in.cell_begin && in.cell_begin <= in.cell_end, "attention: cell range");
    SIFT_CHECK(in.cell_end - in.cell_begin < INT32_MAX && q.ne[2] < INT32_MAX, "attention: sizes");
    for (const Tensor* t : {&in.q_pos, &in.q_seq}) {
        SIFT_CHECK(t->type == DType::I32 && t->ne[0] == q.ne[2] && t->nb[0] == 4,
                   "attention: q_pos/q_seq must be I32 [T]");
    }
    for (const Tensor* t : {&in.cell_pos, &in.cell_seq}) {
        SIFT_CHECK(t->type == DType::I32 && t->ne[0] >= in.cell_end && t->nb[0] == 4,
                   "attention: cell_pos/cell_seq too short");
    }
    if (in.mask != nullptr) {
        SIFT_CHECK(in.mask->type == DType::F32 && in.mask->nb[0] == 4 &&
                       in.mask->ne[0] == in.cell_end - in.cell_begin && in.mask->ne[1] == q.ne[2],
                   "attention: mask must be F32 [cell_end - cell_begin, T]");
    }
    if (in.block_mask != nullptr) {
        // The query-block count (ne[1]) follows from positions that live on the device: the
        // caller vouches for it (ops.h contract); the kernels never index outside the mask.
        const Tensor& bm = *in.block_mask;
        SIFT_CHECK(in.mask_block == kBsaBlock, "attention (CUDA): block-sparse block must be {}",
                   kBsaBlock);
        SIFT_CHECK(bm.type == DType::I8 && bm.nb[0] == 1 && bm.nb[1] == bm.ne[0] &&
                       bm.nb[2] == bm.ne[0] * bm.ne[1] && bm.ne[3] == 1 &&
                       bm.ne[0] == (in.cell_end - in.cell_begin + kBsaBlock - 1) / kBsaBlock &&
                       bm.ne[1] > 0 && bm.ne[1] <= (q.ne[2] + 2 * kBsaBlock - 2) / kBsaBlock &&
                       bm.ne[2] == q.ne[1],
                   "attention: block_mask must be contiguous I8 [n_kblocks, n_qblocks, n_head]");
    }
}

}  // namespace

void cuda_attention(CudaContext& ctx, const AttentionInputs& in, const AttentionParams& params,
                    Tensor out) {
    check_inputs(in, out);
    AttnArgs a{};
    a.q = in.q.ptr<const float>();
    a.q_nb1 = in.q.nb[1];
    a.q_nb2 = in.q.nb[2];
    a.k = in.k.data;
    a.k_nb1 = in.k.nb[1];
    a.k_nb2 = in.k.nb[2];
    a.v = in.v.data;
    a.v_nb1 = in.v.nb[1];
    a.v_nb2 = in.v.nb[2];
    a.q_pos = in.q_pos.ptr<const int32_t>();
    a.q_seq = in.q_seq.ptr<const int32_t>();
    a.cell_pos = in.cell_pos.ptr<const int32_t>();
    a.cell_seq = in.cell_seq.ptr<const int32_t>();
    a.cell_begin = in.cell_begin;
    a.cell_end = in.cell_end;
    a.mask = in.mask != nullptr ? in.mask->ptr<const float>() : nullptr;
    a.mask_nb1 = in.mask != nullptr ? in.mask->nb[1] : 0;
    a.out = out.ptr<float>();
    a.out_nb1 = out.nb[1];
    a.out_nb2 = out.nb[2];
    a.head_dim = static_cast<int>(in.q.ne[0]);
    a.n_head = static_cast<int>(in.q.ne[1]);
    a.n_head_kv = static_cast<int>(in.k.ne[1]);
    a.group = a.n_head / a.n_head_kv;
    a.n_tokens = static_cast<int>(in.q.ne[2]);
    a.scale = params.scale;
    a.softcap = params.softcap;
    a.window = params.window;
    a.block_mask = in.block_mask != nullptr ? in.block_mask->ptr<const int8_t>() : nullptr;
    a.n_kblocks = in.block_mask != nullptr ? static_cast<int>(in.block_mask->ne[0]) : 0;
    a.n_qblocks = in.block_mask != nullptr ? static_cast<int>(in.block_mask->ne[1]) : 0;
    if (a.n_tokens == 0 || a.n_head == 0) return;

    const AttnPlan plan = attention_select(ctx, in, a);
    if (plan.kernel == AttnKernel::ATTN_Q8_TO_F16) {
        return cuda_attention(ctx, kv_q8_0_to_f16(ctx, in, true), params, out);  // now F16/F32
    }
    if (plan.kernel == AttnKernel::ATTN_MMA) {
        const int n_cells = static_cast<int>(a.cell_end - a.cell_begin);
        const int n_spans = (n_cells + kSpanCells - 1) / kSpanCells;
        auto* spans = static_cast<CellSpan*>(
            ctx.scratch_a.get(std::max<size_t>(1, n_spans) * sizeof(CellSpan)));
        if (n_spans > 0) {
            launch_pdl(ctx, &cell_spans_kernel, dim3(grid_1d(n_spans, 8)), dim3(256), 0, a.cell_pos,
                       a.cell_seq, a.cell_begin, a.cell_end, n_spans, spans);
        }
        a.spans = spans;
        MmaSplit split{plan.split_from, plan.n_split, nullptr};
        const int n_heavy = attention_mma_qblocks(a) - plan.split_from;
        if (n_heavy > 0) {
            split.partial = static_cast<float*>(
                ctx.scratch_b.get(static_cast<size_t>(n_heavy) * kBsaBlock * a.n_head *
                                  plan.n_split * (a.head_dim + 2) * sizeof(float)));
        }
        attention_mma_launch(ctx, a, split);
        if (n_heavy > 0) {
            // Partial row r of a heavy query block is token split_from * 128 + r, less the
            // block-sparse offset of the batch's first position (read on the device).
            launch_pdl(ctx, &attention_combine_kernel,
                       dim3(static_cast<unsigned>(n_heavy) * kBsaBlock * a.n_head), dim3(128),
                       plan.n_split * sizeof(float),
                       PartialRows{plan.split_from * kBsaBlock,
                                   a.block_mask != nullptr ? a.q_pos : nullptr, a.n_tokens},
                       split.partial, plan.n_split, a.head_dim, a.n_head, a.out, a.out_nb1,
                       a.out_nb2);
        }
        return;
    }
    float* partial = nullptr;
    if (plan.n_split > 1) {
        partial =
            static_cast<float*>(ctx.scratch_a.get(static_cast<size_t>(a.n_tokens) * a.n_head *
                                                  plan.n_split * (a.head_dim + 2) * sizeof(float)));
    }
    attention_vec_launch(ctx, a, in.k.type, in.v.type, plan.n_split, plan.tiles_per_split, partial);
    if (plan.n_split > 1) {
        launch_pdl(ctx, &attention_combine_kernel,
                   dim3(static_cast<unsigned>(a.n_tokens) * a.n_head), dim3(128),
                   plan.n_split * sizeof(float), PartialRows{0, nullptr, a.n_tokens}, partial,
                   plan.n_split, a.head_dim, a.n_head, a.out, a.out_nb1, a.out_nb2);
    }
}

}  // namespace sift::cuda

// Fused CPU attention kernels: 4-row x 16-column register blocks written with GCC vector
// extensions, compiled in several ISA variants selected at run time (target_clones), so one
// binary uses AVX2/AVX-512 where present and still runs on any x86-64.
#include "model/attention_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEUROBOLT_ISA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NEUROBOLT_ISA_CLONES
#endif
#define NEUROBOLT_INLINE inline __attribute__((always_inline))

namespace neurobolt::detail {
namespace {

// Eight floats as one value: GCC/Clang vector extensions map it to one AVX register, or two SSE
// registers in the baseline clone. `vf8u` is the unaligned-memory view of it.
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t vi8 __attribute__((vector_size(32)));

constexpr int kRows = 4;    // query rows per register block
constexpr int kLanes = 16;  // key columns per register block (two vf8)

int64_t padded(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

NEUROBOLT_INLINE vf8 load(const float* p) { return *reinterpret_cast<const vf8u*>(p); }
NEUROBOLT_INLINE void store(float* p, vf8 v) { *reinterpret_cast<vf8u*>(p) = v; }
// `vf8{} + x` costs a scalar add before each broadcast (0 + x is not x for x = -0), but keeps
// GCC from hoisting the 4 x d broadcasts of the register blocks out of their column loops and
// spilling them: the plain {x, x, ...} form made the forward 19 % and the backward 85 % slower.
NEUROBOLT_INLINE vf8 broadcast(float x) { return vf8{} + x; }
NEUROBOLT_INLINE float hsum(vf8 v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}
NEUROBOLT_INLINE float hmax(vf8 v) {
  float m = v[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, v[i]);
  return m;
}

// exp(x) for x <= 0 (softmax inputs after subtracting the row maximum), Cephes-style 2^n p(r)
// with a degree-6 polynomial, branch-free on whole vectors. Max relative error ~2 ulp.
NEUROBOLT_INLINE vf8 exp_nonpositive(vf8 x) {
  x = x < -87.0f ? broadcast(-87.0f) : x;
  const vi8 ni = __builtin_convertvector(x * 1.44269504088896341f - 0.5f, vi8);  // round(x log2 e), x <= 0
  const vf8 n = __builtin_convertvector(ni, vf8);
  vf8 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf8 p = broadcast(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const vi8 bits = (ni + 127) << 23;
  vf8 two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return p * two_n;
}

// out[r][j] = sum_t a[r][t] * bt[t][j] for 4 rows, j < np (bt is d x np).
NEUROBOLT_INLINE void rows_times(const float* a, const float* bt, int64_t d, int64_t np, float* out) {
  for (int64_t j = 0; j < np; j += kLanes) {
    vf8 acc[kRows][2] = {};
    for (int64_t t = 0; t < d; ++t) {
      const vf8 b0 = load(bt + t * np + j), b1 = load(bt + t * np + j + 8);
      for (int r = 0; r < kRows; ++r) {
        const vf8 av = broadcast(a[r * d + t]);
        acc[r][0] += av * b0;
        acc[r][1] += av * b1;
      }
    }
    for (int r = 0; r < kRows; ++r) {
      store(out + r * np + j, acc[r][0]);
      store(out + r * np + j + 8, acc[r][1]);
    }
  }
}

// out[r][t] = sum_j p[r][j] * bt[t][j] for 4 rows (p is 4 x np, bt is d x np).
NEUROBOLT_INLINE void rows_dot(const float* p, const float* bt, int64_t d, int64_t np, float* out) {
  int64_t t = 0;
  for (; t + 1 < d; t += 2) {
    vf8 acc[kRows][2] = {};
    const float* b0 = bt + t * np;
    const float* b1 = b0 + np;
    for (int64_t j = 0; j < np; j += 8) {
      const vf8 x0 = load(b0 + j), x1 = load(b1 + j);
      for (int r = 0; r < kRows; ++r) {
        const vf8 pr = load(p + r * np + j);
        acc[r][0] += pr * x0;
        acc[r][1] += pr * x1;
      }
    }
    for (int r = 0; r < kRows; ++r) {
      out[r * d + t] = hsum(acc[r][0]);
      out[r * d + t + 1] = hsum(acc[r][1]);
    }
  }
  for (; t < d; ++t) {
    vf8 acc[kRows] = {};
    const float* b0 = bt + t * np;
    for (int64_t j = 0; j < np; j += 8) {
      const vf8 x0 = load(b0 + j);
      for (int r = 0; r < kRows; ++r) acc[r] += load(p + r * np + j) * x0;
    }
    for (int r = 0; r < kRows; ++r) out[r * d + t] = hsum(acc[r]);
  }
}

// acct[t][j] += sum_r coef[r][t] * p[r][j] (acct is d x np).
NEUROBOLT_INLINE void accumulate_outer(const float* coef, const float* p, int64_t d, int64_t np, float* acct) {
  for (int64_t j = 0; j < np; j += 8) {
    vf8 pr[kRows];
    for (int r = 0; r < kRows; ++r) pr[r] = load(p + r * np + j);
    for (int64_t t = 0; t < d; ++t) {
      float* o = acct + t * np + j;
      vf8 acc = load(o);
      for (int r = 0; r < kRows; ++r) acc += broadcast(coef[r * d + t]) * pr[r];
      store(o, acc);
    }
  }
}

// src [n x d] with row stride `stride` -> dst [d x np], zero-padded columns.
NEUROBOLT_INLINE void transpose_padded(const float* src, int64_t stride, int64_t n, int64_t d, int64_t np, float* dst) {
  std::fill(dst, dst + d * np, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < d; ++t) dst[t * np + i] = src[i * stride + t];
  }
}

// Copies up to 4 rows [i0, i0+4) of an [n x d] array with row stride `stride` (times `scale`),
// zero-filling past n.
NEUROBOLT_INLINE void load_rows(const float* src, int64_t stride, int64_t i0, int64_t n, int64_t d, float scale,
                                float* dst) {
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = i0 + r;
    for (int64_t t = 0; t < d; ++t) dst[r * d + t] = i < n ? src[i * stride + t] * scale : 0.0f;
  }
}

// Turns 4 rows of scores into probabilities. Without `lse_in`: exp(s - max), leaving each row's
// 1 / sum in inv_sum_out (the caller scales the row's output instead of its np probabilities)
// and its log-sum-exp in lse_out. With `lse_in`: exp(s - lse), the backward's recomputation,
// already normalised. Padding columns (j >= n) and rows become 0.
NEUROBOLT_INLINE void softmax_rows(float* s, int64_t n, int64_t np, int rows_valid, const float* lse_in,
                                   float* lse_out, float* inv_sum_out) {
  for (int r = 0; r < kRows; ++r) {
    float* row = s + r * np;
    if (r >= rows_valid) {
      std::fill(row, row + np, 0.0f);
      if (!lse_in) inv_sum_out[r] = 0.0f;
      continue;
    }
    float shift;
    if (lse_in) {
      shift = lse_in[r];
    } else {
      std::fill(row + n, row + np, -std::numeric_limits<float>::infinity());
      vf8 m = broadcast(-std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < np; j += 8) {
        const vf8 x = load(row + j);
        m = x > m ? x : m;
      }
      shift = hmax(m);
    }
    const vf8 shift_v = broadcast(shift);
    // The padding's exp(-87) ~ 2e-38 joins the sum, which is at least 1 (the maximum's exp(0)):
    // absorbed; the stored padding is zeroed after.
    vf8 sum = {};
    for (int64_t j = 0; j < np; j += 8) {
      const vf8 e = exp_nonpositive(load(row + j) - shift_v);
      sum += e;
      store(row + j, e);
    }
    std::fill(row + n, row + np, 0.0f);
    if (lse_in) continue;
    const float total = hsum(sum);
    inv_sum_out[r] = 1.0f / total;
    lse_out[r] = shift + std::log(total);
  }
}

}  // namespace

NEUROBOLT_ISA_CLONES
void attention_forward_cpu(const AttentionShape& shape, ConstHeads q, ConstHeads k, ConstHeads v, Heads out, float* lse,
                           int64_t begin, int64_t end) {
  const int64_t n = shape.tokens, d = shape.head_dim, np = padded(n);
  std::vector<float> kt(d * np), vt(d * np), qs(kRows * d), s(kRows * np), o(kRows * d);
  float lse_block[kRows], inv_sum[kRows];
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / shape.heads, h = bh % shape.heads;
    transpose_padded(k.row(b, h), k.token, n, d, np, kt.data());
    transpose_padded(v.row(b, h), v.token, n, d, np, vt.data());
    float* out_head = out.row(b, h);
    for (int64_t i0 = 0; i0 < n; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, n - i0));
      load_rows(q.row(b, h), q.token, i0, n, d, shape.scale, qs.data());
      rows_times(qs.data(), kt.data(), d, np, s.data());
      softmax_rows(s.data(), n, np, rows, nullptr, lse_block, inv_sum);
      rows_dot(s.data(), vt.data(), d, np, o.data());
      for (int r = 0; r < rows; ++r) {
        float* out_row = out_head + (i0 + r) * out.token;
        for (int64_t t = 0; t < d; ++t) out_row[t] = o[r * d + t] * inv_sum[r];
        lse[bh * n + i0 + r] = lse_block[r];
      }
    }
  }
}

NEUROBOLT_ISA_CLONES
void attention_backward_cpu(const AttentionShape& shape, ConstHeads q, ConstHeads k, ConstHeads v, ConstHeads out,
                            const float* lse, ConstHeads grad_out, Heads grad_q, Heads grad_k, Heads grad_v,
                            int64_t begin, int64_t end) {
  const int64_t n = shape.tokens, d = shape.head_dim, np = padded(n);
  std::vector<float> kt(d * np), vt(d * np), dkt(d * np), dvt(d * np);
  std::vector<float> qs(kRows * d), go(kRows * d), p(kRows * np), dp(kRows * np), dqs(kRows * d);
  float lse_block[kRows], delta[kRows];
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / shape.heads, h = bh % shape.heads;
    transpose_padded(k.row(b, h), k.token, n, d, np, kt.data());
    transpose_padded(v.row(b, h), v.token, n, d, np, vt.data());
    std::fill(dkt.begin(), dkt.end(), 0.0f);
    std::fill(dvt.begin(), dvt.end(), 0.0f);
    const float* out_head = out.row(b, h);
    float* dq_head = grad_q.row(b, h);
    for (int64_t i0 = 0; i0 < n; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, n - i0));
      load_rows(q.row(b, h), q.token, i0, n, d, shape.scale, qs.data());
      load_rows(grad_out.row(b, h), grad_out.token, i0, n, d, 1.0f, go.data());
      for (int r = 0; r < kRows; ++r) {
        lse_block[r] = r < rows ? lse[bh * n + i0 + r] : 0.0f;
        // delta_i = sum_t dO_it O_it = sum_j P_ij dP_ij (softmax backward's row term)
        float sum = 0.0f;
        if (r < rows) {
          for (int64_t t = 0; t < d; ++t) sum += go[r * d + t] * out_head[(i0 + r) * out.token + t];
        }
        delta[r] = sum;
      }
      rows_times(qs.data(), kt.data(), d, np, p.data());
      softmax_rows(p.data(), n, np, rows, lse_block, nullptr, nullptr);
      accumulate_outer(go.data(), p.data(), d, np, dvt.data());  // dV^T += dO^T P
      rows_times(go.data(), vt.data(), d, np, dp.data());        // dP = dO V^T
      for (int r = 0; r < kRows; ++r) {  // dS = P (dP - delta), 0 on padding
        float* ds = dp.data() + r * np;
        const float* pr = p.data() + r * np;
        const vf8 dr = broadcast(delta[r]);
        for (int64_t j = 0; j < np; j += 8) store(ds + j, load(pr + j) * (load(ds + j) - dr));
      }
      rows_dot(dp.data(), kt.data(), d, np, dqs.data());          // dQs = dS K
      accumulate_outer(qs.data(), dp.data(), d, np, dkt.data());  // dK^T += Qs^T dS
      for (int r = 0; r < rows; ++r) {
        for (int64_t t = 0; t < d; ++t) dq_head[(i0 + r) * grad_q.token + t] = dqs[r * d + t] * shape.scale;
      }
    }
    float* dk_head = grad_k.row(b, h);
    float* dv_head = grad_v.row(b, h);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t t = 0; t < d; ++t) {
        dk_head[i * grad_k.token + t] = dkt[t * np + i];
        dv_head[i * grad_v.token + t] = dvt[t * np + i];
      }
    }
  }
}

}  // namespace neurobolt::detail

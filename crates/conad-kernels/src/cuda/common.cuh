// Shared definitions of conad's CUDA kernels. Prepended to every kernel source before NVRTC
// compiles it (NVRTC gets no include path), so keep it self-contained: no system headers.
//
// Tiles: a block of 256 threads (16 x 16) computes a 64 x 64 tile of dot products, each thread
// a 4 x 4 micro-tile at rows ty + 16 i, columns tx + 16 j, with the depth d streamed through
// shared memory in slabs of 32. Every sum runs in a fixed order, so results do not depend on
// scheduling.

#define TILE 64
#define KCHUNK 32
#define THREADS 256

// Rule codes (crate::rules::{PositiveRule, Denominator}::code, PositiveReduction::code).
#define POS_SAME_INSTANCE 0
#define POS_SAME_LABEL 1
#define POS_INSTANCE_OR_INLIER_LABEL 2
#define DEN_ALL_OTHERS 0
#define DEN_NO_SAME_LABEL_NEGATIVES 1
#define RED_MEAN_LOG_PROB 0
#define RED_LOG_SUM_PROB 1
#define RED_LOG_MEAN_PROB 2

typedef long long i64;

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

// (valid, positive) of key (ki, kl) for anchor (ai, al); the anchor itself is never valid.
// Mirrors crate::rules::MaskRules::pair.
__device__ __forceinline__ void pair_mask(i64 ai, i64 al, i64 ki, i64 kl, bool is_self,
                                          int pos_rule, int den_rule, bool &valid, bool &pos) {
    const bool same_inst = ai == ki;
    const bool same_lab = al == kl;
    bool rule;
    if (pos_rule == POS_SAME_INSTANCE) {
        rule = same_inst;
    } else if (pos_rule == POS_SAME_LABEL) {
        rule = same_lab;
    } else {
        rule = same_inst || (same_lab && al >= 0);
    }
    bool v = !is_self;
    if (den_rule == DEN_NO_SAME_LABEL_NEGATIVES) {
        v = v && (rule || !same_lab);
    }
    valid = v;
    pos = v && rule;
}

// acc[i][j] = A[a0 + ty + 16 i] . B[b0 + tx + 16 j] (0 outside the matrices).
// A is a_rows x d, B is b_rows x d, both row-major. Ends with __syncthreads().
__device__ __forceinline__ void tile_dots(const float *__restrict__ A, int a_rows, int a0,
                                          const float *__restrict__ B, int b_rows, int b0, int d,
                                          float (*As)[TILE + 1], float (*Bs)[TILE + 1],
                                          float acc[4][4]) {
    const int tid = threadIdx.x;
    const int tx = tid % 16;
    const int ty = tid / 16;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            acc[i][j] = 0.0f;
        }
    }
    for (int k0 = 0; k0 < d; k0 += KCHUNK) {
        for (int idx = tid; idx < TILE * KCHUNK; idx += THREADS) {
            const int r = idx / KCHUNK;
            const int kk = idx % KCHUNK;
            const int gk = k0 + kk;
            const int ga = a0 + r;
            const int gb = b0 + r;
            As[kk][r] = (ga < a_rows && gk < d) ? A[(i64)ga * d + gk] : 0.0f;
            Bs[kk][r] = (gb < b_rows && gk < d) ? B[(i64)gb * d + gk] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < KCHUNK; ++kk) {
            float a[4];
            float b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                a[i] = As[kk][ty + 16 * i];
                b[i] = Bs[kk][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }
}

// Sum / max over the 4 consecutive lanes that share a row (butterfly: every lane gets the same
// bits, since each step adds the same two values in either order).
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}

__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
    return x;
}

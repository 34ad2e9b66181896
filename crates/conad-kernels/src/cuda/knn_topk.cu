// kNN max-cosine top-k for the scorers' GPU path (docs/reference.md §2.2: s(x) from the k most
// similar training features; inputs are L2-normalised, so dot products are cosines).
//
// knn_topk_partial: one block per 64 queries walks the bank in tiles of 64 rows; the 64 x 64
// similarity tile goes through shared memory, and four threads per query each keep a sorted
// top-k list (registers / local memory) over their 16 columns of every tile.
// knn_topk_merge: one thread per query merges its four lists.
// Order: larger similarity first; equal similarities by smaller bank index — deterministic.

#define KMAX 32

__device__ __forceinline__ bool knn_better(float v, int i, float w, int j) {
    return v > w || (v == w && i < j);
}

extern "C" __global__ void knn_topk_partial(
    const float *__restrict__ queries, int nq,
    const float *__restrict__ bank, int nb, int d, int k,
    float *__restrict__ part_val, int *__restrict__ part_idx) {   // nq x 4 x k
    __shared__ float As[KCHUNK][TILE + 1];
    __shared__ float Bs[KCHUNK][TILE + 1];
    __shared__ float S[TILE][TILE + 1];

    const int tid = threadIdx.x;
    const int tx = tid % 16;
    const int ty = tid / 16;
    const int q0 = blockIdx.x * TILE;
    const int prow = tid / 4;
    const int part = tid % 4;

    float best_v[KMAX];
    int best_i[KMAX];
    int cnt = 0;

    for (int b0 = 0; b0 < nb; b0 += TILE) {
        float acc[4][4];
        tile_dots(queries, nq, q0, bank, nb, b0, d, As, Bs, acc);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int j = 0; j < 4; ++j) S[ty + 16 * i][tx + 16 * j] = acc[i][j];
        }
        __syncthreads();
        const int cols = min(TILE, nb - b0);
        for (int t = 0; t < 16; ++t) {
            const int c = part * 16 + t;
            if (c >= cols) break;
            const float v = S[prow][c];
            const int idx = b0 + c;
            if (cnt < k || knn_better(v, idx, best_v[k - 1], best_i[k - 1])) {
                int p = cnt < k ? cnt : k - 1;
                while (p > 0 && knn_better(v, idx, best_v[p - 1], best_i[p - 1])) {
                    best_v[p] = best_v[p - 1];
                    best_i[p] = best_i[p - 1];
                    --p;
                }
                best_v[p] = v;
                best_i[p] = idx;
                if (cnt < k) ++cnt;
            }
        }
        __syncthreads();
    }

    const int q = q0 + prow;
    if (q < nq) {
        const i64 base = ((i64)q * 4 + part) * k;
        for (int t = 0; t < k; ++t) {
            part_val[base + t] = t < cnt ? best_v[t] : neg_inf();
            part_idx[base + t] = t < cnt ? best_i[t] : -1;
        }
    }
}

extern "C" __global__ void knn_topk_merge(
    const float *__restrict__ part_val, const int *__restrict__ part_idx, int nq, int k,
    float *__restrict__ out_val, int *__restrict__ out_idx) {
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= nq) return;
    const i64 base = (i64)q * 4 * k;
    int head[4] = {0, 0, 0, 0};
    for (int t = 0; t < k; ++t) {
        int best = -1;
        float bv = neg_inf();
        int bi = -1;
        for (int p = 0; p < 4; ++p) {
            if (head[p] >= k) continue;
            const i64 o = base + (i64)p * k + head[p];
            const int idx = part_idx[o];
            if (idx < 0) continue;
            const float v = part_val[o];
            if (best < 0 || knn_better(v, idx, bv, bi)) {
                best = p;
                bv = v;
                bi = idx;
            }
        }
        out_val[(i64)q * k + t] = bv;
        out_idx[(i64)q * k + t] = bi;
        if (best >= 0) head[best] += 1;
    }
}

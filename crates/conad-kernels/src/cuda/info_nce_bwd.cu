// Fused masked multi-positive InfoNCE, backward (docs/reference.md §0 "The generic kernel").
//
// One gradient pass over the rows R of one matrix against the columns C of another (or the
// same) matrix: out_r = (1/tau) sum_c H_rc C_c with
//   H_rc = G(r -> c) [rows are anchors]  +  G(c -> r) [columns are anchors],
//   G(i -> j) = a_i [j valid for i] e^{s_ij - lse_i} - b_i [j positive for i] w_ij,
// w_ij = 1 (L_out, b_i = g_i/|P(i)|) or e^{s_ij - lse+_i} (L_in, b_i = g_i).
// Shared z: one pass with both terms gives dz. Separate q, k: rows = q with the row term gives
// dq; rows = k with the column term (columns = q) gives dk. Every mask rule is symmetric, so
// one mask evaluation serves both terms.
//
// One block owns 64 rows of `out` and walks all column tiles in order: the logit tile is
// recomputed (tile_dots), H is formed in shared memory, and out += H . C_tile is accumulated by
// the owning threads only — no atomics, deterministic.

// Per-anchor coefficients from the gradient of the op's output (one thread per row of the
// full row range; zeros for rows that are not anchors or have no positive).
extern "C" __global__ void info_nce_coefs(
    const float *__restrict__ grad, int grad_is_scalar, double grad_scale,
    const unsigned int *__restrict__ counts, const float *__restrict__ lse,
    const float *__restrict__ lse_pos, int m, int n_total, int reduction,
    float *__restrict__ a, float *__restrict__ b, float *__restrict__ l,
    float *__restrict__ lp) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_total) return;
    if (i >= m || counts[i] == 0) {
        a[i] = 0.0f;
        b[i] = 0.0f;
        l[i] = 0.0f;
        lp[i] = 0.0f;
        return;
    }
    const double g = grad_is_scalar ? (double)grad[0] * grad_scale : (double)grad[i];
    a[i] = (float)g;
    b[i] = (float)(reduction == RED_MEAN_LOG_PROB ? g / (double)counts[i] : g);
    l[i] = lse[i];
    lp[i] = lse_pos[i];
}

extern "C" __global__ void info_nce_bwd(
    const float *__restrict__ R, int n_rows,          // rows, n_rows x d
    const float *__restrict__ C, int n_cols, int d,   // columns, n_cols x d
    const i64 *__restrict__ r_inst, const i64 *__restrict__ r_lab,
    const i64 *__restrict__ c_inst, const i64 *__restrict__ c_lab,
    int row_terms, const float *__restrict__ ra, const float *__restrict__ rb,
    const float *__restrict__ rl, const float *__restrict__ rlp,
    int col_terms, const float *__restrict__ ca, const float *__restrict__ cb,
    const float *__restrict__ cl, const float *__restrict__ clp,
    int shared_rows, int pos_rule, int den_rule, int log_sum, float inv_tau,
    float *__restrict__ out) {
    __shared__ float As[KCHUNK][TILE + 1];
    __shared__ float Bs[KCHUNK][TILE + 1];
    __shared__ float H[TILE][TILE + 1];
    __shared__ i64 col_inst[TILE];
    __shared__ i64 col_lab[TILE];
    __shared__ float col_a[TILE];
    __shared__ float col_b[TILE];
    __shared__ float col_l[TILE];
    __shared__ float col_lp[TILE];

    const int tid = threadIdx.x;
    const int tx = tid % 16;
    const int ty = tid / 16;
    const int r0 = blockIdx.x * TILE;

    // This thread's four rows (ty + 16 i): ids and anchor coefficients.
    i64 my_inst[4];
    i64 my_lab[4];
    float my_a[4];
    float my_b[4];
    float my_l[4];
    float my_lp[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int r = r0 + ty + 16 * i;
        const bool in = r < n_rows;
        my_inst[i] = in ? r_inst[r] : 0;
        my_lab[i] = in ? r_lab[r] : 0;
        my_a[i] = (in && row_terms) ? ra[r] : 0.0f;
        my_b[i] = (in && row_terms) ? rb[r] : 0.0f;
        my_l[i] = (in && row_terms) ? rl[r] : 0.0f;
        my_lp[i] = (in && row_terms) ? rlp[r] : 0.0f;
    }

    for (int c0 = 0; c0 < n_cols; c0 += TILE) {
        float acc[4][4];
        tile_dots(R, n_rows, r0, C, n_cols, c0, d, As, Bs, acc);
        if (tid < TILE) {
            const int c = c0 + tid;
            const bool in = c < n_cols;
            col_inst[tid] = in ? c_inst[c] : 0;
            col_lab[tid] = in ? c_lab[c] : 0;
            col_a[tid] = (in && col_terms) ? ca[c] : 0.0f;
            col_b[tid] = (in && col_terms) ? cb[c] : 0.0f;
            col_l[tid] = (in && col_terms) ? cl[c] : 0.0f;
            col_lp[tid] = (in && col_terms) ? clp[c] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int rl_ = ty + 16 * i;
                const int cl_ = tx + 16 * j;
                const int r = r0 + rl_;
                const int c = c0 + cl_;
                float h = 0.0f;
                if (r < n_rows && c < n_cols) {
                    const float s = acc[i][j] * inv_tau;
                    bool v;
                    bool p;
                    pair_mask(my_inst[i], my_lab[i], col_inst[cl_], col_lab[cl_],
                              shared_rows && r == c, pos_rule, den_rule, v, p);
                    if (row_terms) {
                        if (v) h += my_a[i] * expf(fminf(s - my_l[i], 0.0f));
                        if (p) h -= my_b[i] * (log_sum ? expf(fminf(s - my_lp[i], 0.0f)) : 1.0f);
                    }
                    if (col_terms) {
                        if (v) h += col_a[cl_] * expf(fminf(s - col_l[cl_], 0.0f));
                        if (p) h -= col_b[cl_] * (log_sum ? expf(fminf(s - col_lp[cl_], 0.0f)) : 1.0f);
                    }
                }
                H[rl_][cl_] = h;
            }
        }
        __syncthreads();

        // out[r0 .. r0 + 64, :] (+)= inv_tau * H . C[c0 .. c0 + 64, :], 64 output columns at a
        // time; C's slab lives in As (columns 0..31 of the tile) and Bs (32..63).
        for (int e0 = 0; e0 < d; e0 += TILE) {
            for (int idx = tid; idx < TILE * TILE; idx += THREADS) {
                const int c = idx / TILE;
                const int e = idx % TILE;
                const int gc = c0 + c;
                const int ge = e0 + e;
                const float val = (gc < n_cols && ge < d) ? C[(i64)gc * d + ge] : 0.0f;
                if (c < KCHUNK) {
                    As[c][e] = val;
                } else {
                    Bs[c - KCHUNK][e] = val;
                }
            }
            __syncthreads();
            float sum[4][4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) sum[i][j] = 0.0f;
            }
            for (int c = 0; c < TILE; ++c) {
                float h4[4];
                float c4[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    h4[i] = H[ty + 16 * i][c];
                    c4[i] = c < KCHUNK ? As[c][tx + 16 * i] : Bs[c - KCHUNK][tx + 16 * i];
                }
#pragma unroll
                for (int i = 0; i < 4; ++i) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) sum[i][j] = fmaf(h4[i], c4[j], sum[i][j]);
                }
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int r = r0 + ty + 16 * i;
                    const int e = e0 + tx + 16 * j;
                    if (r < n_rows && e < d) {
                        const i64 o = (i64)r * d + e;
                        const float add = inv_tau * sum[i][j];
                        out[o] = c0 == 0 ? add : out[o] + add;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// Fused masked multi-positive InfoNCE, forward (docs/reference.md §0 "The generic kernel").
//
// One block per 64 anchors. For every tile of 64 keys the block computes the 64 x 64 logits
// s = q.k / tau, builds the masks from ids in registers, and folds the tile into a streaming
// log-sum-exp per anchor (running max + rescaled sum), plus the positives' logit sum (L_out)
// or the positives' own streaming log-sum-exp (L_in). The logit matrix is never stored: the
// kernel writes, per anchor, its loss, lse and (for L_in) lse over positives.
// Four consecutive threads own one anchor row of a tile (16 columns each) and combine their
// partial results with butterfly shuffles.

extern "C" __global__ void info_nce_fwd(
    const float *__restrict__ q, int m,             // anchors, m x d
    const float *__restrict__ k, int n, int d,      // keys, n x d
    const i64 *__restrict__ q_inst, const i64 *__restrict__ q_lab,
    const i64 *__restrict__ k_inst, const i64 *__restrict__ k_lab,
    const unsigned int *__restrict__ counts,        // |P(i)| per anchor
    int shared_rows,                                // key row i is anchor i itself
    int pos_rule, int den_rule, int reduction, float inv_tau,
    float *__restrict__ loss, float *__restrict__ lse_out, float *__restrict__ lse_pos_out) {
    __shared__ float As[KCHUNK][TILE + 1];
    __shared__ float Bs[KCHUNK][TILE + 1];
    __shared__ float S[TILE][TILE + 1];
    __shared__ i64 key_inst[TILE];
    __shared__ i64 key_lab[TILE];

    const int tid = threadIdx.x;
    const int tx = tid % 16;
    const int ty = tid / 16;
    const int a0 = blockIdx.x * TILE;
    const int prow = tid / 4;   // row of the tile this thread reduces
    const int part = tid % 4;   // which 16 columns
    const int arow = a0 + prow;
    const bool active = arow < m && counts[arow] > 0;
    const i64 ai = arow < m ? q_inst[arow] : 0;
    const i64 al = arow < m ? q_lab[arow] : 0;
    const bool pos_lse = reduction != RED_MEAN_LOG_PROB;

    float mx = neg_inf();
    float sm = 0.0f;
    float pmx = neg_inf();
    float psm = 0.0f;
    float plogit = 0.0f;

    for (int k0 = 0; k0 < n; k0 += TILE) {
        float acc[4][4];
        tile_dots(q, m, a0, k, n, k0, d, As, Bs, acc);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                S[ty + 16 * i][tx + 16 * j] = acc[i][j] * inv_tau;
            }
        }
        if (tid < TILE) {
            const int c = k0 + tid;
            key_inst[tid] = c < n ? k_inst[c] : 0;
            key_lab[tid] = c < n ? k_lab[c] : 0;
        }
        __syncthreads();

        const int cols = min(TILE, n - k0);
        bool valid[16];
        bool pos[16];
        float tmax = neg_inf();
        float pmax = neg_inf();
#pragma unroll
        for (int t = 0; t < 16; ++t) {
            const int c = part * 16 + t;
            bool v = false;
            bool p = false;
            if (active && c < cols) {
                pair_mask(ai, al, key_inst[c], key_lab[c], shared_rows && (k0 + c == arow),
                          pos_rule, den_rule, v, p);
            }
            valid[t] = v;
            pos[t] = p;
            const float s = S[prow][c];
            if (v) tmax = fmaxf(tmax, s);
            if (p) pmax = fmaxf(pmax, s);
        }
        tmax = quad_max(tmax);
        pmax = quad_max(pmax);
        const float new_max = fmaxf(mx, tmax);
        const float new_pmax = fmaxf(pmx, pmax);
        float tsum = 0.0f;
        float psum_tile = 0.0f;
        float plog_tile = 0.0f;
#pragma unroll
        for (int t = 0; t < 16; ++t) {
            const int c = part * 16 + t;
            const float s = S[prow][c];
            if (valid[t]) tsum += expf(fminf(s - new_max, 0.0f));
            if (pos[t]) {
                if (pos_lse) {
                    psum_tile += expf(fminf(s - new_pmax, 0.0f));
                } else {
                    plog_tile += s;
                }
            }
        }
        tsum = quad_sum(tsum);
        psum_tile = quad_sum(psum_tile);
        plog_tile = quad_sum(plog_tile);
        if (tmax != neg_inf()) {
            sm = sm * expf(mx - new_max) + tsum;
            mx = new_max;
        }
        if (pmax != neg_inf()) {
            psm = psm * expf(pmx - new_pmax) + psum_tile;
            pmx = new_pmax;
        }
        plogit += plog_tile;
        __syncthreads();
    }

    if (part == 0 && arow < m) {
        float value = 0.0f;
        float l = 0.0f;
        float lp = 0.0f;
        if (active) {
            const float cnt = (float)counts[arow];
            l = mx + logf(sm);
            if (reduction == RED_MEAN_LOG_PROB) {
                value = l - plogit / cnt;
            } else {
                lp = pmx + logf(psm);
                value = l - lp;
                if (reduction == RED_LOG_MEAN_PROB) value += logf(cnt);
            }
        }
        loss[arow] = value;
        lse_out[arow] = l;
        lse_pos_out[arow] = lp;
    }
}

// Mean of the per-anchor losses: one block of 256 threads, fixed-order double sums.
extern "C" __global__ void info_nce_mean(const float *__restrict__ loss, int m, double scale,
                                         float *__restrict__ out) {
    __shared__ double part[THREADS];
    const int tid = threadIdx.x;
    double s = 0.0;
    for (int i = tid; i < m; i += THREADS) s += (double)loss[i];
    part[tid] = s;
    __syncthreads();
    for (int w = THREADS / 2; w > 0; w /= 2) {
        if (tid < w) part[tid] += part[tid + w];
        __syncthreads();
    }
    if (tid == 0) out[0] = (float)(part[0] * scale);
}

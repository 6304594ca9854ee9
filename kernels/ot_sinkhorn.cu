// Log-domain Sinkhorn half-iterations on the GPU, templated on the float type (float / double).
// Compiled at run time by CuPy (cupy.RawModule); the source is embedded in optcore._core at
// build time. The host side is python/optcore/ot/_gpu/sinkhorn.py; python/optcore/ot/_gpu/launch.py
// lists every template instantiation it uses (KERNEL_EXPRESSIONS); python/optcore/ot/_gpu/emulate.py
// is a NumPy emulation of the same tiling, checked against the CPU solver in CI.
//
// A half-iteration updates the potential p of one side ("own": rows of M for the f update,
// columns for the g update) from the potential h of the other side:
//
//     L_r   = reg * LSE_s((h_s - C_rs) / reg)           (log-sum-exp over the other side)
//     p_sk  = reg * log(w_r) - L_r                       (the Sinkhorn update)
//     p_new = (1 - omega) p_old + omega p_sk             (over-relaxation; omega = 1: plain)
//
// and measures the marginal of the plan P_rs = exp((p_r + h_s - C_rs) / reg) on that side,
// sum_s P_rs = exp((p_r + L_r) / reg), for p = p_old or p = p_new, adding |sum - w_r| to an
// L1 error accumulator (one double per problem of the batch). The plan is never formed.
//
// Each pass is two launches: a *partial* kernel that streams the cost once and leaves, for
// each own index r and each of `nsplit` slices of the other side, the triple (m, s, c) of an
// online log-sum-exp (m the running max of x = (h - C) / reg, s = sum exp(x - m), c = sum
// exp(x - m) * C for the transport cost), and `sk_finalize`, which combines the slices and
// updates the potential. Partials are laid out [split][r].
//
//  * sk_dense_rows: f update on a row-major M; one warp per row and slice of columns, lanes
//    read consecutive entries (coalesced).
//  * sk_dense_cols: g update on the same row-major M without a transposed copy: a block of
//    32 x 8 threads covers 32 consecutive columns (coalesced 128-byte rows) and a slice of the
//    rows; the 8 row-groups are combined in shared memory.
//  * sk_online<T, D>: squared Euclidean cost computed on the fly from points x (n, D) and
//    y (m, D) (zero-padded to D); R own points per thread (R = 4, 2, 1 as D grows), the other
//    side's points staged through shared memory in tiles of 32; used for both
//    half-iterations (swap x and y).
//
// A batch of B problems of the same size runs in one launch: problem b reads
// M + b * m_stride (m_stride = 0: one M shared by all, e.g. k target histograms), its weights
// at w + b * w_stride, and its potentials at b * len.
//
// Accumulation: x, m and the exponentials are in T; sums are flushed to double every few
// terms (float32 sums of thousands of terms would lose the 1e-6 relative accuracy that the
// marginal error needs), and the error/cost reductions are in double.

template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double neg_inf<double>() { return __longlong_as_double(0xfff0000000000000LL); }

// exp_t: accurate exponentials (plan entries). fexp_t: those of the streaming sums; in float it
// is the hardware ex2 (__expf, two instructions instead of about ten): its relative error,
// about 2^-21 plus 2^-24 |x|, matters only for terms far below the largest of a sum.
__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float fexp_t(float x) { return __expf(x); }
__device__ __forceinline__ double fexp_t(double x) { return exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return log(x); }

// Online log-sum-exp state: s = sd + sf, c = cd + cf, both relative to exp(m).
template <typename T>
struct Lse {
    T m;
    T sf, cf;
    double sd, cd;
    __device__ __forceinline__ void init() { m = neg_inf<T>(); sf = cf = T(0); sd = cd = 0.0; }
    // Adds exp(x) (and exp(x) * cost when COST).
    template <bool COST>
    __device__ __forceinline__ void add(T x, T cost) {
        if (x > m) {
            // New maximum (also the first finite term: exp(-inf - x) = 0).
            const T r = fexp_t(m - x);
            sf = sf * r + T(1);
            sd *= static_cast<double>(r);
            if (COST) { cf = cf * r + cost; cd *= static_cast<double>(r); }
            m = x;
        } else if (x > neg_inf<T>()) {
            const T e = fexp_t(x - m);
            sf += e;
            if (COST) cf += e * cost;
        }
    }
    __device__ __forceinline__ void flush() {
        sd += static_cast<double>(sf); sf = T(0);
        cd += static_cast<double>(cf); cf = T(0);
    }
};

// Merges (m2, s2, c2) into (m1, s1, c1) (doubles, m in T units).
template <typename T>
__device__ __forceinline__ void lse_merge(T& m1, double& s1, double& c1, T m2, double s2, double c2) {
    if (m2 == neg_inf<T>()) return;
    if (m1 == neg_inf<T>()) { m1 = m2; s1 = s2; c1 = c2; return; }
    if (m2 > m1) {
        const double r = exp(static_cast<double>(m1) - static_cast<double>(m2));
        s1 = s1 * r + s2; c1 = c1 * r + c2; m1 = m2;
    } else {
        const double r = exp(static_cast<double>(m2) - static_cast<double>(m1));
        s1 += s2 * r; c1 += c2 * r;
    }
}

template <typename T>
__device__ __forceinline__ void warp_merge(T& m, double& s, double& c) {
    for (int off = 16; off > 0; off >>= 1) {
        const T m2 = __shfl_xor_sync(0xffffffffu, m, off);
        const double s2 = __shfl_xor_sync(0xffffffffu, s, off);
        const double c2 = __shfl_xor_sync(0xffffffffu, c, off);
        lse_merge(m, s, c, m2, s2, c2);
    }
}

// f update on a row-major M: one warp per (row, slice of columns); grid = (ceil(B * n / 8),
// nsplit) with 8 warps per block; slice y covers columns [y * chunk, min(m, (y + 1) * chunk)).
// Slicing the rows keeps enough blocks in flight to fill the chip when B * n is small (a
// single wave of whole rows leaves SMs idle at the tail). Partials: [nsplit][B * n]; part_c is
// written only when COST.
template <typename T, bool COST>
__global__ void sk_dense_rows(const T* __restrict__ M, const T* __restrict__ h, T* __restrict__ part_m,
                              double* __restrict__ part_s, double* __restrict__ part_c,
                              int B, int n, int m, long long m_stride, int chunk, T inv_reg) {
    const long long warp = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    const long long rows = static_cast<long long>(B) * n;
    if (warp >= rows) return;
    const int b = static_cast<int>(warp / n);
    const int i = static_cast<int>(warp - static_cast<long long>(b) * n);
    const T* row = M + b * m_stride + static_cast<long long>(i) * m;
    const T* hb = h + static_cast<long long>(b) * m;
    const int j1 = min(m, static_cast<int>(blockIdx.y + 1) * chunk);
    Lse<T> acc;
    acc.init();
    int j = blockIdx.y * chunk + lane;
    // Four independent loads in flight per lane before the arithmetic.
    for (; j + 96 < j1; j += 128) {
        const T c0 = row[j], c1 = row[j + 32], c2 = row[j + 64], c3 = row[j + 96];
        const T h0 = hb[j], h1 = hb[j + 32], h2 = hb[j + 64], h3 = hb[j + 96];
        acc.template add<COST>((h0 - c0) * inv_reg, c0);
        acc.template add<COST>((h1 - c1) * inv_reg, c1);
        acc.template add<COST>((h2 - c2) * inv_reg, c2);
        acc.template add<COST>((h3 - c3) * inv_reg, c3);
        acc.flush();
    }
    for (; j < j1; j += 32) {
        const T c0 = row[j];
        acc.template add<COST>((hb[j] - c0) * inv_reg, c0);
    }
    acc.flush();
    T mx = acc.m;
    double s = acc.sd, c = acc.cd;
    warp_merge(mx, s, c);
    if (lane == 0) {
        const long long o = static_cast<long long>(blockIdx.y) * rows + warp;
        part_m[o] = mx;
        part_s[o] = s;
        if (COST) part_c[o] = c;
    }
}

// g update on a row-major M: blockDim = (32, 8); grid = (ceil(m / 32), nsplit, B).
// Split y covers rows [y * chunk, min(n, (y + 1) * chunk)). Partials: [nsplit][B * m].
template <typename T, bool COST>
__global__ void sk_dense_cols(const T* __restrict__ M, const T* __restrict__ h, T* __restrict__ part_m,
                              double* __restrict__ part_s, double* __restrict__ part_c,
                              int B, int n, int m, long long m_stride, int chunk, T inv_reg) {
    __shared__ T sm_m[8][32];
    __shared__ double sm_s[8][32];
    __shared__ double sm_c[8][32];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int j = blockIdx.x * 32 + tx;
    const int b = blockIdx.z;
    const int i0 = blockIdx.y * chunk;
    const int i1 = min(n, i0 + chunk);
    const T* Mb = M + b * m_stride;
    const T* hb = h + static_cast<long long>(b) * n;
    Lse<T> acc;
    acc.init();
    if (j < m) {
        int i = i0 + ty;
        for (; i + 24 < i1; i += 32) {
            const T c0 = Mb[static_cast<long long>(i) * m + j];
            const T c1 = Mb[static_cast<long long>(i + 8) * m + j];
            const T c2 = Mb[static_cast<long long>(i + 16) * m + j];
            const T c3 = Mb[static_cast<long long>(i + 24) * m + j];
            acc.template add<COST>((hb[i] - c0) * inv_reg, c0);
            acc.template add<COST>((hb[i + 8] - c1) * inv_reg, c1);
            acc.template add<COST>((hb[i + 16] - c2) * inv_reg, c2);
            acc.template add<COST>((hb[i + 24] - c3) * inv_reg, c3);
            acc.flush();
        }
        for (; i < i1; i += 8) {
            const T c0 = Mb[static_cast<long long>(i) * m + j];
            acc.template add<COST>((hb[i] - c0) * inv_reg, c0);
        }
        acc.flush();
    }
    sm_m[ty][tx] = acc.m;
    sm_s[ty][tx] = acc.sd;
    sm_c[ty][tx] = acc.cd;
    __syncthreads();
    if (ty == 0 && j < m) {
        T mx = sm_m[0][tx];
        double s = sm_s[0][tx], c = sm_c[0][tx];
        for (int k = 1; k < 8; ++k) lse_merge(mx, s, c, sm_m[k][tx], sm_s[k][tx], sm_c[k][tx]);
        const long long r = static_cast<long long>(blockIdx.y) * B * m + static_cast<long long>(b) * m + j;
        part_m[r] = mx;
        part_s[r] = s;
        if (COST) part_c[r] = c;
    }
}

// Squared Euclidean cost on the fly. Own points X (n_own, D), other points Y (n_oth, D),
// both zero-padded to D columns; h: the other side's potential (n_oth); p_own, w_own: the own
// side's current potential and weights (they give each sum's shift, below). Each thread holds
// R = online_rows(D) own points in registers (block 128 threads, R * 128 points per block),
// so that each coordinate of the other side read from shared memory serves R pairs; grid =
// (ceil(n_own / (128 R)), nsplit); split y covers other points [y * chunk, min(n_oth,
// (y + 1) * chunk)). Partials: [nsplit][n_own].
__host__ __device__ constexpr int online_rows(int D) { return D <= 16 ? 4 : (D <= 64 ? 2 : 1); }

// Sum of exp(x - shift) over one tile row for the R own points of a thread, the cost
// computed from the staged tile. SAFE: the streaming max (Lse::add); else the fixed shift.
template <typename T, int D, int R, bool COST, bool SAFE>
__device__ __forceinline__ void online_tile(const T (&xr)[R][D], const T (*ys)[D], const T* hs, T inv_reg,
                                            const T (&shift)[R], const bool (&need)[R], Lse<T> (&acc)[R]) {
    constexpr int TJ = 32;
#pragma unroll 2
    for (int jj = 0; jj < TJ; ++jj) {
        T c[R];
#pragma unroll
        for (int q = 0; q < R; ++q) c[q] = T(0);
#pragma unroll
        for (int k = 0; k < D; ++k) {
            const T yk = ys[jj][k];
#pragma unroll
            for (int q = 0; q < R; ++q) {
                const T d = xr[q][k] - yk;
                c[q] = fma(d, d, c[q]);
            }
        }
        const T hj = hs[jj];
#pragma unroll
        for (int q = 0; q < R; ++q) {
            if (SAFE) {
                if (need[q]) acc[q].template add<COST>((hj - c[q]) * inv_reg, c[q]);
            } else {
                // hs = -inf pads the tile: exp(-inf) = 0.
                const T e = fexp_t(fma(hj - c[q], inv_reg, -shift[q]));
                acc[q].sf += e;
                if (COST) acc[q].cf += e * c[q];
            }
        }
    }
}

// The fixed shift is trusted when the sum lands in [2^-60, 2^60]: float terms that flush to
// zero below 2^-126 are then under 2^-66 of the sum.
template <typename T>
__device__ __forceinline__ bool shift_ok(double s) { return s >= 8.673617379884035e-19 && s <= 1.152921504606847e18; }

template <typename T, int D, bool COST>
__global__ void sk_online(const T* __restrict__ X, const T* __restrict__ Y, const T* __restrict__ h,
                          const T* __restrict__ p_own, const T* __restrict__ w_own,
                          T* __restrict__ part_m, double* __restrict__ part_s, double* __restrict__ part_c,
                          int n_own, int n_oth, int chunk, T inv_reg) {
    constexpr int TJ = 32;
    constexpr int R = online_rows(D);
    __shared__ T ys[TJ][D];
    __shared__ T hs[TJ];
    const int base = blockIdx.x * blockDim.x * R + threadIdx.x;
    T xr[R][D];
    T shift[R];
    Lse<T> acc[R];
#pragma unroll
    for (int q = 0; q < R; ++q) {
        const int r = base + q * blockDim.x;
#pragma unroll
        for (int k = 0; k < D; ++k) xr[q][k] = r < n_own ? X[static_cast<long long>(r) * D + k] : T(0);
        // At a fixed point LSE_j((h_j - C_rj) / reg) = log w_r - p_r / reg: the terms are then
        // the plan's row divided by its weight, so their sum is about 1 (2^-60..2^60 is trusted).
        T sh = T(0);
        if (r < n_own) {
            const T wr = w_own[r], pr = p_own[r];
            if (wr > T(0) && pr > neg_inf<T>()) sh = log_t(wr) - pr * inv_reg;
        }
        shift[q] = isfinite(static_cast<double>(sh)) ? sh : T(0);
        acc[q].init();
        acc[q].m = shift[q];
    }
    const int j0 = blockIdx.y * chunk;
    const int j1 = min(n_oth, j0 + chunk);
    // Pass 1: fixed shift (one exp and one add per pair). Pass 2, only for the points whose
    // sum fell outside the trusted range (far from convergence): the streaming max, over the
    // whole slice. The block takes pass 2 together (shared tiles) when any thread needs it.
    bool need[R];
#pragma unroll
    for (int q = 0; q < R; ++q) need[q] = false;
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) {
            bool any = false;
#pragma unroll
            for (int q = 0; q < R; ++q) {
                acc[q].flush();
                need[q] = base + q * static_cast<int>(blockDim.x) < n_own && !shift_ok<T>(acc[q].sd);
                if (need[q]) acc[q].init();
                any |= need[q];
            }
            if (!__syncthreads_or(any)) break;
        }
        for (int t = j0; t < j1; t += TJ) {
            const int cnt = min(TJ, j1 - t);
            __syncthreads();
            for (int q = threadIdx.x; q < TJ * D; q += blockDim.x) {
                const int jj = q / D, k = q - jj * D;
                ys[jj][k] = jj < cnt ? Y[static_cast<long long>(t + jj) * D + k] : T(0);
            }
            for (int q = threadIdx.x; q < TJ; q += blockDim.x) hs[q] = q < cnt ? h[t + q] : neg_inf<T>();
            __syncthreads();
            if (pass == 0) {
                online_tile<T, D, R, COST, false>(xr, ys, hs, inv_reg, shift, need, acc);
            } else {
                online_tile<T, D, R, COST, true>(xr, ys, hs, inv_reg, shift, need, acc);
            }
#pragma unroll
            for (int q = 0; q < R; ++q) acc[q].flush();
        }
    }
#pragma unroll
    for (int q = 0; q < R; ++q) {
        const int r = base + q * blockDim.x;
        if (r < n_own) {
            const long long o = static_cast<long long>(blockIdx.y) * n_own + r;
            part_m[o] = acc[q].m;
            part_s[o] = acc[q].sd;
            if (COST) part_c[o] = acc[q].cd;
        }
    }
}

// Combines the nsplit partials of each own index r (R = B * len in all), updates the
// potential and accumulates the marginal error (and optionally the cost and <p, marginal>)
// per problem. flags: bit 0 write p_new; bit 1 measure the plan of p_new (else of p_old);
// bit 2 the partials hold the cost (part_c was written; else it is not read); bit 3 write
// the marginal sum_s P_rs to marg[r] (else marg is not touched).
// The sums per problem go to err[b], cost[b], dot[b] (all three must be valid); a non-finite
// potential where the weight is positive increments *bad.
//
// Unbalanced OT (python/optcore/ot/_gpu/unbalanced.py; the CPU loop is
// rust/optcore-core/src/ot/unbalanced.rs): with a marginal relaxation rho on this side,
// tau = rho / (rho + reg) and the update is p_sk = reg log w_r - tau L_r; the error is
// measured against the relaxed target w_r exp(-(p_r - reg log w_r) / rho). rho = inf, tau = 1
// is the balanced half-iteration (the same expressions, bit for bit).
template <typename T>
__global__ void sk_finalize(const T* __restrict__ part_m, const double* __restrict__ part_s,
                            const double* __restrict__ part_c, int nsplit, int B, int len,
                            const T* __restrict__ w, long long w_stride, const T* __restrict__ p_old,
                            T* __restrict__ p_new, double* __restrict__ err, double* __restrict__ cost,
                            double* __restrict__ dot, double* __restrict__ marg, int* __restrict__ bad, T reg,
                            T omega, double tau, double rho, int flags) {
    const long long R = static_cast<long long>(B) * len;
    const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    double e = 0.0, cs = 0.0, dt = 0.0;
    int b = -1;
    if (r < R) {
        b = static_cast<int>(r / len);
        const int i = static_cast<int>(r - static_cast<long long>(b) * len);
        T mx = part_m[r];
        double s = part_s[r];
        const bool hc = (flags & 4) != 0;
        double c = hc ? part_c[r] : 0.0;
        for (int k = 1; k < nsplit; ++k) {
            const long long o = static_cast<long long>(k) * R + r;
            lse_merge(mx, s, c, part_m[o], part_s[o], hc ? part_c[o] : 0.0);
        }
        const double wr = static_cast<double>(w[b * w_stride + i]);
        const double regd = static_cast<double>(reg);
        // L = reg * (mx + log s) in double; -inf when no mass is reachable.
        const double L = (mx == neg_inf<T>() || s <= 0.0) ? neg_inf<double>() : regd * (static_cast<double>(mx) + log(s));
        const T po = p_old[r];
        T pn = po;
        if (flags & 1) {
            if (wr <= 0.0) {
                pn = neg_inf<T>();
            } else {
                const double psk = tau == 1.0 ? regd * log(wr) - L : regd * log(wr) - tau * L;
                const double om = static_cast<double>(omega);
                pn = (om == 1.0 || po == neg_inf<T>()) ? static_cast<T>(psk)
                                                       : static_cast<T>((1.0 - om) * static_cast<double>(po) + om * psk);
                if (!isfinite(static_cast<double>(pn))) atomicAdd(bad, 1);
            }
            p_new[r] = pn;
        }
        const T pe = (flags & 2) ? pn : po;
        double sum = 0.0, cr = 0.0;
        if (pe != neg_inf<T>() && L != neg_inf<double>()) {
            const double scale = exp((static_cast<double>(pe) + L) / regd);
            sum = scale;
            // c is relative to exp(mx); sum = exp((pe + reg * mx) / reg) * s.
            cr = exp(static_cast<double>(pe) / regd + static_cast<double>(mx)) * c;
            dt = static_cast<double>(pe) * sum;
        }
        if (!isfinite(sum)) atomicAdd(bad, 1);
        if (flags & 8) marg[r] = sum;
        // The relaxed target (w_r itself when balanced or w_r = 0).
        const double target = (isinf(rho) || wr <= 0.0) ? wr : wr * exp(-(static_cast<double>(pe) - regd * log(wr)) / rho);
        e = fabs(sum - target);
        cs = cr;
    }
    // Warp-aggregated atomics when the whole warp belongs to one problem (always for B = 1).
    const int b0 = __shfl_sync(0xffffffffu, b, 0);
    const bool uniform = __all_sync(0xffffffffu, b == b0 || b < 0);
    if (uniform) {
        for (int off = 16; off > 0; off >>= 1) {
            e += __shfl_xor_sync(0xffffffffu, e, off);
            cs += __shfl_xor_sync(0xffffffffu, cs, off);
            dt += __shfl_xor_sync(0xffffffffu, dt, off);
        }
        if ((threadIdx.x & 31) == 0 && b0 >= 0) {
            atomicAdd(err + b0, e);
            atomicAdd(cost + b0, cs);
            atomicAdd(dot + b0, dt);
        }
    } else if (b >= 0) {
        atomicAdd(err + b, e);
        atomicAdd(cost + b, cs);
        atomicAdd(dot + b, dt);
    }
}

// The plan P = exp((f_i + g_j - M_ij) / reg) of a batch (M shared when m_stride = 0).
template <typename T>
__global__ void sk_plan_dense(const T* __restrict__ M, const T* __restrict__ f, const T* __restrict__ g,
                              T* __restrict__ P, int B, int n, int m, long long m_stride, T inv_reg) {
    const long long total = static_cast<long long>(B) * n * m;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long row = q / m;
        const int j = static_cast<int>(q - row * m);
        const int b = static_cast<int>(row / n);
        const int i = static_cast<int>(row - static_cast<long long>(b) * n);
        const T fi = f[row], gj = g[static_cast<long long>(b) * m + j];
        const T c = M[b * m_stride + static_cast<long long>(i) * m + j];
        P[q] = (fi == neg_inf<T>() || gj == neg_inf<T>()) ? T(0) : exp_t((fi + gj - c) * inv_reg);
    }
}

// The plan of the online form (squared Euclidean cost of zero-padded points, D columns).
template <typename T, int D>
__global__ void sk_plan_online(const T* __restrict__ X, const T* __restrict__ Y, const T* __restrict__ f,
                               const T* __restrict__ g, T* __restrict__ P, int n, int m, T inv_reg) {
    const long long total = static_cast<long long>(n) * m;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += static_cast<long long>(gridDim.x) * blockDim.x) {
        const int i = static_cast<int>(q / m);
        const int j = static_cast<int>(q - static_cast<long long>(i) * m);
        T c = T(0);
#pragma unroll
        for (int k = 0; k < D; ++k) {
            const T d = X[static_cast<long long>(i) * D + k] - Y[static_cast<long long>(j) * D + k];
            c = fma(d, d, c);
        }
        const T fi = f[i], gj = g[j];
        P[q] = (fi == neg_inf<T>() || gj == neg_inf<T>()) ? T(0) : exp_t((fi + gj - c) * inv_reg);
    }
}

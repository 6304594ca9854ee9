// Reductions on a transport plan, templated on the float type (float / double).
// Compiled at run time by CuPy (cupy.RawModule, name_expressions such as
// "plan_row_sums<double>"); the source is embedded in optcore._core at build time.

// Row sums of a row-major n x m plan, accumulated in double: one block per row,
// a shared-memory tree reduction over blockDim.x threads (a power of two, <= 1024).
template <typename T>
__global__ void plan_row_sums(const T* __restrict__ plan, double* __restrict__ out, int n, int m) {
    extern __shared__ double buf[];
    const int i = blockIdx.x;
    if (i >= n) return;
    const T* row = plan + static_cast<long long>(i) * m;
    double s = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) s += static_cast<double>(row[j]);
    buf[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) buf[threadIdx.x] += buf[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[i] = buf[0];
}

// L1 distance between a vector of sums (double) and the target weights.
template <typename T>
__global__ void l1_error(const double* __restrict__ sums, const T* __restrict__ w, double* __restrict__ out, int n) {
    double s = 0.0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        s += fabs(sums[i] - static_cast<double>(w[i]));
    atomicAdd(out, s);
}

// A load for the device check (scripts/device_check.sh): keeps the GPU's tensor cores, SMs and memory
// busy for a given number of seconds, so NVML's utilisation, power, clocks and GPM activity move off
// their idle values. Not a benchmark: it prints how many rounds it ran and nothing is timed from it.
//   nvcc -O2 -gencode arch=compute_90,code=[sm_90,compute_90] -o device_busy scripts/device_busy.cu
//   ./device_busy SECONDS
// Plain cudaMalloc of 2 GiB (device memory only, never managed memory). Exit 1 with one line on error.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <cuda_fp16.h>
#include <mma.h>

using namespace nvcuda;

#define CHECK(call)                                                                      \
    do {                                                                                 \
        cudaError_t err_ = (call);                                                       \
        if (err_ != cudaSuccess) {                                                       \
            std::fprintf(stderr, "device_busy: %s: %s\n", #call, cudaGetErrorString(err_)); \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

constexpr int kTile = 16 * 16;
constexpr int kTiles = 64;            // distinct input tiles, shared by all warps
constexpr int kMmaPerLaunch = 16384;  // about 10 ms per launch on a Hopper GPU

// Each warp chains kMmaPerLaunch 16x16x16 half-precision products into one accumulator: the tensor pipe
// stays busy and nothing can be optimised away (the result is stored).
__global__ void tensor_busy(const half* a, const half* b, float* c, int mmas) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    wmma::fill_fragment(fc, 0.0f);
    wmma::load_matrix_sync(fa, a + (warp % kTiles) * kTile, 16);
    wmma::load_matrix_sync(fb, b + (warp % kTiles) * kTile, 16);
    for (int i = 0; i < mmas; ++i) wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c + warp * kTile, fc, 16, wmma::mem_row_major);
}

// A grid-stride copy: device memory traffic (NVML memory utilisation, GPM DRAM activity).
__global__ void stream_copy(const float4* src, float4* dst, size_t n) {
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = src[i];
}

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 0.0;
    if (seconds <= 0) {
        std::fprintf(stderr, "usage: device_busy SECONDS\n");
        return 2;
    }
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    const int blocks = prop.multiProcessorCount * 8, threads = 256;
    const int warps = blocks * threads / 32;
    const size_t copy_n = (size_t{1} << 30) / sizeof(float4);  // 1 GiB each way

    half *a, *b;
    float* c;
    float4 *src, *dst;
    CHECK(cudaMalloc(&a, kTiles * kTile * sizeof(half)));
    CHECK(cudaMalloc(&b, kTiles * kTile * sizeof(half)));
    CHECK(cudaMalloc(&c, static_cast<size_t>(warps) * kTile * sizeof(float)));
    CHECK(cudaMalloc(&src, copy_n * sizeof(float4)));
    CHECK(cudaMalloc(&dst, copy_n * sizeof(float4)));
    CHECK(cudaMemset(a, 0, kTiles * kTile * sizeof(half)));
    CHECK(cudaMemset(b, 0, kTiles * kTile * sizeof(half)));
    CHECK(cudaMemset(src, 0, copy_n * sizeof(float4)));

    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    long rounds = 0;
    while (elapsed < seconds) {
        tensor_busy<<<blocks, threads>>>(a, b, c, kMmaPerLaunch);
        stream_copy<<<prop.multiProcessorCount * 4, threads>>>(src, dst, copy_n);
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
        ++rounds;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::printf("device_busy: %ld rounds in %.1f s on %s (%d SMs)\n", rounds, elapsed, prop.name,
                prop.multiProcessorCount);
    return 0;
}

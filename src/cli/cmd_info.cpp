// `sift info`: build configuration, CPU features and GPUs.
#include <fmt/format.h>
#include <unistd.h>

#include "cli/cli.h"

#ifdef SIFT_HAVE_CUDA
#include "backend/cuda/cuda_devices.h"
#endif

namespace sift::cli {
namespace {

int run_info() {
    fmt::print("sift {}\n", SIFT_VERSION);
    fmt::print("cpu:   {} threads, features:", sysconf(_SC_NPROCESSORS_ONLN));
    __builtin_cpu_init();
    for (const auto& [name, present] :
         {std::pair{"avx2", __builtin_cpu_supports("avx2")},
          std::pair{"fma", __builtin_cpu_supports("fma")},
          std::pair{"f16c", __builtin_cpu_supports("f16c")},
          std::pair{"avx512f", __builtin_cpu_supports("avx512f")},
          std::pair{"avx512bw", __builtin_cpu_supports("avx512bw")},
          std::pair{"avx512vnni", __builtin_cpu_supports("avx512vnni")},
          std::pair{"avx512bf16", __builtin_cpu_supports("avx512bf16")}}) {
        if (present) fmt::print(" {}", name);
    }
    fmt::print("\n");
#ifdef SIFT_HAVE_CUDA
    Result<CudaRuntimeInfo> cuda = cuda_runtime_info();
    if (!cuda) {
        fmt::print("cuda:  built in, unavailable: {}\n", cuda.message());
        return 0;
    }
    fmt::print("cuda:  built in (runtime {}.{}, driver {}.{}), {} GPU(s)\n",
               cuda->runtime_version / 1000, cuda->runtime_version % 1000 / 10,
               cuda->driver_version / 1000, cuda->driver_version % 1000 / 10, cuda->devices.size());
    for (const CudaDeviceInfo& d : cuda->devices) {
        fmt::print(
            "  gpu {}: {} (sm_{}{}), {} SMs, {:.1f} GiB ({:.1f} GiB free), {:.0f} GB/s peak\n",
            d.index, d.name, d.cc_major, d.cc_minor, d.sm_count, d.total_bytes / 1073741824.0,
            d.free_bytes / 1073741824.0, d.mem_bandwidth_gbs);
    }
#else
    fmt::print("cuda:  not built (configure with -DSIFT_CUDA=ON)\n");
#endif
    return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
    CLI::App* sub = app.add_subcommand("info", "Show build configuration, CPU features and GPUs");
    sub->callback([&exit_code] { exit_code = run_info(); });
}

}  // namespace sift::cli

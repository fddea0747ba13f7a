#include "cli/backend_select.h"

#include <charconv>

#include "backend/profiling_backend.h"
#include "gguf/gguf.h"
#if SIFT_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_devices.h"
#endif

namespace sift::cli {

void add_backend_options(CLI::App& sub, BackendChoice& choice) {
    sub.add_option("--device", choice.device,
                   "auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N")
        ->capture_default_str();
    sub.add_option(
           "--ngl,--n-gpu-layers", choice.n_gpu_layers,
           "Layers on the GPU (also -ngl): 0 runs on the CPU; -1 or >= the model's layers runs all "
           "of them on the GPU")
        ->capture_default_str();
    sub.add_option("-t,--threads", choice.threads, "CPU threads (0: all cores)")
        ->capture_default_str();
    sub.add_flag("--exact", choice.exact,
                 "CPU: F32 matmuls on dequantized weights (slower; reference results)");
    sub.add_flag("--profile", choice.profile,
                 "Time every op (synchronized, no CUDA graphs) and print the table at exit");
}

namespace {

Result<int64_t> model_layers(const std::string& path) {
    Result<std::unique_ptr<gguf::File>> file = gguf::File::open(path);
    if (!file) return file.error();
    Result<std::string> arch = (*file)->get_string("general.architecture");
    if (!arch) return make_error("{}: no general.architecture", path);
    Result<uint64_t> n = (*file)->get_u64(*arch + ".block_count");
    if (!n) return make_error("{}: no {}.block_count", path, *arch);
    return static_cast<int64_t>(*n);
}

std::unique_ptr<Backend> cpu_backend(const BackendChoice& choice) {
    CpuBackendOptions o;
    o.n_threads = choice.threads;
    o.exact = choice.exact;
    return backend_cpu_create(o);
}

}  // namespace

namespace {

Result<std::unique_ptr<Backend>> select_device(const BackendChoice& choice,
                                               const std::string& model_path) {
    std::string device = choice.device;
    int cuda_index = 0;
    if (device.rfind("cuda:", 0) == 0) {
        const std::string idx = device.substr(5);
        auto [p, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), cuda_index);
        if (ec != std::errc() || p != idx.data() + idx.size() || cuda_index < 0)
            return make_error("--device {}: expected cuda:N with N a device index", device);
        device = "cuda";
    }
    if (device != "auto" && device != "cpu" && device != "cuda")
        return make_error("--device {}: expected auto, cpu, cuda or cuda:N", choice.device);
    if (device == "cuda" && choice.exact)
        return make_error("--exact is the CPU reference path: use it with --device cpu");
    if (choice.n_gpu_layers == 0 || device == "cpu" || choice.exact) {
        if (device == "cuda") return make_error("--device cuda with -ngl 0: pick one");
        return cpu_backend(choice);
    }
    if (choice.n_gpu_layers > 0) {
        Result<int64_t> layers = model_layers(model_path);
        if (!layers) return layers.error();
        if (choice.n_gpu_layers < *layers)
            return make_error(
                "-ngl {}: the model has {} layers and sift runs all of them on one device; use "
                "-ngl 0 (CPU) or -ngl {} (GPU)",
                choice.n_gpu_layers, *layers, *layers);
    }
#if SIFT_HAVE_CUDA
    if (device == "auto") {
        Result<CudaRuntimeInfo> info = cuda_runtime_info();
        if (!info || info->devices.empty()) return cpu_backend(choice);
    }
    CudaBackendOptions o;
    o.device = cuda_index;
    Result<std::unique_ptr<Backend>> gpu = backend_cuda_create(o);
    if (!gpu) return make_error("--device {}: {}", choice.device, gpu.message());
    return gpu;
#else
    if (device == "cuda") return make_error("--device cuda: this sift was built without CUDA");
    return cpu_backend(choice);
#endif
}

}  // namespace

Result<std::unique_ptr<Backend>> backend_select(const BackendChoice& choice,
                                                const std::string& model_path) {
    Result<std::unique_ptr<Backend>> backend = select_device(choice, model_path);
    if (!backend || !choice.profile) return backend;
    return backend_profile_wrap(std::move(*backend));
}

int32_t default_ubatch(const Backend& backend) {
    return backend.device() == Device::DEVICE_CUDA ? 4096 : 512;
}

}  // namespace sift::cli

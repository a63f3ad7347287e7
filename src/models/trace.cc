#include "models/trace.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace chassis {

DumpTracer::DumpTracer(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw Error(dir_ + ": cannot create dump directory: " + ec.message());
}

void DumpTracer::tensor(const std::string& name, const float* data, int64_t n_tokens, int64_t n, int64_t pos0) {
  char file[64];
  std::snprintf(file, sizeof file, "%05lld-", static_cast<long long>(call_++));
  const std::string path = dir_ + "/" + file + name + ".f32";
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, sizeof(float), size_t(n_tokens * n), f);
    std::fclose(f);
  }
  double sum = 0, amax = 0;
  for (int64_t i = 0; i < n_tokens * n; ++i) {
    sum += data[i];
    amax = std::fmax(amax, std::fabs(data[i]));
  }
  std::fprintf(stderr, "[dump] %-24s pos %lld (%lld x %lld) mean %+.6f absmax %.6f  [%.5f %.5f %.5f %.5f]\n",
               name.c_str(), (long long)pos0, (long long)n_tokens, (long long)n, sum / double(n_tokens * n), amax,
               data[0], n > 1 ? data[1] : 0.f, n > 2 ? data[2] : 0.f, n > 3 ? data[3] : 0.f);
}

}  // namespace chassis

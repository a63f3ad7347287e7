// The model store in the Hugging Face cache: `chassis pull NAME`, `chassis list`, `chassis rm NAME`.
#include <cstdio>
#include <ctime>
#include <memory>

#include "commands.h"
#include "core/error.h"
#include "store/hub_cache.h"
#include "store/hub_client.h"

namespace chassis::cli {
namespace {

store::ModelRef parse_name(const std::string& name) {
  const auto ref = store::parse_model_ref(name);
  if (!ref) throw Error("'" + name + "' is not a hub name (org/repo, org/repo:Q4_K_M, org/repo:FILE.gguf, each optionally @revision)");
  return *ref;
}

std::string human(uint64_t b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(b);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string ago(std::time_t t) {
  if (t == 0) return "-";
  const long s = long(std::time(nullptr) - t);
  if (s < 120) return "just now";
  if (s < 7200) return std::to_string(s / 60) + " minutes ago";
  if (s < 172800) return std::to_string(s / 3600) + " hours ago";
  return std::to_string(s / 86400) + " days ago";
}

int pull(const std::string& name) {
  const store::ModelRef ref = parse_name(name);
  if (store::offline_mode()) throw Error("offline mode is on (HF_HUB_OFFLINE/CHASSIS_OFFLINE): pull needs the network");
  const auto resolved = store::pull(ref, store::hub_cache_root(), store::HubClient(store::hub_options_from_env()));
  std::printf("%s\n", resolved.path.c_str());
  return 0;
}

int list() {
  const auto repos = store::scan_cache(store::hub_cache_root());
  std::printf("%-44s %-14s %5s %10s  %-22s %s\n", "NAME", "REVISION", "FILES", "SIZE", "FORMAT", "LAST USED");
  for (const auto& repo : repos)
    for (const auto& rev : repo.revisions) {
      std::string revision = rev.commit.substr(0, 12);
      if (!rev.refs.empty()) revision = rev.refs[0];
      std::printf("%-44s %-14s %5zu %10s  %-22s %s\n", repo.repo.c_str(), revision.c_str(), rev.files.size(),
                  human(rev.bytes).c_str(), rev.format.empty() ? "-" : rev.format.c_str(), ago(rev.last_used).c_str());
    }
  return 0;
}

int rm(const std::string& name) {
  const store::ModelRef ref = parse_name(name);
  const uint64_t freed = store::remove_cached(ref, store::hub_cache_root());
  std::fprintf(stderr, "removed %s (%s freed)\n", ref.text().c_str(), human(freed).c_str());
  return 0;
}

}  // namespace

std::function<int()> add_pull(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  app.add_option("name", *name, "org/repo, org/repo:Q4_K_M or org/repo:FILE.gguf, optionally @revision")->required();
  return [name] { return pull(*name); };
}

std::function<int()> add_list(CLI::App&) {
  return [] { return list(); };
}

std::function<int()> add_rm(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  app.add_option("name", *name, "org/repo (every revision) or org/repo@revision")->required();
  return [name] { return rm(*name); };
}

}  // namespace chassis::cli

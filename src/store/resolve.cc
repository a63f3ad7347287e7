#include "store/resolve.h"

#include "core/error.h"
#include "store/hub_cache.h"
#include "store/hub_client.h"

namespace chassis::store {

std::string resolve_model_arg(const std::string& arg) {
  std::error_code ec;
  if (fs::exists(arg, ec)) return arg;
  const auto ref = parse_model_ref(arg);
  if (!ref)
    throw Error(arg + ": no such file or folder, and not a hub name (org/repo, org/repo:Q4_K_M, "
                      "org/repo:FILE.gguf, each optionally @revision)");
  const fs::path root = hub_cache_root();
  std::string why;
  try {
    return resolve_cached(*ref, root).path.string();
  } catch (const Error& e) {
    why = e.what();
  }
  if (offline_mode())
    throw Error(why + "; offline mode is on (HF_HUB_OFFLINE/CHASSIS_OFFLINE), so it was not downloaded");
  return pull(*ref, root, HubClient(hub_options_from_env())).path.string();
}

}  // namespace chassis::store

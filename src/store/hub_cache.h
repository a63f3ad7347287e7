// The Hugging Face hub cache, laid out exactly as huggingface_hub writes it, so one download serves
// every tool:
//   <root>/models--org--repo/blobs/<etag>              file contents, named by sha256 (LFS) or git sha1
//   <root>/models--org--repo/snapshots/<commit>/<path> relative symlinks into ../../blobs
//   <root>/models--org--repo/refs/<branch>             the commit a branch or tag pointed to
//   <root>/.locks/models--org--repo/<etag>.lock        held while a blob is being downloaded
// root: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
#pragma once
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "store/model_ref.h"

namespace chassis::store {

namespace fs = std::filesystem;

fs::path hub_cache_root();
// CHASSIS_OFFLINE or HF_HUB_OFFLINE set to 1/true/yes/on: never touch the network.
bool offline_mode();
bool is_commit_hash(const std::string& s);  // 40 lower-case hex digits

class RepoCache {
 public:
  RepoCache(fs::path root, std::string repo);
  const std::string& repo() const { return repo_; }
  fs::path dir() const { return root_ / folder_; }
  fs::path blob(const std::string& etag) const { return dir() / "blobs" / etag; }
  fs::path incomplete(const std::string& etag) const { return dir() / "blobs" / (etag + ".incomplete"); }
  fs::path lock(const std::string& etag) const { return root_ / ".locks" / folder_ / (etag + ".lock"); }
  fs::path snapshot(const std::string& commit) const { return dir() / "snapshots" / commit; }

  // The commit a revision names locally: refs/<revision>, or the revision itself when it is a
  // commit hash with a snapshot.
  std::optional<std::string> commit_of(const std::string& revision) const;
  // Records that `revision` points to `commit` (atomically; nothing for a commit hash).
  void write_ref(const std::string& revision, const std::string& commit) const;
  // snapshots/<commit>/<file> -> ../../blobs/<etag> (relative, as huggingface_hub makes it).
  void link(const std::string& commit, const std::string& file, const std::string& etag) const;
  // Files of a snapshot (relative paths, sorted), only those whose link resolves.
  std::vector<std::string> files(const std::string& commit) const;

 private:
  fs::path root_;
  std::string repo_, folder_;
};

// Where a name resolves to in the cache: the snapshot folder, or one GGUF file in it.
struct Resolved {
  fs::path path;
  std::string commit;
};
// Throws Error naming what is missing (repo, revision, file, quant) and what is there instead.
Resolved resolve_cached(const ModelRef& ref, const fs::path& root);

// Picks what a name needs from a repo's files: the named file, the GGUF of a quant (the first
// shard of a split one), or for a bare repo the folder's model files (safetensors, configs,
// tokenizer files; a repo with only GGUF files and exactly one of them: that one).
std::vector<std::string> files_for(const ModelRef& ref, const std::vector<std::string>& repo_files);

struct CachedRevision {
  std::string commit;
  std::vector<std::string> refs;  // branches/tags pointing here
  std::vector<std::string> files;
  uint64_t bytes = 0;             // on disk, blobs counted once
  std::string format;             // "safetensors", "gguf Q4_K_M", ...
  std::time_t last_used = 0;      // latest access time of its blobs
};
struct CachedRepo {
  std::string repo;
  std::vector<CachedRevision> revisions;
};
std::vector<CachedRepo> scan_cache(const fs::path& root);

// Removes a revision (all revisions when none was named): its snapshot, the refs pointing to it,
// and the blobs no remaining snapshot links to; the repo folder when nothing is left. Returns the
// bytes freed. Throws Error when the name is not in the cache.
uint64_t remove_cached(const ModelRef& ref, const fs::path& root);

}  // namespace chassis::store

// Talking to the Hugging Face hub (or a mirror: HF_ENDPOINT) over HTTPS with libcurl, and `pull`:
// list a repo's files, download what a name needs into the cache — resumable (.incomplete files and
// Range requests), verified (sha256 of LFS files, git sha1 of the others) before a blob takes its
// final name, locked against concurrent pulls of the same file, with a progress bar on a terminal.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/hub_cache.h"
#include "store/model_ref.h"

namespace chassis::store {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";
  std::string token;      // sent as a bearer token to the endpoint (never to redirect targets)
  bool progress = false;  // draw a progress bar (stderr is a terminal)
  int attempts = 4;       // per file, resuming each time
};
// HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file huggingface-cli writes).
HubOptions hub_options_from_env();

struct RepoInfo {
  std::string commit;
  std::vector<std::string> files;
};

struct FileMeta {
  std::string commit;
  std::string etag;      // sha256 for LFS files, git blob sha1 for the others
  std::string location;  // where the bytes are (a CDN redirect for LFS files)
  uint64_t size = 0;
};

class HubClient {
 public:
  explicit HubClient(HubOptions options);
  RepoInfo repo_info(const std::string& repo, const std::string& revision) const;
  FileMeta file_meta(const std::string& repo, const std::string& revision, const std::string& file) const;
  // Appends the bytes of `url` from `dest`'s current size on (Range), retrying with resume.
  void download(const FileMeta& meta, const std::string& label, const fs::path& dest) const;

 private:
  HubOptions options_;
};

// Downloads what `ref` needs into the cache at `root` (skipping blobs already there) and returns
// where it resolves. Messages go to stderr. Throws Error with a clear message on any failure,
// leaving no file under a final name that was not verified.
Resolved pull(const ModelRef& ref, const fs::path& root, const HubClient& hub);

// The digest a blob must have: sha256 (64 hex) or git's blob sha1 (40 hex) of the file.
bool blob_matches_etag(const fs::path& file, const std::string& etag, std::string* actual = nullptr);

}  // namespace chassis::store

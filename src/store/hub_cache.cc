#include "store/hub_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"

namespace chassis::store {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool truthy(const std::string& v) {
  std::string l = v;
  for (auto& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
  return l == "1" || l == "true" || l == "yes" || l == "on";
}

std::string read_small(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The files a model folder needs: weights in safetensors, configs, tokenizer and template files.
bool is_folder_file(const std::string& f) {
  if (f.find('/') != std::string::npos) return false;  // subfolders hold other formats (onnx/, ...)
  const std::string l = lower(f);
  for (const char* ext : {".safetensors", ".json", ".model", ".txt", ".jinja", ".tiktoken"})
    if (ends_with(l, ext)) return true;
  return l.rfind("license", 0) == 0 || l == "readme.md";
}

}  // namespace

fs::path hub_cache_root() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  if (auto v = env("HOME"); !v.empty()) return fs::path(v) / ".cache" / "huggingface" / "hub";
  throw Error("cannot locate the Hugging Face cache: set HF_HUB_CACHE or HOME");
}

bool offline_mode() { return truthy(env("CHASSIS_OFFLINE")) || truthy(env("HF_HUB_OFFLINE")); }

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

RepoCache::RepoCache(fs::path root, std::string repo) : root_(std::move(root)), repo_(std::move(repo)) {
  folder_ = "models--" + repo_;
  for (size_t i = folder_.find('/'); i != std::string::npos; i = folder_.find('/', i)) folder_.replace(i, 1, "--");
}

std::optional<std::string> RepoCache::commit_of(const std::string& revision) const {
  const fs::path ref = dir() / "refs" / revision;
  std::error_code ec;
  if (fs::is_regular_file(ref, ec)) {
    const std::string c = read_small(ref);
    if (is_commit_hash(c)) return c;
  }
  if (is_commit_hash(revision) && fs::is_directory(snapshot(revision), ec)) return revision;
  return std::nullopt;
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  const fs::path ref = dir() / "refs" / revision;
  fs::create_directories(ref.parent_path());
  const fs::path tmp = ref.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit;  // huggingface_hub writes the hash without a newline
    if (!out) throw Error(tmp.string() + ": cannot write");
  }
  fs::rename(tmp, ref);
}

void RepoCache::link(const std::string& commit, const std::string& file, const std::string& etag) const {
  const fs::path entry = snapshot(commit) / file;
  fs::create_directories(entry.parent_path());
  // Relative to the entry's folder: one "../" per path component of snapshots/<commit>/<dirs>.
  const fs::path target = blob(etag).lexically_relative(entry.parent_path());
  const fs::path tmp = entry.string() + ".tmp" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, entry);  // replaces an older link atomically
}

std::vector<std::string> RepoCache::files(const std::string& commit) const {
  std::vector<std::string> out;
  const fs::path snap = snapshot(commit);
  std::error_code ec;
  if (!fs::is_directory(snap, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory()) continue;
    if (!fs::exists(it->path(), ec)) continue;  // a dangling link: its blob is gone
    out.push_back(it->path().lexically_relative(snap).generic_string());  // not relative(): it follows links
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> files_for(const ModelRef& ref, const std::vector<std::string>& repo_files) {
  auto list = [&](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& f : v) s += (s.empty() ? "" : ", ") + f;
    return s.empty() ? std::string("none") : s;
  };
  std::vector<std::string> ggufs;
  for (const auto& f : repo_files)
    if (ends_with(lower(f), ".gguf")) ggufs.push_back(f);
  if (!ref.file.empty()) {
    if (std::find(repo_files.begin(), repo_files.end(), ref.file) == repo_files.end())
      throw Error(ref.repo + " has no file " + ref.file + " (GGUF files: " + list(ggufs) + ")");
    return {ref.file};
  }
  if (!ref.quant.empty()) {
    std::vector<std::string> match;
    for (const auto& f : ggufs)
      if (file_has_quant(f, ref.quant)) match.push_back(f);
    if (match.empty()) {
      std::set<std::string> quants;
      for (const auto& f : ggufs)
        if (auto q = quant_of_filename(f); !q.empty()) quants.insert(q);
      std::string have;
      for (const auto& q : quants) have += (have.empty() ? "" : ", ") + q;
      throw Error(ref.repo + " has no " + ref.quant + " GGUF (quantizations there: " + (have.empty() ? "none" : have) + ")");
    }
    // A split GGUF: every shard, the first first (the loader reads the first).
    std::sort(match.begin(), match.end());
    const bool split = match.size() > 1 && match[0].find("-00001-of-") != std::string::npos;
    if (match.size() > 1 && !split)
      throw Error(ref.repo + " has several " + ref.quant + " GGUF files (" + list(match) + "): name one as " +
                  ref.repo + ":FILE.gguf");
    return match;
  }
  const bool folder = std::find(repo_files.begin(), repo_files.end(), "config.json") != repo_files.end();
  if (folder) {
    std::vector<std::string> out;
    for (const auto& f : repo_files)
      if (is_folder_file(f)) out.push_back(f);
    return out;
  }
  if (ggufs.size() == 1) return ggufs;
  if (ggufs.empty()) throw Error(ref.repo + " holds neither a model folder (config.json) nor a GGUF file");
  throw Error(ref.repo + " holds several GGUF files; name one as " + ref.repo + ":Q4_K_M or " + ref.repo +
              ":FILE.gguf (" + list(ggufs) + ")");
}

Resolved resolve_cached(const ModelRef& ref, const fs::path& root) {
  RepoCache cache(root, ref.repo);
  std::error_code ec;
  if (!fs::is_directory(cache.dir(), ec)) throw Error(ref.repo + " is not in the cache (" + cache.dir().string() + ")");
  const auto commit = cache.commit_of(ref.revision);
  if (!commit) throw Error(ref.repo + ": revision '" + ref.revision + "' is not in the cache");
  const std::vector<std::string> have = cache.files(*commit);
  const std::vector<std::string> need = files_for(ref, have);
  if (need.empty()) throw Error(ref.repo + "@" + *commit + " has no model files in the cache");
  if (!ref.file.empty() || !ref.quant.empty() || (need.size() == 1 && ends_with(lower(need[0]), ".gguf")))
    return {cache.snapshot(*commit) / need[0], *commit};
  // A folder: everything a folder needs must be there (a pull that stopped half way is not a model).
  if (std::find(have.begin(), have.end(), "config.json") == have.end())
    throw Error(ref.repo + ": the cached snapshot has no config.json");
  return {cache.snapshot(*commit), *commit};
}

std::vector<CachedRepo> scan_cache(const fs::path& root) {
  std::vector<CachedRepo> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && e.path().filename().string().rfind("models--", 0) == 0) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    std::string name = d.filename().string().substr(8);
    const size_t sep = name.find("--");
    if (sep == std::string::npos) continue;
    name.replace(sep, 2, "/");
    CachedRepo repo;
    repo.repo = name;
    RepoCache cache(root, name);
    std::map<std::string, std::vector<std::string>> refs_of;
    if (fs::is_directory(d / "refs", ec))
      for (auto it = fs::recursive_directory_iterator(d / "refs", ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec))
        if (it->is_regular_file()) refs_of[read_small(it->path())].push_back(it->path().lexically_relative(d / "refs").generic_string());
    if (!fs::is_directory(d / "snapshots", ec)) continue;
    for (const auto& s : fs::directory_iterator(d / "snapshots", ec)) {
      if (!s.is_directory()) continue;
      CachedRevision rev;
      rev.commit = s.path().filename().string();
      rev.refs = refs_of[rev.commit];
      rev.files = cache.files(rev.commit);
      std::set<fs::path> blobs;
      std::set<std::string> quants;
      bool safetensors = false;
      for (const auto& f : rev.files) {
        const fs::path target = fs::canonical(cache.snapshot(rev.commit) / f, ec);
        if (!ec && blobs.insert(target).second) {
          struct stat st;
          if (::stat(target.c_str(), &st) == 0) {
            rev.bytes += uint64_t(st.st_size);
            rev.last_used = std::max(rev.last_used, std::max(st.st_atime, st.st_mtime));
          }
        }
        if (ends_with(lower(f), ".safetensors")) safetensors = true;
        if (ends_with(lower(f), ".gguf")) quants.insert(quant_of_filename(f).empty() ? "?" : quant_of_filename(f));
      }
      if (safetensors) rev.format = "safetensors";
      if (!quants.empty()) {
        std::string q;
        for (const auto& x : quants) q += (q.empty() ? "" : ",") + x;
        rev.format += (rev.format.empty() ? "gguf " : " + gguf ") + q;
      }
      repo.revisions.push_back(std::move(rev));
    }
    if (!repo.revisions.empty()) out.push_back(std::move(repo));
  }
  return out;
}

uint64_t remove_cached(const ModelRef& ref, const fs::path& root) {
  RepoCache cache(root, ref.repo);
  std::error_code ec;
  if (!fs::is_directory(cache.dir(), ec)) throw Error(ref.repo + " is not in the cache");
  std::vector<std::string> commits;
  if (ref.revision_given) {
    const auto c = cache.commit_of(ref.revision);
    if (!c) throw Error(ref.repo + ": revision '" + ref.revision + "' is not in the cache");
    commits.push_back(*c);
  } else if (fs::is_directory(cache.dir() / "snapshots", ec)) {
    for (const auto& s : fs::directory_iterator(cache.dir() / "snapshots")) commits.push_back(s.path().filename().string());
  }
  auto blob_size = [&](const fs::path& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
  };
  // Drop the snapshots and the refs that point at them.
  for (const auto& c : commits) fs::remove_all(cache.snapshot(c), ec);
  if (fs::is_directory(cache.dir() / "refs", ec)) {
    std::vector<fs::path> refs;
    for (auto it = fs::recursive_directory_iterator(cache.dir() / "refs", ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file()) refs.push_back(it->path());
    for (const auto& r : refs)
      if (std::find(commits.begin(), commits.end(), read_small(r)) != commits.end()) fs::remove(r, ec);
  }
  // Blobs still linked from a remaining snapshot stay.
  std::set<fs::path> kept;
  if (fs::is_directory(cache.dir() / "snapshots", ec))
    for (auto it = fs::recursive_directory_iterator(cache.dir() / "snapshots", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_symlink()) {
        const fs::path t = fs::weakly_canonical(it->path().parent_path() / fs::read_symlink(it->path()), ec);
        kept.insert(t);
      }
  uint64_t freed = 0;
  if (fs::is_directory(cache.dir() / "blobs", ec)) {
    std::vector<fs::path> drop;
    for (const auto& b : fs::directory_iterator(cache.dir() / "blobs", ec)) {
      const fs::path p = fs::weakly_canonical(b.path(), ec);
      if (!kept.count(p)) drop.push_back(b.path());
    }
    for (const auto& p : drop) {
      freed += blob_size(p);
      fs::remove(p, ec);
    }
  }
  bool empty = true;
  if (fs::is_directory(cache.dir() / "snapshots", ec))
    for (const auto& s : fs::directory_iterator(cache.dir() / "snapshots", ec)) {
      (void)s;
      empty = false;
    }
  if (empty) {
    fs::remove_all(cache.dir(), ec);
    fs::remove_all(cache.lock("x").parent_path(), ec);
  }
  return freed;
}

}  // namespace chassis::store

#include "store/hub_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"

namespace chassis::store {

namespace {

using Clock = std::chrono::steady_clock;

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// huggingface_hub's etag normalization: drop a weak "W/" prefix and the quotes.
std::string normalize_etag(std::string e) {
  e = trim(e);
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

std::string url_escape_path(const std::string& p) {
  std::string out;
  for (unsigned char c : p) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') out += char(c);
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

struct Response {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return "";
  }
};

size_t collect_body(char* p, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Response*>(ud);
  if (r->body.size() > (64u << 20)) return 0;  // an API answer is small; refuse to buffer more
  r->body.append(p, size * n);
  return size * n;
}

size_t collect_header(char* p, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Response*>(ud);
  std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) r->headers.clear();  // a new response (after a redirect)
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon);
    for (auto& c : k) c = char(std::tolower(static_cast<unsigned char>(c)));
    r->headers.emplace_back(k, trim(line.substr(colon + 1)));
  }
  return size * n;
}

struct CurlHandle {
  CURL* h;
  curl_slist* headers = nullptr;
  CurlHandle() : h(curl_easy_init()) {
    if (!h) throw Error("libcurl could not start a transfer");
  }
  ~CurlHandle() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
};

void common_options(CurlHandle& c, const std::string& url, const HubOptions& o) {
  curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.h, CURLOPT_USERAGENT, "chassis/0.1 (huggingface_hub-compatible)");
  curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT, 15L);
  // A stalled transfer (under 1 byte/s for 30 s) is an error, not a hang.
  curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (!o.token.empty()) {
    // libcurl does not send a custom Authorization header to another host after a redirect, so the
    // token never reaches the CDN.
    c.headers = curl_slist_append(c.headers, ("Authorization: Bearer " + o.token).c_str());
  }
  c.headers = curl_slist_append(c.headers, "Accept-Encoding: identity");
  curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.headers);
}

[[noreturn]] void fail_transport(CURLcode rc, const std::string& what, const HubOptions& o) {
  throw Error(what + ": cannot reach " + o.endpoint + " (" + curl_easy_strerror(rc) +
              "); without a network, set HF_HUB_OFFLINE=1 to use only the cache");
}

// The hub's answer to a failed request, as a message a user can act on.
[[noreturn]] void fail_status(const Response& r, const std::string& repo, const std::string& what, const HubOptions& o) {
  const std::string code = r.header("x-error-code");
  std::string hub_msg = r.header("x-error-message");
  if (r.status == 401 || r.status == 403) {
    if (o.token.empty())
      throw Error(repo + ": access denied (HTTP " + std::to_string(r.status) +
                  "): the repo is gated or private. Accept its terms on the hub, create an access token, and set "
                  "HF_TOKEN=hf_... (or HF_HUB_OFFLINE=1 to use only the cache)");
    throw Error(repo + ": access denied (HTTP " + std::to_string(r.status) +
                ") with the token in HF_TOKEN: it may lack read access, or the repo's terms are not accepted");
  }
  if (r.status == 404) {
    if (code == "RepoNotFound") throw Error(repo + ": no such repo on " + o.endpoint);
    if (code == "RevisionNotFound") throw Error(repo + ": " + what + ": no such revision");
    if (code == "EntryNotFound") throw Error(repo + ": " + what + ": no such file in the repo");
    throw Error(repo + ": " + what + ": not found (HTTP 404)");
  }
  if (hub_msg.empty() && r.body.size() < 300) hub_msg = r.body;
  throw Error(repo + ": " + what + ": the hub answered HTTP " + std::to_string(r.status) +
              (hub_msg.empty() ? "" : " (" + hub_msg + ")"));
}

// Draws "file  45%  12.3 MB / 27.1 MB  5.2 MB/s  ETA 3s" on a terminal; plain lines otherwise.
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, uint64_t start, bool tty)
      : label_(std::move(label)), total_(total), start_bytes_(start), tty_(tty), t0_(Clock::now()) {
    if (!tty_) std::fprintf(stderr, "downloading %s (%s%s)\n", label_.c_str(), human_bytes(double(total_)).c_str(),
                            start ? (", resuming at " + human_bytes(double(start))).c_str() : "");
  }
  void update(uint64_t done) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - t0_).count();
    const double rate = secs > 0 ? double(done - start_bytes_) / secs : 0;
    const double eta = rate > 0 && total_ > done ? double(total_ - done) / rate : 0;
    const int pct = total_ ? int(100.0 * double(done) / double(total_)) : 0;
    std::fprintf(stderr, "\r%-32.32s %3d%%  %s / %s  %s/s  ETA %.0fs   ", label_.c_str(), pct,
                 human_bytes(double(done)).c_str(), human_bytes(double(total_)).c_str(), human_bytes(rate).c_str(), eta);
    std::fflush(stderr);
  }
  void finish(uint64_t done) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
    if (tty_) {
      update(done);
      std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "downloaded %s: %s in %.1fs\n", label_.c_str(), human_bytes(double(done)).c_str(), secs);
    }
  }

 private:
  std::string label_;
  uint64_t total_, start_bytes_;
  bool tty_;
  Clock::time_point t0_, last_{};
};

struct DownloadState {
  FILE* out = nullptr;
  uint64_t written = 0;  // bytes in the file
  ProgressBar* bar = nullptr;
  long status = 0;
  bool write_failed = false;
  int write_errno = 0;
  CURL* h = nullptr;
};

size_t write_file(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<DownloadState*>(ud);
  if (s->status == 0) curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
  if (s->status != 200 && s->status != 206) return size * n;  // an error page: not file content
  if (std::fwrite(p, 1, size * n, s->out) != size * n) {
    s->write_failed = true;
    s->write_errno = errno;
    return 0;
  }
  s->written += size * n;
  if (s->bar) s->bar->update(s->written);
  return size * n;
}

// A file lock (flock) held for the life of the object.
class FileLock {
 public:
  explicit FileLock(const fs::path& p) {
    fs::create_directories(p.parent_path());
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(p.string() + ": cannot create the lock file");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::fprintf(stderr, "waiting for another download of the same file (%s)\n", p.filename().c_str());
      if (::flock(fd_, LOCK_EX) != 0) throw Error(p.string() + ": cannot lock");
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

 private:
  int fd_ = -1;
};

}  // namespace

HubOptions hub_options_from_env() {
  HubOptions o;
  if (auto e = env("HF_ENDPOINT"); !e.empty()) o.endpoint = e;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.token = env("HF_TOKEN");
  if (o.token.empty()) o.token = env("HUGGING_FACE_HUB_TOKEN");
  if (o.token.empty()) {
    fs::path token_file = env("HF_TOKEN_PATH");
    if (token_file.empty()) {
      const std::string home = env("HF_HOME");
      if (!home.empty()) token_file = fs::path(home) / "token";
      else if (!env("HOME").empty()) token_file = fs::path(env("HOME")) / ".cache" / "huggingface" / "token";
    }
    std::error_code ec;
    if (!token_file.empty() && fs::is_regular_file(token_file, ec)) {
      std::ifstream in(token_file);
      std::getline(in, o.token);
      o.token = trim(o.token);
    }
  }
  o.progress = ::isatty(STDERR_FILENO) != 0;
  return o;
}

HubClient::HubClient(HubOptions options) : options_(std::move(options)) { curl_init_once(); }

RepoInfo HubClient::repo_info(const std::string& repo, const std::string& revision) const {
  const std::string url = options_.endpoint + "/api/models/" + repo + "/revision/" + url_escape_path(revision);
  CurlHandle c;
  Response r;
  common_options(c, url, options_);
  curl_easy_setopt(c.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c.h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &r);
  const CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) fail_transport(rc, repo, options_);
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status != 200) fail_status(r, repo, "revision " + revision, options_);
  RepoInfo info;
  try {
    const auto j = nlohmann::json::parse(r.body);
    info.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) info.files.push_back(s.at("rfilename").get<std::string>());
  } catch (const std::exception& e) {
    throw Error(repo + ": the hub's file list is not what the API describes (" + e.what() + ")");
  }
  if (!is_commit_hash(info.commit)) throw Error(repo + ": the hub gave an invalid commit hash '" + info.commit + "'");
  return info;
}

FileMeta HubClient::file_meta(const std::string& repo, const std::string& revision, const std::string& file) const {
  // HEAD on resolve/, following only redirects on the hub itself (a renamed repo), not to the CDN:
  // the hub's own headers carry the commit, the etag and the size.
  std::string url = options_.endpoint + "/" + repo + "/resolve/" + url_escape_path(revision) + "/" + url_escape_path(file);
  for (int hops = 0; hops < 5; ++hops) {
    CurlHandle c;
    Response r;
    common_options(c, url, options_);
    curl_easy_setopt(c.h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &r);
    const CURLcode rc = curl_easy_perform(c.h);
    if (rc != CURLE_OK) fail_transport(rc, repo + ": " + file, options_);
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &r.status);
    const std::string location = r.header("location");
    const bool relative_redirect = r.status >= 300 && r.status < 400 && !location.empty() && location[0] == '/';
    if (relative_redirect && r.header("x-repo-commit").empty()) {
      url = options_.endpoint + location;
      continue;
    }
    if (r.status >= 400 || (r.status >= 300 && location.empty())) fail_status(r, repo, file, options_);
    FileMeta m;
    m.commit = r.header("x-repo-commit");
    m.etag = normalize_etag(r.header("x-linked-etag").empty() ? r.header("etag") : r.header("x-linked-etag"));
    const std::string size = r.header("x-linked-size").empty() ? r.header("content-length") : r.header("x-linked-size");
    m.size = size.empty() ? 0 : std::strtoull(size.c_str(), nullptr, 10);
    m.location = location.empty() ? url : (location[0] == '/' ? options_.endpoint + location : location);
    if (!is_commit_hash(m.commit)) throw Error(repo + ": " + file + ": the hub did not say which commit it serves");
    if (m.etag.empty() || m.etag.find('/') != std::string::npos || m.etag.find("..") != std::string::npos)
      throw Error(repo + ": " + file + ": the hub gave no usable etag");
    return m;
  }
  throw Error(repo + ": " + file + ": too many redirects");
}

void HubClient::download(const FileMeta& meta, const std::string& label, const fs::path& dest) const {
  std::string last_error;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    std::error_code ec;
    const uint64_t have = fs::exists(dest, ec) ? fs::file_size(dest, ec) : 0;
    if (meta.size > 0 && have == meta.size) return;  // complete already (verified by the caller)
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(dest.c_str(), "ab"), std::fclose);
    if (!out) throw Error(dest.string() + ": cannot write (" + std::strerror(errno) + ")");
    ProgressBar bar(label, meta.size, have, options_.progress);
    DownloadState st;
    st.out = out.get();
    st.written = have;
    st.bar = &bar;
    CurlHandle c;
    st.h = c.h;
    Response r;
    common_options(c, meta.location, options_);
    curl_easy_setopt(c.h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c.h, CURLOPT_MAXREDIRS, 10L);
    if (have > 0) curl_easy_setopt(c.h, CURLOPT_RANGE, (std::to_string(have) + "-").c_str());
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, write_file);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &st);
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &r);
    const CURLcode rc = curl_easy_perform(c.h);
    long status = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    if (std::fflush(out.get()) != 0 || st.write_failed) {
      const int err = st.write_failed ? st.write_errno : errno;
      out.reset();
      fs::remove(dest, ec);
      throw Error(dest.string() + ": writing failed (" + std::strerror(err) + (err == ENOSPC ? ": the disk is full" : "") +
                  "); the partial download was removed");
    }
    ::fsync(fileno(out.get()));
    out.reset();
    if (rc == CURLE_OK && status == 200 && have > 0) {
      // The server ignored the Range request and sent the whole file after what we had: start over.
      fs::remove(dest, ec);
      last_error = "the server does not resume downloads";
      continue;
    }
    if (rc == CURLE_OK && (status == 200 || status == 206)) {
      bar.finish(st.written);
      return;
    }
    if (rc == CURLE_OK && status == 416 && meta.size > 0 && have >= meta.size) return;
    if (rc == CURLE_OK && status >= 400) {
      r.status = status;
      fail_status(r, label, "download", options_);
    }
    last_error = rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(status);
    if (options_.progress) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "download of %s interrupted at %s (%s)%s\n", label.c_str(), human_bytes(double(st.written)).c_str(),
                 last_error.c_str(), attempt < options_.attempts ? "; resuming" : "");
    if (attempt < options_.attempts) std::this_thread::sleep_for(std::chrono::milliseconds(500 << (attempt - 1)));
  }
  throw Error(label + ": the download failed (" + last_error + "); what arrived is kept as " + dest.filename().string() +
              ", and the next pull resumes from there");
}

bool blob_matches_etag(const fs::path& file, const std::string& etag, std::string* actual) {
  const bool sha256 = etag.size() == 64;
  const bool git_sha1 = etag.size() == 40;
  if (!sha256 && !git_sha1) return true;  // an etag that is not a content hash cannot be checked
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), sha256 ? EVP_sha256() : EVP_sha1(), nullptr);
  std::error_code ec;
  if (git_sha1) {  // git hashes "blob <size>\0" + content
    const std::string header = "blob " + std::to_string(fs::file_size(file, ec)) + std::string(1, '\0');
    EVP_DigestUpdate(ctx.get(), header.data(), header.size());
  }
  std::ifstream in(file, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), size_t(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  if (actual) *actual = hex;
  std::string want = etag;
  for (auto& ch : want) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return hex == want;
}

Resolved pull(const ModelRef& ref, const fs::path& root, const HubClient& hub) {
  const RepoInfo info = hub.repo_info(ref.repo, ref.revision);
  const std::vector<std::string> files = files_for(ref, info.files);
  // Names come from the network: a hostile listing must not place links outside the snapshot.
  for (const auto& file : files) {
    const fs::path p(file);
    bool safe = !file.empty() && p.is_relative() && file.find('\\') == std::string::npos && file.find('\0') == std::string::npos;
    for (const auto& part : p) safe = safe && part != ".." && part != "." && !part.empty();
    if (!safe) throw Error(ref.repo + ": the hub lists an unsafe file name '" + file + "'");
  }
  RepoCache cache(root, ref.repo);
  fs::create_directories(cache.dir() / "blobs");
  for (const auto& file : files) {
    // Ask for the file at the commit the listing came from, so every file is of one snapshot.
    const FileMeta meta = hub.file_meta(ref.repo, info.commit, file);
    if (meta.commit != info.commit)
      throw Error(ref.repo + ": " + file + ": the hub served commit " + meta.commit + " for " + info.commit);
    const fs::path blob = cache.blob(meta.etag);
    std::error_code ec;
    if (!fs::exists(blob, ec)) {
      FileLock lock(cache.lock(meta.etag));
      if (!fs::exists(blob, ec)) {  // another pull may have finished it while we waited
        const fs::path part = cache.incomplete(meta.etag);
        hub.download(meta, file, part);
        std::string actual;
        const uint64_t got = fs::file_size(part, ec);
        if (meta.size > 0 && got != meta.size) {
          fs::remove(part, ec);
          throw Error(ref.repo + ": " + file + ": received " + std::to_string(got) + " bytes, the hub said " +
                      std::to_string(meta.size) + "; the downloaded data was discarded");
        }
        if (!blob_matches_etag(part, meta.etag, &actual)) {
          fs::remove(part, ec);
          throw Error(ref.repo + ": " + file + ": checksum mismatch (expected " + meta.etag + ", got " + actual +
                      "); the downloaded data was discarded");
        }
        fs::rename(part, blob);
      }
    }
    cache.link(info.commit, file, meta.etag);
  }
  cache.write_ref(ref.revision, info.commit);
  return resolve_cached(ref, root);
}

}  // namespace chassis::store

"""A local stand-in for the Hugging Face hub, for the model-store tests.

It serves the routes chassis uses, the way huggingface.co answers them:
  GET  /api/models/{repo}/revision/{rev}       {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD /{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size;
  GET  /{repo}/resolve/{rev}/{path}            small files: the bytes; LFS files: 302 to /cdn/{sha256}
  GET  /cdn/{sha256}                           the bytes, with Range support
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound) as the hub's do. Faults
are switched per blob: cut the connection after N bytes (once), throttle, or lie about the sha256.
"""
import hashlib
import http.server
import threading
import time
import urllib.parse

LFS_EXTENSIONS = ('.safetensors', '.gguf', '.bin', '.onnx')


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


class Repo:
    def __init__(self, name, revisions, gated_token=None):
        """revisions: {revision name: {path: bytes}}; a tag and "main" may share files."""
        self.name = name
        self.gated_token = gated_token
        self.commits = {}  # commit -> files
        self.refs = {}     # revision name -> commit
        for rev, files in revisions.items():
            commit = hashlib.sha1(f'{name}@{rev}'.encode()).hexdigest()
            self.commits[commit] = files
            self.refs[rev] = commit

    def commit_of(self, rev):
        if rev in self.refs:
            return self.refs[rev]
        return rev if rev in self.commits else None


class Hub:
    def __init__(self):
        self.repos = {}
        self.blobs = {}          # sha256 -> bytes
        self.cut_after = {}      # sha256 -> bytes to send before dropping the connection (once)
        self.throttle = {}       # sha256 -> seconds to sleep per 16 KiB
        self.wrong_sha = set()   # sha256s whose announced etag is wrong
        self.requests = []       # (method, path, range header)
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients that hang up are expected
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, repo: Repo):
        self.repos[repo.name] = repo
        for files in repo.commits.values():
            for data in files.values():
                self.blobs[hashlib.sha256(data).hexdigest()] = data

    def stop(self):
        self.server.shutdown()

    def count(self):
        with self.lock:
            return len(self.requests)

    def _handler(hub):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _send(self, status, headers=None, body=b'', head=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _error(self, status, code=None, head=False):
                self._send(status, {'X-Error-Code': code} if code else {}, f'{status} {code or ""}'.encode(), head)

            def do_HEAD(self):
                self._route(head=True)

            def do_GET(self):
                self._route(head=False)

            def _route(self, head):
                path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
                with hub.lock:
                    hub.requests.append((self.command, path, self.headers.get('Range')))
                parts = path.strip('/').split('/')
                if parts[0] == 'cdn' and len(parts) == 2:
                    return self._cdn(parts[1], head)
                if parts[0] == 'api' and len(parts) >= 6 and parts[1] == 'models' and parts[4] == 'revision':
                    repo, rev = f'{parts[2]}/{parts[3]}', '/'.join(parts[5:])
                    return self._api(repo, rev, head)
                if len(parts) >= 5 and parts[2] == 'resolve':
                    repo, rev, file = f'{parts[0]}/{parts[1]}', parts[3], '/'.join(parts[4:])
                    return self._resolve(repo, rev, file, head)
                self._error(404)

            def _repo(self, name, head):
                repo = hub.repos.get(name)
                if repo is None:
                    self._error(404, 'RepoNotFound', head)
                    return None
                if repo.gated_token and self.headers.get('Authorization') != f'Bearer {repo.gated_token}':
                    self._error(401, 'GatedRepo', head)
                    return None
                return repo

            def _api(self, name, rev, head):
                repo = self._repo(name, head)
                if repo is None:
                    return
                commit = repo.commit_of(rev)
                if commit is None:
                    return self._error(404, 'RevisionNotFound', head)
                import json
                body = json.dumps({'id': name, 'sha': commit,
                                   'siblings': [{'rfilename': f} for f in sorted(repo.commits[commit])]}).encode()
                self._send(200, {'Content-Type': 'application/json'}, body, head)

            def _resolve(self, name, rev, file, head):
                repo = self._repo(name, head)
                if repo is None:
                    return
                commit = repo.commit_of(rev)
                if commit is None:
                    return self._error(404, 'RevisionNotFound', head)
                data = repo.commits[commit].get(file)
                if data is None:
                    return self._error(404, 'EntryNotFound', head)
                headers = {'X-Repo-Commit': commit}
                if file.endswith(LFS_EXTENSIONS):
                    sha = hashlib.sha256(data).hexdigest()
                    announced = hashlib.sha256(data + b'tampered').hexdigest() if sha in hub.wrong_sha else sha
                    headers.update({'X-Linked-Etag': f'"{announced}"', 'X-Linked-Size': str(len(data)),
                                    'ETag': f'"{git_sha1(data)}"', 'Location': f'{hub.url}/cdn/{sha}'})
                    return self._send(302, headers, b'', head)
                headers['ETag'] = f'"{git_sha1(data)}"'
                self._send(200, headers, data, head)

            def _cdn(self, sha, head):
                data = hub.blobs.get(sha)
                if data is None:
                    return self._error(404, None, head)
                start = 0
                rng = self.headers.get('Range')
                if rng and rng.startswith('bytes=') and rng.endswith('-'):
                    start = int(rng[6:-1])
                if start >= len(data) and rng:
                    return self._send(416, {'Content-Range': f'bytes */{len(data)}'}, b'', head)
                body = data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Accept-Ranges', 'bytes')
                self.end_headers()
                if head:
                    return
                cut = hub.cut_after.pop(sha, None)
                delay = hub.throttle.get(sha, 0)
                sent = 0
                while sent < len(body):
                    n = 16384
                    if cut is not None:
                        n = min(n, cut - sent)
                        if n <= 0:
                            # Drop the connection mid-body, as a flaky network does.
                            self.wfile.flush()
                            self.connection.shutdown(2)
                            self.close_connection = True
                            return
                    try:
                        self.wfile.write(body[sent:sent + n])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent += n
                    if delay:
                        time.sleep(hub.throttle.get(sha, 0))

        return Handler

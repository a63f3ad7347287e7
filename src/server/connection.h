// Whether the client of a request is still connected. cpp-httplib 0.11 (Debian 12) neither exposes a
// request's socket nor tells a handler that its client left, and a server that keeps generating for
// a client that is gone wastes the batch; so we find the socket by its addresses and poll it.
#pragma once
#include <string>

namespace chassis::server {

class ClientConnection {
 public:
  // The open socket whose peer is remote_addr:remote_port and whose local port is local_port; -1
  // if none is found (then disconnects are noticed only when a write fails).
  ClientConnection(const std::string& remote_addr, int remote_port, int local_port);
  // True once the peer has closed or reset the connection (never blocks).
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace chassis::server

// wf/control.hpp - the control API served from a service (target wf::control).
//
//     wf::control_options o;
//     o.address = "127.0.0.1:7233";  // the default; port 0 picks a free one
//     wf::control_server control(store, o);
//     // ... control.port(), until the service stops; the destructor stops it.
//
// A gRPC server for wf.control.v1.Control (proto/wf/control.proto): list and
// search workflows, a workflow's state and decoded journal, resume a stuck
// one, purge finished ones, send a message into an inbox. It runs on threads
// of its own (gRPC's, and one for the store's operations), so it adds no work
// to the runtime's executor; what it changes goes through the store, so it
// works whichever runner holds a workflow. wf-server serves the same API for
// a database, as a process of its own; wfctl --server is its client.
//
// With `http_address`, it also serves HTTP there (https with the TLS below):
// GET /metrics, the `metrics` object in the Prometheus text format, for a
// scraper, and GET /healthz, "ok" while it runs.
//
// Security: it listens (gRPC and HTTP alike) on a loopback address unless
// tokens *and* TLS are configured (the constructor throws
// std::invalid_argument otherwise). With tokens, every call needs
// "authorization: Bearer <token>" (gRPC metadata, or the HTTP header on
// /metrics); read-only tokens may list, get and scrape, admin tokens may do
// everything. Page sizes and purge batches are bounded, requests are limited
// to `max_request_bytes` (HTTP: 413 beyond), and filters reach the store as
// values, never as SQL.
#ifndef WF_CONTROL_HPP
#define WF_CONTROL_HPP

#include <wf/store.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace wf {

class metrics;

struct control_options {
  /// host:port. A loopback host (127.0.0.1, ::1, localhost) needs nothing
  /// more; any other needs tokens and TLS. Port 0: a free port (port()).
  std::string address = "127.0.0.1:7233";
  /// Bearer tokens allowed to list and get.
  std::vector<std::string> read_tokens{};
  /// Bearer tokens allowed to do everything.
  std::vector<std::string> admin_tokens{};
  /// TLS, PEM text (not file names): both, or neither.
  std::string tls_certificate_chain{};
  std::string tls_private_key{};
  /// A request message above this is refused by gRPC (RESOURCE_EXHAUSTED).
  std::size_t max_request_bytes = 64 * 1024;
  /// Also serve HTTP here: /metrics and /healthz ("host:port", the same
  /// rules as `address`; empty: no HTTP). Port 0: a free port (http_port()).
  std::string http_address{};
  /// What /metrics serves (nullptr: it answers 404). The runtime's and the
  /// store's observer, usually. Needs `http_address`.
  std::shared_ptr<const ::wf::metrics> metrics{};
  /// Threads that serve calls (each call waits for the store on one).
  int threads = 4;
};

class control_server {
 public:
  /// Starts serving `store` (which must implement `store::admin()`;
  /// `send` needs `store::messages()` too). Throws std::invalid_argument
  /// for options it refuses, std::runtime_error if it cannot listen.
  control_server(std::shared_ptr<store> store, control_options options = {});
  /// Stops: calls under way are given a second to finish, then cancelled.
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  /// The port it listens on.
  unsigned short port() const noexcept;
  /// The port HTTP is served on (0 without `http_address`).
  unsigned short http_port() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wf

#endif  // WF_CONTROL_HPP

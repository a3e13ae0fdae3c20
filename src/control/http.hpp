// The control server's HTTP side (Boost.Beast): /metrics and /healthz, over
// plain TCP or TLS, on the control server's own io_context.
#ifndef WF_SRC_CONTROL_HTTP_HPP
#define WF_SRC_CONTROL_HTTP_HPP

#include <wf/control.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>

namespace wf::control {

class http_server {
 public:
  /// Listens on `o.http_address` at once (throws std::runtime_error if it
  /// cannot, std::invalid_argument for TLS material it cannot read) and
  /// serves on `io`, whose thread must run until stop() has been called.
  http_server(boost::asio::io_context& io, const control_options& o);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  unsigned short port() const noexcept;

  /// Closes the listening socket and every connection (from any thread;
  /// returns at once: the io_context's thread sees them end).
  void stop();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace wf::control

#endif  // WF_SRC_CONTROL_HTTP_HPP

// wf/http.hpp - branch calls to HTTP participants (target wf::http).
//
//     wf::http::client bank(io.get_executor());
//     auto trans_out = bank.action("http://bank-a:8081/api/TransOut", body);
//     auto revert = bank.handler("http://bank-a:8081/api/TransOutRevert", body);
//     co_await w.new_branch("TransOut").on_rollback(revert).run(trans_out);
//
// Each call POSTs the body to the URL with the workflow id, `trans_type=workflow`,
// the branch id and the op (`action`, `rollback`, `commit`, `finish`) added as
// query parameters, as DTM does, so a participant written for DTM in any
// language takes part unchanged. The answer follows DTM's conventions:
//  * 200: success; the response body is the result;
//  * 409: business failure: throws `wf::failure` (reason: the body);
//  * 425: not done yet: throws `wf::ongoing` (retried, interval kept);
//  * anything else, a timeout, a connection error, a body over the limit:
//    throws `wf::http::transport_error`, a transient error (retried).
//
// Connections are kept alive and reused, per host and port; every call has a
// timeout; nothing blocks a thread. A call made on a pooled connection that
// the server has closed meanwhile is sent again once on a new connection
// (participants guard themselves with the barrier, see docs/participants.md).
//
// Threading: a client and its calls live on one executor (its pool is not
// synchronised). The client must outlive the calls made with it; actions and
// handlers made by `action`/`handler` share its state and keep it alive.
#ifndef WF_HTTP_HPP
#define WF_HTTP_HPP

#include <wf/workflow.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace wf::http {

struct client_options {
  /// The whole call: connecting, sending and reading the answer.
  std::chrono::milliseconds timeout{std::chrono::seconds(3)};
  /// A larger response body is a transport_error (it is not read to the end).
  std::size_t max_response_body = 1 << 20;
  /// Idle connections kept per host and port.
  std::size_t max_idle_per_host = 32;
};

/// A call that did not get one of the answers above (transient).
class transport_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class client {
 public:
  explicit client(boost::asio::any_io_executor executor, client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// POSTs `body` to `url` ("http://host[:port]/path[?query]") for the branch
  /// call `call`; returns the response body of a 200. Throws as listed above;
  /// `std::invalid_argument` for a URL that is not http://.
  boost::asio::awaitable<std::string> post(const branch_context& call, std::string url, std::string body);

  /// A branch action that posts `body` to `url`.
  raw_action action(std::string url, std::string body = {});
  /// An on_rollback / on_commit / on_finish handler that posts `body` to `url`.
  wf::handler handler(std::string url, std::string body = {});

  /// Connections opened so far (for tests and monitoring).
  std::size_t connections_opened() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace wf::http

#endif  // WF_HTTP_HPP

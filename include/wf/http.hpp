// wf/http.hpp - branch calls to HTTP participants (target wf::http).
//
//     wf::http::client bank(io.get_executor(), {.headers = {{"Authorization", "Bearer " + token}}});
//     auto trans_out = bank.action("https://bank-a:8081/api/TransOut", body);
//     auto revert = bank.handler("https://bank-a:8081/api/TransOutRevert", body);
//     co_await w.new_branch("TransOut").on_rollback(revert).run(trans_out);
//
// Each call POSTs the body to the URL with the workflow id, `trans_type=workflow`,
// the branch id and the op (`action`, `rollback`, `commit`, `finish`) added as
// query parameters, as DTM does, so a participant written for DTM in any
// language takes part unchanged. The answer follows DTM's conventions:
//  * 200: success; the response body is the result;
//  * 409: business failure: throws `wf::failure` (reason: the body);
//  * 425: not done yet: throws `wf::ongoing` (retried, interval kept);
//  * anything else, a timeout, a connection or TLS error, a body over the
//    limit: throws `wf::http::transport_error`, a transient error (retried).
// With `client_options::dtm_legacy_bodies`, a 200 is also read as DTM's clients
// before v1.10 read it: a body containing `ONGOING` is `wf::ongoing`, else one
// containing `FAILURE` is `wf::failure` (reason: the body).
//
// URLs are http:// or https://. Over https, the server's certificate is
// verified (against the system's CAs, or `client_options::ca_file`) and must
// name the URL's host; a certificate that does not verify is a
// `transport_error` saying so. A URL that is not one of these, or options
// that cannot be sent (a header with a CR or LF...), throw
// `std::invalid_argument` when the action, handler or call is made: a bug in
// the caller, not something to retry. Error messages name the URL's host and
// port, never a header's value.
//
// Completion: every call ends within its timeout (`call_options::timeout`,
// else `client_options::timeout`), which covers the whole call: resolving the
// host name, connecting, the TLS handshake, sending and reading the answer.
// A host name lookup is made by the system resolver on Asio's resolver thread
// and cannot be interrupted: a call whose lookup outlives the timeout fails at
// the timeout, and the lookup's late answer is dropped.
//
// Cancellation: a call in progress honours the awaiting coroutine's
// per-operation cancellation of type terminal (a cancellation slot bound to
// `co_spawn`'s completion, or the losing side of awaitable operators' `||`):
// whatever it is doing, it ends at once with `boost::system::system_error`
// (`boost::asio::error::operation_aborted`), and its connection is closed,
// never reused. The request may have reached the participant by then, as with
// a timeout: participants guard themselves with the barrier.
//
// Connections are kept alive and reused, per scheme, host and port; nothing
// blocks a thread. A call made on a pooled connection that the server has
// closed meanwhile is sent again once on a new connection, headers and all
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
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace wf::http {

/// Header fields, sent in this order; a name may repeat. Names are HTTP
/// tokens; values hold no control character but tab. `Host`, `Content-Type`
/// (see `content_type`), `Content-Length`, `Transfer-Encoding` and `Connection`
/// are the client's to set and are refused.
using header_list = std::vector<std::pair<std::string, std::string>>;

struct client_options {
  /// The whole call: resolving, connecting, the TLS handshake, sending and
  /// reading the answer. Positive.
  std::chrono::milliseconds timeout{std::chrono::seconds(3)};
  /// A larger response body is a transport_error (it is not read to the end).
  std::size_t max_response_body = 1 << 20;
  /// Idle connections kept per scheme, host and port.
  std::size_t max_idle_per_host = 32;
  /// Sent with every call (an authorisation token, a tenant...), retries and
  /// resends included.
  header_list headers{};
  /// The body's Content-Type; empty: none is sent.
  std::string content_type = "application/json";
  /// For https://: a PEM file of the CA certificates to trust instead of the
  /// system's default ones (a private CA). Read when the client is made.
  std::string ca_file{};
  /// Read a 200's body as DTM's clients before v1.10 do (see above), for
  /// participants that answer 200 with `{"dtm_result":"FAILURE"}`. Off by
  /// default: a result that happens to contain these words is then a result.
  bool dtm_legacy_bodies = false;
};

/// What one action, handler or call changes from the client's options.
struct call_options {
  /// Sent after the client's headers; a name given here replaces the
  /// client's fields of that name.
  header_list headers{};
  /// Instead of `client_options::timeout`. Positive.
  std::optional<std::chrono::milliseconds> timeout{};
  /// Instead of `client_options::content_type`.
  std::optional<std::string> content_type{};
};

/// A call that did not get one of the answers above (transient).
class transport_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class client {
 public:
  /// Throws `std::invalid_argument` for options that cannot be used (a bad
  /// header, a timeout that is not positive, a `ca_file` that cannot be read).
  explicit client(boost::asio::any_io_executor executor, client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// POSTs `body` to `url` ("http[s]://host[:port]/path[?query]") for the
  /// branch call `call`; returns the response body of a 200. Throws as listed
  /// above; `std::invalid_argument` (before any I/O) for a bad URL or options.
  /// `call` is read before this returns; the rest is copied.
  boost::asio::awaitable<std::string> post(const branch_context& call, std::string url, std::string body,
                                           call_options options = {});

  /// A branch action that posts `body` to `url`. The URL and options are
  /// checked now (`std::invalid_argument`).
  raw_action action(std::string url, std::string body = {}, call_options options = {});
  /// An on_rollback / on_commit / on_finish handler that posts `body` to
  /// `url`. The URL and options are checked now (`std::invalid_argument`).
  wf::handler handler(std::string url, std::string body = {}, call_options options = {});

  /// Connections opened so far (for tests and monitoring).
  std::size_t connections_opened() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace wf::http

#endif  // WF_HTTP_HPP

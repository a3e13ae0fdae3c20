// wf/grpc.hpp - branch calls to gRPC participants (target wf::grpc).
//
//     std::shared_ptr<bank::Bank::Stub> stub = bank::Bank::NewStub(channel);
//     auto trans_out = wf::grpc::action(stub, &bank::Bank::Stub::async::TransOut, request);
//     auto revert = wf::grpc::handler(stub, &bank::Bank::Stub::async::TransOutRevert, request);
//     bank::Reply reply = co_await w.new_branch("TransOut").on_rollback(revert).run(trans_out);
//
// A unary method is named by its member of the generated stub's callback
// interface (`Stub::async`); the call is made with gRPC's callback API and
// completes on the awaiting coroutine's executor, so no thread waits for it.
// The workflow id, `workflow`, the branch id and the op (`action`,
// `rollback`, `commit`, `finish`) go as the metadata `dtm-gid`,
// `dtm-trans_type`, `dtm-branch_id` and `dtm-op`, as DTM sends them, so a
// participant written for DTM in any language takes part unchanged. The
// status follows DTM's conventions:
//  * OK: success; the response message is the result (journaled in its wire
//    format, see wf/protobuf.hpp);
//  * ABORTED: business failure: throws `wf::failure` (reason: the message);
//  * FAILED_PRECONDITION: not done yet: throws `wf::ongoing` (retried,
//    interval kept);
//  * any other status, including DEADLINE_EXCEEDED and UNAVAILABLE: throws
//    `wf::grpc::status_error`, a transient error (retried).
//
// Every call has a deadline (`call_options::timeout`). The awaiting
// coroutine's executor must stay alive until the call completes: the call
// keeps it busy (outstanding work) meanwhile, as any Asio operation does.
//
// For participants written in C++ with gRPC, `client_metadata` reads a
// ServerContext's metadata for `wf::barrier_from_metadata` (wf/barrier.hpp),
// and `failure_status` / `ongoing_status` make the answers above.
#ifndef WF_GRPC_HPP
#define WF_GRPC_HPP

#include <wf/protobuf.hpp>
#include <wf/workflow.hpp>

#include <boost/asio/awaitable.hpp>

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace wf::grpc {

struct call_options {
  /// The call's deadline, from the moment it is sent.
  std::chrono::milliseconds timeout{std::chrono::seconds(3)};
  /// Wait for the channel to be ready instead of failing at once while the
  /// server is unreachable (both are transient to wf; this only changes how
  /// the time is spent).
  bool wait_for_ready = false;
};

/// A call that ended with a status other than OK, ABORTED or
/// FAILED_PRECONDITION (transient: the workflow retries it).
class status_error : public std::runtime_error {
 public:
  status_error(::grpc::StatusCode code, const std::string& message);
  ::grpc::StatusCode code() const noexcept { return code_; }

 private:
  ::grpc::StatusCode code_;
};

/// A unary method of a generated stub's callback interface, e.g.
/// `&bank::Bank::Stub::async::TransOut`.
template <class Async, class Request, class Response>
using unary_method = void (Async::*)(::grpc::ClientContext*, const Request*, Response*,
                                     std::function<void(::grpc::Status)>);

namespace detail {
/// Starts the call on the context it is given, with the callback it is given.
using start_fn = std::function<void(::grpc::ClientContext*, std::function<void(::grpc::Status)>)>;
/// Makes the context (metadata, deadline), runs `start`, waits for the
/// callback and maps the status. `keep` is held until the call has completed
/// (the request and response live in it).
boost::asio::awaitable<void> unary(const branch_context& call, const call_options& options,
                                   std::shared_ptr<void> keep, start_fn start);

template <class Request, class Response>
struct exchange {
  Request request;
  Response response;
};
}  // namespace detail

/// Calls `method` on `stub` with `request` for the branch call `call`, and
/// returns the response. Throws as listed at the top of this file.
template <class Stub, class Async, class Request, class Response>
boost::asio::awaitable<Response> call(const branch_context& call, std::shared_ptr<Stub> stub,
                                      unary_method<Async, Request, Response> method,
                                      std::type_identity_t<Request> request, call_options options = {}) {
  auto ex = std::make_shared<detail::exchange<Request, Response>>();
  ex->request = std::move(request);
  detail::start_fn start = [stub, method, ex](::grpc::ClientContext* ctx, std::function<void(::grpc::Status)> done) {
    (stub->async()->*method)(ctx, &ex->request, &ex->response, std::move(done));
  };
  std::shared_ptr<void> keep = ex;
  co_await detail::unary(call, options, std::move(keep), std::move(start));
  co_return std::move(ex->response);
}

/// A branch action that calls `method` with `request`; its result is the
/// response message (`run` returns it, decoded by wf's Protobuf codec).
template <class Stub, class Async, class Request, class Response>
auto action(std::shared_ptr<Stub> stub, unary_method<Async, Request, Response> method,
            std::type_identity_t<Request> request, call_options options = {}) {
  return [stub = std::move(stub), method, request = std::move(request),
          options](const branch_context& c) -> boost::asio::awaitable<Response> {
    return wf::grpc::call(c, stub, method, request, options);
  };
}

/// An on_rollback / on_commit / on_finish handler that calls `method` with
/// `request` (the response is ignored; an error status is retried).
template <class Stub, class Async, class Request, class Response>
wf::handler handler(std::shared_ptr<Stub> stub, unary_method<Async, Request, Response> method,
                    std::type_identity_t<Request> request, call_options options = {}) {
  auto f = [stub = std::move(stub), method, request = std::move(request),
            options](const branch_context& c) -> boost::asio::awaitable<void> {
    co_await wf::grpc::call(c, stub, method, request, options);
  };
  return f;
}

// ---- for participants

/// The metadata of an incoming call, as strings, for `wf::barrier_from_metadata`.
/// (`ServerContextBase` is declared by <grpcpp/client_context.h>; server code
/// has the full type from its generated service header.)
std::multimap<std::string, std::string> client_metadata(const ::grpc::ServerContextBase& context);

/// The status that tells wf (and DTM) "refused for good": ABORTED.
::grpc::Status failure_status(const std::string& reason);
/// The status that tells wf (and DTM) "not done yet, ask again": FAILED_PRECONDITION.
::grpc::Status ongoing_status(const std::string& reason = "ongoing");

}  // namespace wf::grpc

#endif  // WF_GRPC_HPP

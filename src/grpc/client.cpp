#include <wf/errors.hpp>
#include <wf/grpc.hpp>

#include "../remote_completion.hpp"
#include "../text.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <grpcpp/server_context.h>


namespace asio = boost::asio;

namespace wf::grpc {

namespace {

const char* code_name(::grpc::StatusCode code) {
  switch (code) {
    case ::grpc::StatusCode::OK: return "OK";
    case ::grpc::StatusCode::CANCELLED: return "CANCELLED";
    case ::grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case ::grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case ::grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case ::grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case ::grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case ::grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case ::grpc::StatusCode::ABORTED: return "ABORTED";
    case ::grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case ::grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case ::grpc::StatusCode::INTERNAL: return "INTERNAL";
    case ::grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case ::grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case ::grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "status";
  }
}

// Throws what a status other than OK means to wf. (A plain function: no
// temporaries of a conditional expression in a coroutine, see concepts.md.)
[[noreturn]] void throw_for(const ::grpc::Status& status) {
  std::string message = status.error_message();
  if (message.empty()) message = code_name(status.error_code());
  switch (status.error_code()) {
    case ::grpc::StatusCode::ABORTED:
      throw wf::failure(message);
    case ::grpc::StatusCode::FAILED_PRECONDITION:
      throw wf::ongoing(message);
    default:
      throw status_error(status.error_code(),
                         std::string("wf::grpc: ") + code_name(status.error_code()) + ": " + wf::detail::snippet(message));
  }
}

}  // namespace

status_error::status_error(::grpc::StatusCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

namespace detail {

asio::awaitable<void> unary(const branch_context& call, const call_options& options, std::shared_ptr<void> keep,
                            start_fn start) {
  auto context = std::make_shared<::grpc::ClientContext>();
  context->AddMetadata("dtm-gid", std::string(call.gid));
  context->AddMetadata("dtm-trans_type", "workflow");
  context->AddMetadata("dtm-branch_id", std::string(call.branch_id));
  context->AddMetadata("dtm-op", std::string(call.op));
  context->set_deadline(std::chrono::system_clock::now() + options.timeout);
  context->set_wait_for_ready(options.wait_for_ready);

  auto init = [&context, &keep, &start](auto handler) {
    // Cancelling the awaiting operation cancels the call (it then ends with CANCELLED).
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected())
      slot.assign([c = context](asio::cancellation_type) { c->TryCancel(); });
    // The handler runs on the coroutine's executor; the context and the
    // exchange go with it, so they are released there and not inside gRPC's
    // callback. If that executor's io_context is gone by then, nothing runs.
    auto ex = asio::get_associated_executor(handler);
    auto complete = asio::bind_executor(
        ex, [h = std::move(handler), context, keep = std::move(keep), slot](::grpc::Status s) mutable {
          if (slot.is_connected()) slot.clear();
          std::move(h)(std::move(s));
        });
    auto completion = std::make_shared<wf::detail::remote_completion<::grpc::Status>>(std::move(complete));
    // gRPC runs this on one of its threads, once.
    auto done = [completion](::grpc::Status status) { completion->complete(std::move(status)); };
    start(context.get(), std::move(done));
  };
  ::grpc::Status status =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(::grpc::Status)>(init, asio::use_awaitable);

  if (!status.ok()) throw_for(status);
}

}  // namespace detail

std::multimap<std::string, std::string> client_metadata(const ::grpc::ServerContextBase& context) {
  std::multimap<std::string, std::string> out;
  for (const auto& [key, value] : context.client_metadata())
    out.emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
  return out;
}

::grpc::Status failure_status(const std::string& reason) {
  return ::grpc::Status(::grpc::StatusCode::ABORTED, reason);
}

::grpc::Status ongoing_status(const std::string& reason) {
  return ::grpc::Status(::grpc::StatusCode::FAILED_PRECONDITION, reason);
}

}  // namespace wf::grpc

// The bank's gRPC server: transfer.v1.Bank (bank.proto) over the ledger.
#include "bank_service.hpp"

#include "bank.grpc.pb.h"

#include <wf/errors.hpp>
#include <wf/grpc.hpp>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <thread>

namespace transfer {

namespace {

using v1::BankReply;
using v1::BankRequest;

// The synchronous service: gRPC runs each call on a thread of its pool, and
// the ledger blocks that thread on its database transaction.
class bank_service final : public v1::Bank::Service {
 public:
  explicit bank_service(ledger& bank) : bank_(bank) {}

#define WF_BANK_METHOD(name)                                                                          \
  ::grpc::Status name(::grpc::ServerContext* context, const BankRequest* request, BankReply* reply) override { \
    return serve(#name, *context, *request, *reply);                                                  \
  }
  WF_BANK_METHOD(TransOut)
  WF_BANK_METHOD(TransOutRevert)
  WF_BANK_METHOD(TransIn)
  WF_BANK_METHOD(TransInRevert)
  WF_BANK_METHOD(TransOutTry)
  WF_BANK_METHOD(TransOutConfirm)
  WF_BANK_METHOD(TransOutCancel)
  WF_BANK_METHOD(TransInTry)
  WF_BANK_METHOD(TransInConfirm)
  WF_BANK_METHOD(TransInCancel)
#undef WF_BANK_METHOD

 private:
  ::grpc::Status serve(const std::string& method, const ::grpc::ServerContext& context, const BankRequest& request,
                       BankReply& reply) {
    if (const auto [d, left] = bank_.disturbed(); d == disturbance::silent) {
      // Answer nothing: hold the call past the period (and the client's deadline).
      std::this_thread::sleep_for(left);
      return ::grpc::Status(::grpc::StatusCode::UNAVAILABLE, "disturbed: silent");
    }
    try {
      const wf::barrier_info info = wf::barrier_from_metadata(wf::grpc::client_metadata(context));
      const bank_request r{request.account(), request.amount(), request.fail()};
      reply.set_outcome(bank_.serve(method, info, r));
      return ::grpc::Status::OK;
    } catch (const wf::failure& e) {
      return wf::grpc::failure_status(e.what());
    } catch (const wf::ongoing& e) {
      return wf::grpc::ongoing_status(e.what());
    } catch (const std::invalid_argument& e) {
      return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT, e.what());
    } catch (const std::exception& e) {
      return ::grpc::Status(::grpc::StatusCode::INTERNAL, e.what());
    }
  }

  ledger& bank_;
};

}  // namespace

struct grpc_server::impl {
  explicit impl(ledger& bank) : service(bank) {}
  bank_service service;
  std::unique_ptr<::grpc::Server> server;
  int port = 0;
};

grpc_server::grpc_server(ledger& bank, const std::string& address, unsigned short port)
    : impl_(std::make_unique<impl>(bank)) {
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(address + ":" + std::to_string(port), ::grpc::InsecureServerCredentials(), &impl_->port);
  builder.RegisterService(&impl_->service);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0)
    throw std::runtime_error("bank: cannot listen for gRPC on " + address + ":" + std::to_string(port));
}

grpc_server::~grpc_server() {
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
}

unsigned short grpc_server::port() const noexcept { return static_cast<unsigned short>(impl_->port); }

std::string grpc_server::target() const { return "127.0.0.1:" + std::to_string(port()); }

}  // namespace transfer

#include "remote_bank.hpp"

#include "bank.grpc.pb.h"

#include <wf/grpc.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace asio = boost::asio;

namespace transfer {

namespace {

class http_bank final : public bank {
 public:
  http_bank(std::shared_ptr<wf::http::client> client, std::string base_url)
      : client_(std::move(client)), base_(std::move(base_url)) {}

  asio::awaitable<void> trans_out(const wf::branch_context& c, bank_request r) override {
    co_await call(c, "TransOut", r);
  }
  asio::awaitable<void> trans_out_revert(const wf::branch_context& c, bank_request r) override {
    co_await call(c, "TransOutRevert", r);
  }
  asio::awaitable<void> trans_in(const wf::branch_context& c, bank_request r) override {
    co_await call(c, "TransIn", r);
  }
  asio::awaitable<void> trans_in_revert(const wf::branch_context& c, bank_request r) override {
    co_await call(c, "TransInRevert", r);
  }

 private:
  asio::awaitable<void> call(const wf::branch_context& c, const char* method, const bank_request& r) {
    boost::json::object body;
    body["account"] = r.account;
    body["amount"] = r.amount;
    body["fail"] = r.fail;
    std::string url = base_ + "/api/" + method;
    std::string text = boost::json::serialize(body);
    co_await client_->post(c, std::move(url), std::move(text));
  }

  std::shared_ptr<wf::http::client> client_;
  std::string base_;
};

class grpc_bank final : public bank {
 public:
  grpc_bank(const std::string& target, std::chrono::milliseconds timeout)
      : stub_(v1::Bank::NewStub(::grpc::CreateChannel(target, ::grpc::InsecureChannelCredentials()))) {
    options_.timeout = timeout;
  }

  using method = wf::grpc::unary_method<class v1::Bank::Stub::async, v1::BankRequest, v1::BankReply>;

  asio::awaitable<void> trans_out(const wf::branch_context& c, bank_request r) override {
    co_await call(c, &v1::Bank::Stub::async::TransOut, r);
  }
  asio::awaitable<void> trans_out_revert(const wf::branch_context& c, bank_request r) override {
    co_await call(c, &v1::Bank::Stub::async::TransOutRevert, r);
  }
  asio::awaitable<void> trans_in(const wf::branch_context& c, bank_request r) override {
    co_await call(c, &v1::Bank::Stub::async::TransIn, r);
  }
  asio::awaitable<void> trans_in_revert(const wf::branch_context& c, bank_request r) override {
    co_await call(c, &v1::Bank::Stub::async::TransInRevert, r);
  }

 private:
  asio::awaitable<void> call(const wf::branch_context& c, method m, const bank_request& r) {
    v1::BankRequest request;
    request.set_account(r.account);
    request.set_amount(r.amount);
    request.set_fail(r.fail);
    co_await wf::grpc::call(c, stub_, m, std::move(request), options_);
  }

  std::shared_ptr<v1::Bank::Stub> stub_;
  wf::grpc::call_options options_;
};

}  // namespace

std::shared_ptr<bank> make_http_bank(std::shared_ptr<wf::http::client> client, std::string base_url) {
  return std::make_shared<http_bank>(std::move(client), std::move(base_url));
}

std::shared_ptr<bank> make_grpc_bank(const std::string& target, std::chrono::milliseconds timeout) {
  return std::make_shared<grpc_bank>(target, timeout);
}

}  // namespace transfer

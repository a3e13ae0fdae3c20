// wf::control_server: wf.control.v1.Control over a store (wf/control.hpp).
//
// gRPC's synchronous server runs each call on a thread of its pool; the call
// starts the store's operation on the server's own io_context (one thread,
// which the store's coroutines run on) and waits for it, giving up if the
// client cancels.
#include <wf/control.hpp>

#include "control/auth.hpp"
#include "control/convert.hpp"
#include "control/http.hpp"
#include "control.grpc.pb.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace asio = boost::asio;

namespace wf {

namespace {

namespace v1 = ::wf::control::v1;
using ::grpc::ServerContext;
using ::grpc::Status;
using ::grpc::StatusCode;

constexpr std::uint32_t max_purge = 10000;

using control::role;
using control::verdict;

class control_service final : public v1::Control::Service {
 public:
  control_service(std::shared_ptr<store> st, const control_options& o, asio::io_context& io)
      : store_(std::move(st)), tokens_(o.read_tokens, o.admin_tokens), io_(io) {}

  Status ListWorkflows(ServerContext* ctx, const v1::ListWorkflowsRequest* req,
                       v1::ListWorkflowsResponse* resp) override {
    if (auto denied = authorize(*ctx, role::read)) return *denied;
    return guarded([&]() -> Status {
      auto page = wait(*ctx, admin().list(control::from_proto(*req)));
      if (!page) return cancelled();
      for (const auto& s : page->workflows) control::to_proto(s, *resp->add_workflows());
      resp->set_next(page->next);
      if (page->total) {
        resp->set_has_total(true);
        resp->set_total(*page->total);
      }
      return Status::OK;
    });
  }

  Status GetWorkflow(ServerContext* ctx, const v1::GetWorkflowRequest* req, v1::GetWorkflowResponse* resp) override {
    if (auto denied = authorize(*ctx, role::read)) return *denied;
    return guarded([&]() -> Status {
      auto state = wait(*ctx, store_->find(req->gid()));
      if (!state) return cancelled();
      if (!*state) return no_such(req->gid());
      auto journal = wait(*ctx, store_->journal(req->gid()));
      if (!journal) return cancelled();
      control::to_proto(**state, *resp->mutable_workflow());
      for (const auto& r : *journal) control::to_proto(r, *resp->add_journal());
      return Status::OK;
    });
  }

  Status ResumeWorkflow(ServerContext* ctx, const v1::ResumeWorkflowRequest* req,
                        v1::ResumeWorkflowResponse* resp) override {
    if (auto denied = authorize(*ctx, role::admin)) return *denied;
    return guarded([&]() -> Status {
      auto resumed = wait(*ctx, admin().resume(req->gid()));
      if (!resumed) return cancelled();
      resp->set_resumed(*resumed);
      return Status::OK;
    });
  }

  Status PurgeWorkflows(ServerContext* ctx, const v1::PurgeWorkflowsRequest* req,
                        v1::PurgeWorkflowsResponse* resp) override {
    if (auto denied = authorize(*ctx, role::admin)) return *denied;
    return guarded([&]() -> Status {
      if (req->before_ms() <= 0) return invalid("purge needs a time (before_ms) after 1970");
      if (req->limit() > max_purge)
        return invalid("purge takes at most " + std::to_string(max_purge) + " workflows at a time");
      const std::size_t limit = req->limit() == 0 ? 1000 : req->limit();
      auto purged = wait(*ctx, admin().purge(control::from_ms(req->before_ms()), limit));
      if (!purged) return cancelled();
      resp->set_purged(*purged);
      return Status::OK;
    });
  }

  Status SendMessage(ServerContext* ctx, const v1::SendMessageRequest* req, v1::SendMessageResponse* resp) override {
    if (auto denied = authorize(*ctx, role::admin)) return *denied;
    return guarded([&]() -> Status {
      auto* messages = store_->messages();
      if (!messages) return Status(StatusCode::UNIMPLEMENTED, "wf control: this store has no inboxes");
      if (req->key().empty()) return invalid("a message needs a key (a second one with the same key is dropped)");
      if (req->topic().empty()) return invalid("a message needs a topic");
      message m{req->gid(), req->topic(), req->payload(), req->key()};
      auto sent = wait(*ctx, messages->send(std::move(m), false));
      if (!sent) return cancelled();
      if (*sent == send_status::unknown) return no_such(req->gid());
      resp->set_outcome(to_string(*sent));
      return Status::OK;
    });
  }

 private:
  store_admin& admin() {
    auto* a = store_->admin();
    if (!a) throw std::logic_error("wf control: the store has no administration (store::admin())");
    return *a;
  }

  // Runs `a` on the server's io_context; nullopt if the client gave up first.
  template <class T>
  std::optional<T> wait(ServerContext& ctx, asio::awaitable<T> a) {
    auto f = asio::co_spawn(io_, std::move(a), asio::use_future);
    while (f.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready)
      if (ctx.IsCancelled()) return std::nullopt;  // (the operation finishes on its own)
    return f.get();
  }

  std::optional<Status> authorize(const ServerContext& ctx, role needed) const {
    if (!tokens_.required()) return std::nullopt;
    const auto& md = ctx.client_metadata();
    const auto it = md.find("authorization");
    std::optional<std::string_view> value;
    if (it != md.end()) value.emplace(it->second.data(), it->second.size());
    const auto v = tokens_.judge(value, needed);
    if (v == verdict::allowed) return std::nullopt;
    const auto code = v == verdict::read_only ? StatusCode::PERMISSION_DENIED : StatusCode::UNAUTHENTICATED;
    return Status(code, "wf control: " + std::string(control::explain(v)));
  }

  template <class F>
  static Status guarded(F&& f) {
    try {
      return f();
    } catch (const std::invalid_argument& e) {
      return invalid(e.what());
    } catch (const std::exception& e) {
      return Status(StatusCode::UNAVAILABLE, std::string("wf control: the store failed: ") + e.what());
    }
  }
  static Status invalid(const std::string& why) { return Status(StatusCode::INVALID_ARGUMENT, "wf control: " + why); }
  static Status cancelled() { return Status(StatusCode::CANCELLED, "wf control: cancelled by the client"); }
  static Status no_such(const std::string& gid) {
    return Status(StatusCode::NOT_FOUND, "wf control: no workflow '" + clipped(gid) + "'");
  }
  static std::string clipped(const std::string& s) { return s.size() > 200 ? s.substr(0, 200) + "..." : s; }

  std::shared_ptr<store> store_;
  control::tokens tokens_;
  asio::io_context& io_;
};

void check(const std::shared_ptr<store>& st, const control_options& o) {
  if (!st) throw std::invalid_argument("wf::control_server: no store");
  if (!st->admin()) throw std::invalid_argument("wf::control_server: the store has no administration (store::admin())");
  if (o.tls_certificate_chain.empty() != o.tls_private_key.empty())
    throw std::invalid_argument("wf::control_server: TLS needs both a certificate chain and a private key");
  for (const auto* list : {&o.read_tokens, &o.admin_tokens})
    for (const auto& t : *list)
      if (t.size() < 16 || t.find_first_of(" \t\r\n") != std::string::npos)
        throw std::invalid_argument("wf::control_server: a token must be at least 16 characters, without spaces");
  const bool tokens = !o.read_tokens.empty() || !o.admin_tokens.empty();
  const bool tls = !o.tls_certificate_chain.empty();
  if (o.address.empty()) throw std::invalid_argument("wf::control_server: no address");
  for (const auto* address : {&o.address, &o.http_address})
    if (!address->empty() && !control::is_loopback(*address) && !(tokens && tls))
      throw std::invalid_argument("wf::control_server: '" + *address +
                                  "' is not a loopback address: listening there needs tokens and TLS");
  if (o.metrics && o.http_address.empty())
    throw std::invalid_argument("wf::control_server: metrics are served over HTTP: set http_address too");
  if (o.max_request_bytes == 0 || o.max_request_bytes > (64u << 20))
    throw std::invalid_argument("wf::control_server: max_request_bytes must be 1 byte to 64 MiB");
}

}  // namespace

struct control_server::impl {
  impl(std::shared_ptr<store> st, const control_options& o) : service(std::move(st), o, io) {}

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  control_service service;
  std::unique_ptr<::grpc::Server> server;
  std::optional<control::http_server> http;
  int port = 0;
};

control_server::control_server(std::shared_ptr<store> st, control_options options) {
  check(st, options);
  impl_ = std::make_unique<impl>(std::move(st), options);
  std::shared_ptr<::grpc::ServerCredentials> credentials;
  if (options.tls_certificate_chain.empty()) {
    credentials = ::grpc::InsecureServerCredentials();
  } else {
    ::grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({options.tls_private_key, options.tls_certificate_chain});
    credentials = ::grpc::SslServerCredentials(ssl);
  }
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, credentials, &impl_->port);
  builder.RegisterService(&impl_->service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0)
    throw std::runtime_error("wf::control_server: cannot listen on '" + options.address + "'");
  if (!options.http_address.empty()) impl_->http.emplace(impl_->io, options);
  impl_->thread = std::thread([io = &impl_->io] { io->run(); });
}

control_server::~control_server() {
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  impl_->server->Wait();
  if (impl_->http) impl_->http->stop();
  // The io_context's thread ends once the store's operations still under
  // way (of calls their clients gave up on) have finished.
  impl_->work.reset();
  impl_->thread.join();
}

unsigned short control_server::port() const noexcept { return static_cast<unsigned short>(impl_->port); }

unsigned short control_server::http_port() const noexcept { return impl_->http ? impl_->http->port() : 0; }

}  // namespace wf

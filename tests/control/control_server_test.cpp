// wf::control_server: the control API (proto/wf/control.proto) over a
// memory store that a runtime filled, called through gRPC's generated stub
// on loopback, as wfctl --server calls it; and its HTTP side (/metrics,
// /healthz), called with Beast as a Prometheus scraper would.
#include "support.hpp"

#include "control.grpc.pb.h"

#include <wf/control.hpp>
#include <wf/memory_store.hpp>
#include <wf/metrics.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace wf_test;
namespace v1 = wf::control::v1;

namespace {

// A memory store with three workflows of "transfer": "t-ok" succeeded,
// "t-refused" rolled back (Credit refused, Debit compensated), "t-bug"
// stuck (its Credit threw a logic_error).
// The runtime tells `observer`, if any, what it does.
std::shared_ptr<wf::memory_store> filled_store(std::shared_ptr<wf::observer> observer = nullptr) {
  auto store = std::make_shared<wf::memory_store>();
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "svc-1", .observer = std::move(observer)});
  rt.register_workflow("transfer", [](wf::workflow& w, std::string in) -> asio::awaitable<std::string> {
    auto debit = [](const wf::branch_context&) -> asio::awaitable<std::string> { co_return "debited"; };
    auto undo = [](const wf::branch_context&) -> asio::awaitable<void> { co_return; };
    auto credit = [in](const wf::branch_context&) -> asio::awaitable<std::string> {
      if (in == "refuse") throw wf::failure("account closed");
      if (in == "bug") throw std::logic_error("a bug in Credit");
      co_return "credited";
    };
    co_await w.new_branch("Debit").on_rollback(undo).run(debit);
    co_await w.new_branch("Credit").run(credit);
    co_return "done";
  });
  REQUIRE(run(io, rt.execute("transfer", "t-ok", "go")).succeeded());
  REQUIRE_FALSE(run(io, rt.execute("transfer", "t-refused", "refuse")).succeeded());
  CHECK_THROWS(run(io, rt.execute("transfer", "t-bug", "bug")));
  return store;
}

struct client {
  explicit client(unsigned short port, std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials(),
                  const std::string& host = "127.0.0.1")
      : stub(v1::Control::NewStub(grpc::CreateChannel(host + ":" + std::to_string(port), std::move(creds)))) {}

  std::string token;  // sent as "authorization: Bearer <token>" if not empty

  template <class Req, class Resp, class Method>
  grpc::Status call(Method method, const Req& req, Resp& resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    return ((*stub).*method)(&ctx, req, &resp);
  }
  grpc::Status list(const v1::ListWorkflowsRequest& req, v1::ListWorkflowsResponse& resp) {
    return call(&v1::Control::Stub::ListWorkflows, req, resp);
  }
  grpc::Status get(const std::string& gid, v1::GetWorkflowResponse& resp) {
    v1::GetWorkflowRequest req;
    req.set_gid(gid);
    return call(&v1::Control::Stub::GetWorkflow, req, resp);
  }
  grpc::Status resume(const std::string& gid, v1::ResumeWorkflowResponse& resp) {
    v1::ResumeWorkflowRequest req;
    req.set_gid(gid);
    return call(&v1::Control::Stub::ResumeWorkflow, req, resp);
  }
  grpc::Status send(const std::string& gid, const std::string& key, v1::SendMessageResponse& resp,
                    const std::string& payload = "hello") {
    v1::SendMessageRequest req;
    req.set_gid(gid);
    req.set_topic("note");
    req.set_payload(payload);
    req.set_key(key);
    return call(&v1::Control::Stub::SendMessage, req, resp);
  }

  std::unique_ptr<v1::Control::Stub> stub;
};

std::vector<std::string> gids(const v1::ListWorkflowsResponse& r) {
  std::vector<std::string> out;
  for (const auto& w : r.workflows()) out.push_back(w.gid());
  return out;
}

wf::control_options on_any_port() {
  wf::control_options o;
  o.address = "127.0.0.1:0";
  return o;
}

const std::string read_token = "read-0123456789abcdef";
const std::string admin_token = "admin-0123456789abcdef";

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A self-signed certificate for "localhost" and its key, made with the
// openssl tool; nullopt (and a warning) if it cannot.
std::optional<std::pair<std::string, std::string>> localhost_certificate() {
  const std::string dir = "/tmp/wf_control_tls_" + std::to_string(::getpid());
  const std::string cmd = "mkdir -p " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
                          " -addext subjectAltName=DNS:localhost -keyout " + dir + "/key.pem -out " + dir +
                          "/cert.pem > " + dir + "/log 2>&1";
  const bool made = std::system(cmd.c_str()) == 0;
  std::pair<std::string, std::string> pem{read_file(dir + "/cert.pem"), read_file(dir + "/key.pem")};
  std::system(("rm -rf " + dir).c_str());
  if (!made) {
    WARN("openssl could not make a certificate: TLS not tested");
    return std::nullopt;
  }
  return pem;
}

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct http_answer {
  unsigned status = 0;
  std::string body;
  http::response<http::string_body> whole;
};

// One request on `stream`, which stays open if the server keeps it alive.
template <class Stream>
http_answer ask(Stream& stream, http::verb verb, const std::string& target, const std::string& token = {}) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "localhost");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http_answer a;
  http::read(stream, buffer, a.whole);
  a.status = a.whole.result_int();
  a.body = a.whole.body();
  return a;
}

tcp::socket connected(asio::io_context& io, unsigned short port) {
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  return s;
}

http_answer ask(unsigned short port, const std::string& target, const std::string& token = {},
                http::verb verb = http::verb::get) {
  asio::io_context io;
  auto s = connected(io, port);
  return ask(s, verb, target, token);
}

wf::control_options with_http() {
  auto o = on_any_port();
  o.http_address = "127.0.0.1:0";
  return o;
}

}  // namespace

TEST_CASE("the control API lists and filters workflows, pages with a cursor, and counts") {
  wf::control_server server(filled_store(), on_any_port());
  client c(server.port());
  v1::ListWorkflowsRequest req;
  req.set_count(true);
  v1::ListWorkflowsResponse all;
  REQUIRE(c.list(req, all).ok());
  CHECK(gids(all) == std::vector<std::string>{"t-bug", "t-ok", "t-refused"});
  REQUIRE(all.has_total());
  CHECK(all.total() == 3);
  CHECK(all.next().empty());
  const auto& refused = all.workflows(2);
  CHECK(refused.status() == v1::FAILED);
  CHECK(refused.result_text() == "account closed");
  CHECK(refused.owner() == "svc-1");
  CHECK(refused.input() == "refuse");
  CHECK(refused.created_at_ms() > 0);

  v1::ListWorkflowsRequest stuck;
  stuck.set_status(v1::STUCK);
  stuck.set_name("transfer");
  v1::ListWorkflowsResponse stuck_page;
  REQUIRE(c.list(stuck, stuck_page).ok());
  CHECK(gids(stuck_page) == std::vector<std::string>{"t-bug"});
  CHECK(stuck_page.workflows(0).result_text().find("a bug in Credit") != std::string::npos);

  v1::ListWorkflowsRequest first;
  first.set_limit(2);
  v1::ListWorkflowsResponse page1, page2;
  REQUIRE(c.list(first, page1).ok());
  CHECK(gids(page1) == std::vector<std::string>{"t-bug", "t-ok"});
  REQUIRE(page1.next() == "t-ok");
  first.set_after(page1.next());
  REQUIRE(c.list(first, page2).ok());
  CHECK(gids(page2) == std::vector<std::string>{"t-refused"});
  CHECK(page2.next().empty());

  // Filters are values: an injection attempt in each matches nothing and changes nothing.
  for (int field = 0; field < 3; ++field) {
    v1::ListWorkflowsRequest bad;
    const std::string attempt = "x' OR '1'='1";
    if (field == 0) bad.set_name(attempt);
    if (field == 1) bad.set_owner(attempt);
    if (field == 2) bad.set_after("~" + attempt);
    v1::ListWorkflowsResponse none;
    REQUIRE(c.list(bad, none).ok());
    CHECK(none.workflows_size() == 0);
  }
  v1::ListWorkflowsResponse again;
  REQUIRE(c.list(v1::ListWorkflowsRequest{}, again).ok());
  CHECK(again.workflows_size() == 3);

  // Bounded: a page above 1000, a range that ends before it starts, an unknown status.
  v1::ListWorkflowsRequest big;
  big.set_limit(1001);
  v1::ListWorkflowsResponse out;
  CHECK(c.list(big, out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListWorkflowsRequest backwards;
  backwards.set_created_from_ms(2000);
  backwards.set_created_until_ms(1000);
  CHECK(c.list(backwards, out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListWorkflowsRequest unknown_status;
  unknown_status.set_status(static_cast<v1::Status>(42));
  CHECK(c.list(unknown_status, out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("the control API shows a rolled-back workflow's journal, decoded, and says NOT_FOUND for a missing one") {
  wf::control_server server(filled_store(), on_any_port());
  client c(server.port());
  v1::GetWorkflowResponse got;
  REQUIRE(c.get("t-refused", got).ok());
  CHECK(got.workflow().status() == v1::FAILED);
  std::vector<std::string> timeline;
  for (const auto& r : got.journal()) timeline.push_back(r.kind() + " " + r.name() + " " + r.outcome());
  CHECK(timeline == std::vector<std::string>{"branch Debit ok", "branch Credit failed", "decision rollback rollback",
                                             "rollback Debit done"});
  CHECK(got.journal(0).payload() == "debited");
  CHECK(got.journal(1).branch() == "02");
  CHECK(got.journal(1).payload_text() == "account closed");

  v1::GetWorkflowResponse missing;
  const auto status = c.get("nope", missing);
  CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(status.error_message().find("no workflow 'nope'") != std::string::npos);
}

TEST_CASE("the control API resumes a stuck workflow, sends it a message once per key, and purges finished ones") {
  auto store = filled_store();
  wf::control_server server(store, on_any_port());
  client c(server.port());

  v1::ResumeWorkflowResponse resumed;
  REQUIRE(c.resume("t-bug", resumed).ok());
  CHECK(resumed.resumed());
  REQUIRE(c.resume("t-bug", resumed).ok());
  CHECK_FALSE(resumed.resumed());  // not stuck any more
  REQUIRE(c.resume("t-ok", resumed).ok());
  CHECK_FALSE(resumed.resumed());
  v1::GetWorkflowResponse got;
  REQUIRE(c.get("t-bug", got).ok());
  CHECK(got.workflow().status() == v1::RUNNING);
  CHECK(got.workflow().owner().empty());

  v1::SendMessageResponse sent;
  REQUIRE(c.send("t-bug", "k1", sent).ok());
  CHECK(sent.outcome() == "delivered");
  REQUIRE(c.send("t-bug", "k1", sent).ok());
  CHECK(sent.outcome() == "duplicate");
  REQUIRE(c.send("t-ok", "k1", sent).ok());
  CHECK(sent.outcome() == "finished");
  CHECK(c.send("nope", "k1", sent).error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(c.send("t-bug", "", sent).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  asio::io_context io;
  const auto inbox = run(io, store->inbox("t-bug", "note", 10));
  REQUIRE(inbox.size() == 1);
  CHECK(inbox[0].payload == "hello");
  CHECK(inbox[0].key == "k1");

  // A request above max_request_bytes (64 KiB by default) is refused whole.
  CHECK(c.send("t-bug", "k2", sent, std::string(100 * 1024, 'x')).error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);

  v1::PurgeWorkflowsRequest purge;
  purge.set_before_ms(wf::control::v1::PurgeWorkflowsRequest{}.before_ms());  // 0: refused
  v1::PurgeWorkflowsResponse purged;
  CHECK(c.call(&v1::Control::Stub::PurgeWorkflows, purge, purged).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  purge.set_before_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          (wf::wall_clock::now() + std::chrono::hours(1)).time_since_epoch())
                          .count());
  purge.set_limit(20000);
  CHECK(c.call(&v1::Control::Stub::PurgeWorkflows, purge, purged).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  purge.set_limit(0);
  REQUIRE(c.call(&v1::Control::Stub::PurgeWorkflows, purge, purged).ok());
  CHECK(purged.purged() == 2);  // t-ok and t-refused; t-bug runs again
  v1::ListWorkflowsResponse left;
  REQUIRE(c.list(v1::ListWorkflowsRequest{}, left).ok());
  CHECK(gids(left) == std::vector<std::string>{"t-bug"});
}

TEST_CASE("with tokens, the control API refuses calls without one or with a wrong one, and changes only with an admin token") {
  auto o = on_any_port();
  o.read_tokens = {read_token};
  o.admin_tokens = {admin_token};
  wf::control_server server(filled_store(), o);
  client c(server.port());
  v1::ListWorkflowsResponse page;
  v1::ResumeWorkflowResponse resumed;

  auto none = c.list(v1::ListWorkflowsRequest{}, page);
  CHECK(none.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(none.error_message().find("authorization: Bearer") != std::string::npos);
  c.token = "wrong-0123456789abcdef";
  CHECK(c.list(v1::ListWorkflowsRequest{}, page).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(c.resume("t-bug", resumed).error_code() == grpc::StatusCode::UNAUTHENTICATED);

  c.token = read_token;
  REQUIRE(c.list(v1::ListWorkflowsRequest{}, page).ok());
  CHECK(page.workflows_size() == 3);
  const auto denied = c.resume("t-bug", resumed);
  CHECK(denied.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(denied.error_message().find("read-only") != std::string::npos);
  v1::SendMessageResponse sent;
  CHECK(c.send("t-bug", "k", sent).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::GetWorkflowResponse got;
  REQUIRE(c.get("t-bug", got).ok());
  CHECK(got.workflow().status() == v1::STUCK);  // the refused resume changed nothing

  c.token = admin_token;
  REQUIRE(c.resume("t-bug", resumed).ok());
  CHECK(resumed.resumed());
}

TEST_CASE("the control server refuses options that would expose it: another address without tokens and TLS, weak tokens") {
  auto store = filled_store();
  for (const char* address : {"0.0.0.0:0", "[::]:0", "10.1.2.3:0", "example.com:7233"}) {
    INFO(address);
    wf::control_options o;
    o.address = address;
    CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);
    o.admin_tokens = {admin_token};
    CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);  // tokens but no TLS
  }
  auto o = on_any_port();
  o.admin_tokens = {"short"};
  CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);
  o.admin_tokens = {"has a space 0123456789"};
  CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);
  o = on_any_port();
  o.tls_certificate_chain = "-----BEGIN CERTIFICATE-----";
  CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);  // a chain without its key
  CHECK_THROWS_AS(wf::control_server(nullptr, on_any_port()), std::invalid_argument);
  // Loopback forms are accepted.
  for (const char* address : {"127.0.0.1:0", "localhost:0", "[::1]:0"}) {
    INFO(address);
    o = on_any_port();
    o.address = address;
    bool listening = false;
    try {
      wf::control_server s(store, o);
      listening = s.port() != 0;
    } catch (const std::runtime_error& e) {  // (a machine without IPv6 cannot listen on ::1)
      if (std::string(address) != "[::1]:0") throw;
      WARN(e.what());
      listening = true;
    }
    CHECK(listening);
  }
}

TEST_CASE("the control server serves TLS, and then listens on any address with tokens") {
  const auto pem = localhost_certificate();
  if (!pem) return;
  auto o = on_any_port();
  o.address = "0.0.0.0:0";
  o.admin_tokens = {admin_token};
  o.tls_certificate_chain = pem->first;
  o.tls_private_key = pem->second;
  wf::control_server server(filled_store(), o);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = o.tls_certificate_chain;
  client c(server.port(), grpc::SslCredentials(ssl), "localhost");
  c.token = admin_token;
  v1::ListWorkflowsResponse page;
  const auto status = c.list(v1::ListWorkflowsRequest{}, page);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(page.workflows_size() == 3);

  // The same port without TLS is not served.
  client plain(server.port(), grpc::InsecureChannelCredentials(), "localhost");
  plain.token = admin_token;
  CHECK_FALSE(plain.list(v1::ListWorkflowsRequest{}, page).ok());
}

TEST_CASE("the control server serves a runtime's metrics on /metrics over HTTP, and /healthz") {
  auto metrics = std::make_shared<wf::metrics>();
  auto o = with_http();
  o.metrics = metrics;
  wf::control_server server(filled_store(metrics), o);
  REQUIRE(server.http_port() != 0);
  CHECK(server.http_port() != server.port());

  const auto scraped = ask(server.http_port(), "/metrics");
  REQUIRE(scraped.status == 200);
  CHECK(scraped.whole[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(scraped.body == metrics->prometheus());  // (nothing runs meanwhile)
  CHECK_THAT(scraped.body, Catch::Contains("wf_workflows_finished_total{workflow=\"transfer\",status=\"succeeded\"} 1"));
  CHECK_THAT(scraped.body, Catch::Contains("wf_workflows_finished_total{workflow=\"transfer\",status=\"stuck\"} 1"));

  const auto health = ask(server.http_port(), "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  CHECK(ask(server.http_port(), "/metrics?debug=1").status == 200);  // (a query is ignored)
  CHECK(ask(server.http_port(), "/workflows").status == 404);
  const auto posted = ask(server.http_port(), "/metrics", {}, http::verb::post);
  CHECK(posted.status == 405);
  CHECK(posted.whole[http::field::allow] == "GET");

  // A connection is kept alive for several requests.
  asio::io_context io;
  auto kept = connected(io, server.http_port());
  CHECK(ask(kept, http::verb::get, "/healthz").status == 200);
  CHECK(ask(kept, http::verb::get, "/metrics").status == 200);

  // Without metrics, /metrics is not there; without http_address, no HTTP.
  wf::control_server bare(filled_store(), with_http());
  CHECK(ask(bare.http_port(), "/metrics").status == 404);
  CHECK(ask(bare.http_port(), "/healthz").status == 200);
  wf::control_server grpc_only(filled_store(), on_any_port());
  CHECK(grpc_only.http_port() == 0);
}

TEST_CASE("the control server's HTTP side bounds what it reads: request size, header size, connections") {
  auto o = with_http();
  o.max_request_bytes = 1024;
  wf::control_server server(filled_store(), o);
  asio::io_context io;
  const auto raw = [&](const std::string& request) {
    auto s = connected(io, server.http_port());
    asio::write(s, asio::buffer(request));
    beast::flat_buffer buffer;
    http::response<http::string_body> r;
    http::read(s, buffer, r);
    return r.result_int();
  };
  // A body announced above the limit is refused before it is read.
  CHECK(raw("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n") == 413);
  CHECK(raw("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n") == 431);
  CHECK(raw("NOT HTTP AT ALL\r\n\r\n") == 400);

  // 64 connections at once; the 65th is closed at once, the others still served.
  std::vector<tcp::socket> open;
  for (int i = 0; i < 64; ++i) open.push_back(connected(io, server.http_port()));
  CHECK(ask(open.front(), http::verb::get, "/healthz").status == 200);
  auto extra = connected(io, server.http_port());  // (accepted after the 64, which are all still open)
  char byte = 0;
  boost::system::error_code ec;
  extra.read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);
  CHECK(ask(open.back(), http::verb::get, "/healthz").status == 200);
}

TEST_CASE("the control server's destructor closes the HTTP connections a client keeps open") {
  asio::io_context io;
  std::optional<tcp::socket> kept;
  {
    wf::control_server server(filled_store(), with_http());
    kept.emplace(connected(io, server.http_port()));
    REQUIRE(ask(*kept, http::verb::get, "/healthz").status == 200);
  }  // (returns although the connection is open and idle)
  char byte = 0;
  boost::system::error_code ec;
  kept->read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec);
}

TEST_CASE("with tokens, /metrics needs one: none or a wrong one is 401, a read-only one will do") {
  auto metrics = std::make_shared<wf::metrics>();
  auto o = with_http();
  o.metrics = metrics;
  o.read_tokens = {read_token};
  o.admin_tokens = {admin_token};
  wf::control_server server(filled_store(metrics), o);
  const auto none = ask(server.http_port(), "/metrics");
  CHECK(none.status == 401);
  CHECK(none.whole[http::field::www_authenticate] == "Bearer realm=\"wf\"");
  CHECK_THAT(none.body, Catch::Contains("a token is needed"));
  CHECK(ask(server.http_port(), "/metrics", "wrong-0123456789abcdef").status == 401);
  CHECK(ask(server.http_port(), "/metrics", read_token).status == 200);
  CHECK(ask(server.http_port(), "/metrics", admin_token).status == 200);
  CHECK(ask(server.http_port(), "/healthz").status == 200);  // (says nothing about workflows)
}

TEST_CASE("the control server serves /metrics over https with its certificate, and refuses HTTP options that would expose it") {
  auto store = filled_store();
  for (const char* address : {"0.0.0.0:0", "10.1.2.3:0"}) {
    INFO(address);
    auto o = with_http();
    o.http_address = address;
    CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);
  }
  auto o = on_any_port();
  o.metrics = std::make_shared<wf::metrics>();
  CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);  // metrics, but no HTTP to serve them
  o = with_http();
  o.http_address = "no-port";
  CHECK_THROWS_AS(wf::control_server(store, o), std::invalid_argument);

  const auto pem = localhost_certificate();
  if (!pem) return;
  o = with_http();
  o.http_address = "0.0.0.0:0";
  o.read_tokens = {read_token};
  o.tls_certificate_chain = pem->first;
  o.tls_private_key = pem->second;
  o.metrics = std::make_shared<wf::metrics>();
  wf::control_server server(store, o);

  asio::io_context io;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.add_certificate_authority(asio::buffer(pem->first));
  tls.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> stream(connected(io, server.http_port()), tls);
  stream.set_verify_callback(asio::ssl::host_name_verification("localhost"));
  REQUIRE(::SSL_set_tlsext_host_name(stream.native_handle(), "localhost"));
  stream.handshake(asio::ssl::stream_base::client);
  const auto scraped = ask(stream, http::verb::get, "/metrics", read_token);
  CHECK(scraped.status == 200);
  CHECK_THAT(scraped.body, Catch::Contains("# TYPE wf_workflows_created_total counter"));

  // Plain HTTP on the same port gets no answer.
  auto plain = connected(io, server.http_port());
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, "localhost");
  http::write(plain, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> r;
  boost::system::error_code ec;
  http::read(plain, buffer, r, ec);
  CHECK(ec);
}

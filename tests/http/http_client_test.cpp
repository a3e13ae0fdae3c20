// The HTTP participant client against a scripted Beast server on loopback.
#include "support.hpp"

#include <wf/http.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

using namespace wf_test;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// Answers each request from its script (status, body), in order; 200 "ok"
// when the script is empty. Records every request target.
struct test_server {
  explicit test_server(asio::io_context& io) : io(io), acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  std::deque<std::pair<int, std::string>> script;
  std::vector<std::string> targets;
  int accepted = 0;
  bool silent = false;          // read requests, never answer
  bool close_after_reply = false;  // say keep-alive, then close anyway
  std::size_t body_size = 0;    // if set, answer 200 with a body this large
  std::string raw_reply;        // if set, write these bytes instead of a response...
  bool hold_open = false;       // ...and then keep the connection open, saying nothing more

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + path;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      boost::system::error_code ec;
      bhttp::request<bhttp::string_body> req;
      co_await bhttp::async_read(socket, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      targets.push_back(std::string(req.target()));
      if (silent) {
        asio::steady_timer forever(io, asio::steady_timer::time_point::max());
        co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_return;
      }
      if (!raw_reply.empty()) {
        co_await asio::async_write(socket, asio::buffer(raw_reply), asio::redirect_error(asio::use_awaitable, ec));
        if (hold_open) {
          asio::steady_timer forever(io, asio::steady_timer::time_point::max());
          co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_return;
      }
      int status = 200;
      std::string body = "ok";
      if (!script.empty()) {
        std::tie(status, body) = script.front();
        script.pop_front();
      }
      if (body_size) body.assign(body_size, 'x');
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
      res.keep_alive(true);
      res.body() = body;
      res.prepare_payload();
      co_await bhttp::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || close_after_reply) co_return;
    }
  }
};

const wf::branch_context call{"g1", "01", "action", "A"};

}  // namespace

TEST_CASE("http: a 200 returns the body, and the call's ids travel as query parameters", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script.push_back({200, R"({"done":true})"});
  wf::http::client c(io.get_executor());
  CHECK(run(io, c.post(call, server.url("/api/TransOut?x=1"), "{}")) == R"({"done":true})");
  REQUIRE(server.targets.size() == 1);
  CHECK(server.targets[0] == "/api/TransOut?x=1&gid=g1&trans_type=workflow&branch_id=01&op=action");
}

TEST_CASE("http: 409 is a business failure with the body as its reason", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script.push_back({409, "insufficient funds"});
  wf::http::client c(io.get_executor());
  try {
    run(io, c.post(call, server.url("/a"), ""));
    FAIL("no failure");
  } catch (const wf::failure& f) {
    CHECK(std::string(f.what()) == "insufficient funds");
  }
}

TEST_CASE("http: 425 is ongoing, and 500 a transport error", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script.push_back({425, "later"});
  server.script.push_back({500, "boom"});
  wf::http::client c(io.get_executor());
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::ongoing);
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::http::transport_error);
}

TEST_CASE("http: no answer within the timeout is a transport error", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.silent = true;
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::milliseconds(200)});
  try {
    run(io, c.post(call, server.url("/a"), ""));
    FAIL("answered");
  } catch (const wf::http::transport_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("timeout"));
  }
}

TEST_CASE("http: an answer that is not HTTP is a transport error", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.raw_reply = std::string("\x16\x03\x01 garbage, not HTTP\r\n\r\n", 26);
  try {
    run(io, wf::http::client(io.get_executor()).post(call, server.url("/a"), ""));
    FAIL("answered");
  } catch (const wf::http::transport_error& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("wf::http: "));
  }
}

TEST_CASE("http: a body that never ends (no length, connection held open) times out", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.raw_reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe start of a body that never ends";
  server.hold_open = true;
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::milliseconds(200)});
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::http::transport_error);
}

TEST_CASE("http: a refused connection is a transport error", "[http]") {
  asio::io_context io;
  std::string url;
  {
    tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    url = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port()) + "/a";
  }
  wf::http::client c(io.get_executor());
  CHECK_THROWS_AS(run(io, c.post(call, url, "")), wf::http::transport_error);
}

TEST_CASE("http: connections are kept alive and reused", "[http]") {
  asio::io_context io;
  test_server server(io);
  wf::http::client c(io.get_executor());
  for (int i = 0; i < 3; ++i) CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(server.accepted == 1);
  CHECK(c.connections_opened() == 1);
}

TEST_CASE("http: a kept-alive connection the server closed is replaced", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.close_after_reply = true;
  wf::http::client c(io.get_executor());
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(c.connections_opened() == 2);
}

TEST_CASE("http: an answer over the size limit is a transport error", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.body_size = 4096;
  wf::http::client c(io.get_executor(), {.max_response_body = 1024});
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::http::transport_error);
}

TEST_CASE("http: a workflow over HTTP participants rolls back with rollback calls", "[http]") {
  asio::io_context io;
  test_server server(io);
  wf::http::client bank(io.get_executor());
  wf::runtime rt(io.get_executor(), std::make_shared<wf::memory_store>());
  rt.register_workflow("transfer", [&bank, &server](wf::workflow& w, std::string in) -> asio::awaitable<void> {
    auto out = bank.action(server.url("/TransOut"), in);
    auto out_revert = bank.handler(server.url("/TransOutRevert"), in);
    co_await w.new_branch("TransOut").on_rollback(out_revert).run(out);
    auto into = bank.action(server.url("/TransIn"), in);
    auto into_revert = bank.handler(server.url("/TransInRevert"), in);
    co_await w.new_branch("TransIn").on_rollback(into_revert).run(into);
  });
  server.script = {{200, "ok"}, {409, "account closed"}, {200, "ok"}};
  auto o = run(io, rt.execute("transfer", "t1", std::string(R"({"amount":30})")));
  CHECK(o.reason == "account closed");
  CHECK(server.targets == std::vector<std::string>{
                              "/TransOut?gid=t1&trans_type=workflow&branch_id=01&op=action",
                              "/TransIn?gid=t1&trans_type=workflow&branch_id=02&op=action",
                              "/TransOutRevert?gid=t1&trans_type=workflow&branch_id=01&op=rollback"});
}

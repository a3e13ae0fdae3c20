// The HTTP participant client against scripted Beast servers on loopback,
// plain and TLS (tests/http/servers.hpp).
#include "servers.hpp"

#include <wf/http.hpp>

#include "http/answer.hpp"
#include "http/resolve.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

using namespace wf_test;

namespace {

const wf::branch_context call{"g1", "01", "action", "A"};

/// The value of `name` in the request, or "(none)".
std::string field(const bhttp::request<bhttp::string_body>& r, const std::string& name) {
  auto it = r.find(name);
  return it == r.end() ? "(none)" : std::string(it->value());
}

/// How many fields named `name` the request has.
std::size_t fields_named(const bhttp::request<bhttp::string_body>& r, const std::string& name) {
  return r.count(name);
}

/// The message of the exception `a` ends with, or "(no exception)".
template <class T>
std::string error_of(asio::io_context& io, asio::awaitable<T> a) {
  try {
    run(io, std::move(a));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

/// The message of the std::invalid_argument `f` throws, or "(not refused)".
template <class F>
std::string refusal(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(not refused)";
}

/// Runs `a` on `io` with `signal`'s slot bound to it, as a caller that may
/// cancel it would; returns the exception it ended with (null if none).
template <class T>
std::exception_ptr run_cancellable(asio::io_context& io, asio::awaitable<T> a, asio::cancellation_signal& signal) {
  std::exception_ptr error;
  bool done = false;
  auto finish = [&](std::exception_ptr e, auto&&...) {
    error = e;
    done = true;
    io.stop();
  };
  asio::co_spawn(io, std::move(a), asio::bind_cancellation_slot(signal.slot(), finish));
  io.restart();
  io.run();
  io.restart();
  REQUIRE(done);
  return error;
}

/// True if `e` is Asio's operation_aborted, as a cancelled call ends.
bool is_cancellation(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const boost::system::system_error& s) {
    return s.code() == asio::error::operation_aborted;
  } catch (...) {
  }
  return false;
}

/// A name resolver that answers when the test says so, if ever (the system's
/// cannot be made to hang on purpose).
struct held_resolver {
  std::function<void(boost::system::error_code, wf::http::detail::resolve_results)> answer;
  std::function<void()> on_start;
  bool cancelled = false;

  template <class Handler>
  void async_resolve(const std::string&, const std::string&, Handler&& h) {
    answer = std::forward<Handler>(h);
    if (on_start) on_start();
  }
  void cancel() { cancelled = true; }
};

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

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

TEST_CASE("http: when a kept-alive connection turns out closed, the older idle ones are dropped too", "[http]") {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  test_server server(io);
  server.close_after_reply = true;
  wf::http::client c(io.get_executor());
  auto two_at_once = [&]() -> asio::awaitable<bool> {
    co_await (c.post(call, server.url("/a"), "") && c.post(call, server.url("/a"), ""));
    co_return true;
  };
  CHECK(run(io, two_at_once()));
  CHECK(c.connections_opened() == 2);  // both idle now, both closed by the server
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(c.connections_opened() == 3);
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

// ---- URLs

TEST_CASE("http: a malformed URL or an unsupported scheme is refused, naming the URL", "[http]") {
  asio::io_context io;
  wf::http::client c(io.get_executor());
  for (const std::string url : {"not a url", "ftp://bank/a", "bank:8080/a", "http:///a", "http://bank:99999/a",
                                "http://bank:0/a"}) {
    INFO(url);
    CHECK_THAT(refusal([&] { c.action(url); }), Catch::Contains("'" + url + "'"));
    CHECK_THROWS_AS(c.handler(url), std::invalid_argument);
    CHECK_THROWS_AS(c.post(call, url, ""), std::invalid_argument);
  }
}

TEST_CASE("http: a URL with a password is refused without the password in the message", "[http]") {
  asio::io_context io;
  wf::http::client c(io.get_executor());
  try {
    c.action("http://bank:s3cret@bank-a:8081/api");
    FAIL("accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("http://bank-a:8081/api") && !Catch::Contains("s3cret"));
  }
}

TEST_CASE("http: a host name is resolved, and the Host field names it with its port", "[http]") {
  asio::io_context io;
  test_server server(io);
  wf::http::client c(io.get_executor());
  const std::string url = server.url("/a", "localhost");
  CHECK(run(io, c.post(call, url, "")) == "ok");
  REQUIRE(server.requests.size() == 1);
  CHECK(field(server.requests[0], "Host") == "localhost:" + std::to_string(server.acceptor.local_endpoint().port()));
}

// ---- name resolution within the deadline

TEST_CASE("http: a name lookup that never answers ends at the deadline, and is cancelled", "[http]") {
  // The seam: resolve_within, which the client uses with Asio's resolver, here
  // with a resolver that never answers (the system's cannot be made to hang).
  asio::io_context io;
  auto resolver = std::make_shared<held_resolver>();
  const auto deadline = clock_type::now() + milliseconds(100);
  auto result = run(io, wf::http::detail::resolve_within(resolver, "bank-a", "80", deadline));
  CHECK(result.first == boost::beast::error::timeout);
  CHECK(clock_type::now() >= deadline);
  CHECK(resolver->cancelled);
  // Its answer, if it ever comes, is dropped: nothing waits for it any more.
  auto late = std::move(resolver->answer);
  late(boost::system::error_code(), {});
}

TEST_CASE("http: a name lookup's answer before the deadline is the lookup's", "[http]") {
  asio::io_context io;
  auto resolver = std::make_shared<held_resolver>();
  resolver->on_start = [&io, resolver = resolver.get()] {
    asio::post(io, [resolver] { std::move(resolver->answer)(asio::error::host_not_found, {}); });
  };
  auto result = run(io, wf::http::detail::resolve_within(resolver, "bank-a", "80", clock_type::now() + std::chrono::hours(1)));
  CHECK(result.first == asio::error::host_not_found);
  CHECK_FALSE(resolver->cancelled);
  resolver->answer = nullptr;
}

TEST_CASE("http: a name lookup ends at once when the call is cancelled", "[http]") {
  asio::io_context io;
  asio::cancellation_signal signal;
  auto resolver = std::make_shared<held_resolver>();
  // Once the lookup has started, the caller gives up.
  resolver->on_start = [&] { asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); }); };
  std::optional<boost::system::error_code> ended;
  auto lookup = [&]() -> asio::awaitable<void> {
    auto r = co_await wf::http::detail::resolve_within(resolver, "bank-a", "80", clock_type::now() + std::chrono::hours(1));
    ended = r.first;
  };
  const auto started = clock_type::now();
  CHECK_FALSE(run_cancellable(io, lookup(), signal));
  CHECK(clock_type::now() - started < std::chrono::seconds(10));
  CHECK(ended == asio::error::operation_aborted);
  CHECK(resolver->cancelled);
  resolver->answer = nullptr;
}

// ---- headers, content type, per-call timeout

TEST_CASE("http: the client's headers and the call's go with every call, the call's replacing the client's", "[http]") {
  asio::io_context io;
  test_server server(io);
  wf::http::client c(io.get_executor(), {.headers = {{"Authorization", "Bearer client-token"},
                                                     {"X-Tenant", "t1"},
                                                     {"X-Trace", "a"},
                                                     {"X-Trace", "b"}}});
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  auto action = c.action(server.url("/b"), "{}", {.headers = {{"authorization", "Bearer call-token"}, {"X-Call", "1"}}});
  CHECK(run(io, action(call)) == "ok");
  REQUIRE(server.requests.size() == 2);
  const auto& plain = server.requests[0];
  CHECK(field(plain, "Authorization") == "Bearer client-token");
  CHECK(field(plain, "X-Tenant") == "t1");
  CHECK(fields_named(plain, "X-Trace") == 2);
  const auto& with_call = server.requests[1];
  CHECK(fields_named(with_call, "Authorization") == 1);
  CHECK(field(with_call, "Authorization") == "Bearer call-token");
  CHECK(field(with_call, "X-Tenant") == "t1");
  CHECK(field(with_call, "X-Call") == "1");
}

TEST_CASE("http: headers are sent again when a closed kept-alive connection is replaced", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.close_after_reply = true;
  wf::http::client c(io.get_executor(), {.headers = {{"Authorization", "Bearer t"}}});
  auto action = c.action(server.url("/a"), "", {.headers = {{"X-Call", "1"}}});
  CHECK(run(io, action(call)) == "ok");
  CHECK(run(io, action(call)) == "ok");  // the first connection is closed: sent again on a new one
  CHECK(c.connections_opened() == 2);
  REQUIRE(server.requests.size() == 2);
  for (const auto& r : server.requests) {
    CHECK(field(r, "Authorization") == "Bearer t");
    CHECK(field(r, "X-Call") == "1");
  }
}

TEST_CASE("http: an action's headers go with each of its retries", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script = {{503, "busy"}, {200, "done"}};
  wf::http::client c(io.get_executor());
  wf::runtime rt(io.get_executor(), std::make_shared<wf::memory_store>());
  auto url = server.url("/a");
  rt.register_workflow(
      "w",
      [&c, url](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto action = c.action(url, "", {.headers = {{"Authorization", "Bearer t"}}});
        co_return co_await w.new_branch("A").run(action);
      },
      fast_retries());
  auto o = run(io, rt.execute("w", "g-retry", std::string("{}")));
  CHECK(o.result == "done");
  REQUIRE(server.requests.size() == 2);
  for (const auto& r : server.requests) CHECK(field(r, "Authorization") == "Bearer t");
}

TEST_CASE("http: the content type is JSON unless the client or the call says otherwise", "[http]") {
  asio::io_context io;
  test_server server(io);
  wf::http::client json(io.get_executor());
  wf::http::client text(io.get_executor(), {.content_type = "text/plain"});
  wf::http::client none(io.get_executor(), {.content_type = ""});
  run(io, json.post(call, server.url("/a"), "{}"));
  run(io, text.post(call, server.url("/a"), "x"));
  run(io, text.post(call, server.url("/a"), "x=1", {.content_type = "application/x-www-form-urlencoded"}));
  run(io, none.post(call, server.url("/a"), "x"));
  REQUIRE(server.requests.size() == 4);
  CHECK(field(server.requests[0], "Content-Type") == "application/json");
  CHECK(field(server.requests[1], "Content-Type") == "text/plain");
  CHECK(field(server.requests[2], "Content-Type") == "application/x-www-form-urlencoded");
  CHECK(field(server.requests[3], "Content-Type") == "(none)");
}

TEST_CASE("http: a call's timeout replaces the client's", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.silent = true;
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60)});
  const auto started = clock_type::now();
  CHECK_THAT(error_of(io, c.post(call, server.url("/a"), "", {.timeout = milliseconds(100)})),
             Catch::Contains("no answer within the timeout"));
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
}

TEST_CASE("http: headers that cannot be sent are refused, never quoting their values", "[http]") {
  asio::io_context io;
  const std::string secret = "Bearer s3cret";
  const wf::http::header_list bad[] = {
      {{"Authorization", secret + "\r\nX-Injected: 1"}},
      {{"Authorization", secret + std::string(1, '\0')}},
      {{secret, "value"}},  // a value given as a name
      {{"", "value"}},
      {{"Content-Length", "5"}},
      {{"transfer-encoding", "chunked"}},
      {{"Host", "elsewhere"}},
      {{"Content-Type", "text/plain"}},
      {{"Connection", "close"}},
  };
  wf::http::client c(io.get_executor());
  for (const auto& headers : bad) {
    INFO(headers[0].first);
    CHECK_THAT(refusal([&] { wf::http::client(io.get_executor(), {.headers = headers}); }),
               Catch::StartsWith("wf::http: ") && !Catch::Contains("s3cret"));
    CHECK_THAT(refusal([&] { c.action("http://bank/a", "", {.headers = headers}); }),
               Catch::StartsWith("wf::http: ") && !Catch::Contains("s3cret"));
  }
  CHECK_THROWS_AS(c.handler("http://bank/a", "", {.content_type = "text/plain\r\nX: 1"}), std::invalid_argument);
  CHECK_THROWS_AS(c.handler("http://bank/a", "", {.timeout = milliseconds(0)}), std::invalid_argument);
  CHECK_THROWS_AS(wf::http::client(io.get_executor(), {.timeout = milliseconds(-1)}), std::invalid_argument);
}

TEST_CASE("http: a transport error does not quote the headers sent", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script.push_back({500, "boom"});
  wf::http::client c(io.get_executor(), {.headers = {{"Authorization", "Bearer s3cret"}}});
  const auto message = error_of(io, c.post(call, server.url("/a"), ""));
  CHECK_THAT(message, Catch::Contains("HTTP 500") && !Catch::Contains("s3cret"));
}

// ---- DTM's legacy bodies

TEST_CASE("http: with dtm_legacy_bodies, a 200 saying FAILURE fails and one saying ONGOING is ongoing", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script = {{200, R"({"dtm_result":"FAILURE"})"},
                   {200, R"({"dtm_result":"ONGOING"})"},
                   {200, R"({"dtm_result":"SUCCESS"})"},
                   {500, "FAILURE"}};
  wf::http::client c(io.get_executor(), {.dtm_legacy_bodies = true});
  CHECK_THROWS_MATCHES(run(io, c.post(call, server.url("/a"), "")), wf::failure,
                       Catch::Message(R"({"dtm_result":"FAILURE"})"));
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::ongoing);
  CHECK(run(io, c.post(call, server.url("/a"), "")) == R"({"dtm_result":"SUCCESS"})");
  // Only a 200 is read for these words: a 500 is transient whatever it says.
  CHECK_THROWS_AS(run(io, c.post(call, server.url("/a"), "")), wf::http::transport_error);
}

TEST_CASE("http: without dtm_legacy_bodies, a 200 saying FAILURE is a result", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.script = {{200, R"({"dtm_result":"FAILURE"})"}};
  wf::http::client c(io.get_executor());
  CHECK(run(io, c.post(call, server.url("/a"), "")) == R"({"dtm_result":"FAILURE"})");
}

TEST_CASE("http: DTM's legacy rule looks for ONGOING before FAILURE, anywhere in the body", "[http]") {
  using wf::http::detail::interpret;
  CHECK_THROWS_AS(interpret(200, "FAILURE, then ONGOING", "h:1", true), wf::ongoing);
  CHECK_THROWS_AS(interpret(200, "xxFAILURExx", "h:1", true), wf::failure);
  CHECK(interpret(200, "failure (lower case)", "h:1", true) == "failure (lower case)");
  CHECK_THROWS_AS(interpret(409, "ONGOING", "h:1", true), wf::failure);  // the status decides first
}

// ---- https

TEST_CASE("https: a call verified with the CA file succeeds, by name and by address, on kept-alive connections", "[http]") {
  asio::io_context io;
  auto tls = test_server_tls();
  test_server server(io, &tls);
  wf::http::client c(io.get_executor(), {.ca_file = test_data("ca.crt")});
  for (int i = 0; i < 2; ++i) {
    CHECK(run(io, c.post(call, server.url("/a", "localhost"), "")) == "ok");
    CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  }
  CHECK(c.connections_opened() == 2);  // one per host
  CHECK(server.server_names == std::vector<std::string>{"localhost", ""});  // SNI for names only
  CHECK(server.targets[0] == "/a?gid=g1&trans_type=workflow&branch_id=01&op=action");
}

TEST_CASE("https: with the system's CAs, a privately signed certificate fails verification, transiently", "[http]") {
  asio::io_context io;
  auto tls = test_server_tls();
  test_server server(io, &tls);
  wf::http::client c(io.get_executor());
  try {
    run(io, c.post(call, server.url("/a", "localhost"), ""));
    FAIL("verified");
  } catch (const wf::http::transport_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("certificate verification failed") && Catch::Contains("issuer"));
  }
  CHECK(server.requests.empty());
}

TEST_CASE("https: a certificate that does not name the host is refused", "[http]") {
  asio::io_context io;
  auto tls = test_server_tls();
  test_server server(io, &tls, "127.0.0.2");  // the certificate is for 127.0.0.1 and localhost
  wf::http::client c(io.get_executor(), {.ca_file = test_data("ca.crt")});
  CHECK_THAT(error_of(io, c.post(call, server.url("/a"), "")),
             Catch::Contains("certificate verification failed") && Catch::Contains("mismatch"));
  CHECK(server.requests.empty());
}

TEST_CASE("https: the pool keeps http and https connections to one host and port apart", "[http]") {
  asio::io_context io;
  auto tls = test_server_tls();
  test_server server(io, &tls);
  wf::http::client c(io.get_executor(), {.ca_file = test_data("ca.crt")});
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  // Plain HTTP to the TLS port: a new connection, which the server refuses,
  // not the kept-alive TLS one.
  std::string plain = server.url("/a");
  plain.replace(0, 5, "http");
  CHECK_THROWS_AS(run(io, c.post(call, plain, "")), wf::http::transport_error);
  CHECK(c.connections_opened() == 2);
}

TEST_CASE("https: a kept-alive TLS connection the server closed is replaced", "[http]") {
  asio::io_context io;
  auto tls = test_server_tls();
  test_server server(io, &tls);
  server.close_after_reply = true;
  wf::http::client c(io.get_executor(), {.ca_file = test_data("ca.crt")});
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(c.connections_opened() == 2);
}

TEST_CASE("https: a CA file that cannot be read is refused when the client is made", "[http]") {
  asio::io_context io;
  CHECK_THAT(refusal([&] { wf::http::client(io.get_executor(), {.ca_file = "/nonexistent/ca.pem"}); }),
             Catch::Contains("'/nonexistent/ca.pem'"));
}

TEST_CASE("https: a server that never answers the TLS handshake times out", "[http]") {
  asio::io_context io;
  mute_server server(io);  // reads the ClientHello, never answers it
  wf::http::client c(io.get_executor(), {.timeout = milliseconds(200), .ca_file = test_data("ca.crt")});
  CHECK_THAT(error_of(io, c.post(call, server.url("https", "/a"), "")),
             Catch::Contains("TLS handshake") && Catch::Contains("no answer within the timeout"));
}

// ---- cancellation

TEST_CASE("http: a cancelled call ends at once while waiting for the answer, and its connection is not reused", "[http]") {
  asio::io_context io;
  test_server server(io);
  server.silent = true;
  asio::cancellation_signal signal;
  server.on_request = [&] { signal.emit(asio::cancellation_type::terminal); };
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60)});
  const auto started = clock_type::now();
  CHECK(is_cancellation(run_cancellable(io, c.post(call, server.url("/a"), ""), signal)));
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
  server.silent = false;
  server.on_request = nullptr;
  CHECK(run(io, c.post(call, server.url("/a"), "")) == "ok");
  CHECK(c.connections_opened() == 2);
}

TEST_CASE("http: a cancelled call ends at once while sending its body", "[http]") {
  asio::io_context io;
  mute_server server(io);  // reads the first bytes, then nothing: the body cannot all be sent
  asio::cancellation_signal signal;
  server.on_bytes = [&] { signal.emit(asio::cancellation_type::terminal); };
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60)});
  const auto started = clock_type::now();
  CHECK(is_cancellation(run_cancellable(io, c.post(call, server.url("http", "/a"), std::string(32 << 20, 'x')), signal)));
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
}

TEST_CASE("https: a cancelled call ends at once during the TLS handshake", "[http]") {
  asio::io_context io;
  mute_server server(io);  // reads the ClientHello, never answers it
  asio::cancellation_signal signal;
  server.on_bytes = [&] { signal.emit(asio::cancellation_type::terminal); };
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60), .ca_file = test_data("ca.crt")});
  const auto started = clock_type::now();
  CHECK(is_cancellation(run_cancellable(io, c.post(call, server.url("https", "/a"), ""), signal)));
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
  CHECK(server.bytes_read > 0);
}

TEST_CASE("http: a cancelled call ends at once while connecting", "[http]") {
  asio::io_context io;
  // A listener whose queue of one is taken and that never accepts: Linux
  // drops further SYNs, so a connection attempt waits.
  tcp::acceptor full(io);
  full.open(tcp::v4());
  full.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  full.listen(0);
  tcp::socket first(io);
  first.connect(full.local_endpoint());
  const std::string url = "http://127.0.0.1:" + std::to_string(full.local_endpoint().port()) + "/a";
  // The caller gives up after a while, whatever the call is doing by then.
  asio::cancellation_signal signal;
  asio::steady_timer give_up(io, milliseconds(200));
  give_up.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60)});
  const auto started = clock_type::now();
  CHECK(is_cancellation(run_cancellable(io, c.post(call, url, ""), signal)));
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
  CHECK(c.connections_opened() == 0);
}

TEST_CASE("http: a call raced against a timer with || ends when the timer wins", "[http]") {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  test_server server(io);
  server.silent = true;
  wf::http::client c(io.get_executor(), {.timeout = std::chrono::seconds(60)});
  auto race = [&]() -> asio::awaitable<std::size_t> {
    asio::steady_timer timer(io, milliseconds(100));
    auto winner = co_await (c.post(call, server.url("/a"), "") || timer.async_wait(asio::use_awaitable));
    co_return winner.index();
  };
  const auto started = clock_type::now();
  CHECK(run(io, race()) == 1);
  CHECK(clock_type::now() - started < std::chrono::seconds(30));
  CHECK(server.requests.size() == 1);
}

// PostgreSQL: a runtime whose database becomes unreachable. The store talks
// to the test database through a TCP proxy the test cuts, so that the shared
// test cluster itself is never stopped (tests/process/postgres_down_test.cpp
// does the same against a stopped cluster, where scripts/test owns it).
#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <future>
#include <list>
#include <thread>

using namespace wf_test;
using namespace std::chrono_literals;

namespace {

using tcp = asio::ip::tcp;

// Forwards connections from a port of 127.0.0.1 to `target`, on a thread of
// its own, until cut(): then it closes every connection and stops listening,
// so that connecting is refused, as with a database that went down.
class tcp_proxy {
 public:
  explicit tcp_proxy(tcp::endpoint target) : target_(target), acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~tcp_proxy() {
    cut();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  unsigned short port() const noexcept { return port_; }

  // Closes the listening socket and every connection; returns once done.
  void cut() {
    std::promise<void> done;
    asio::post(io_, [this, &done] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (auto& s : sockets_) s.close(ec);
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;  // closed: cut
      auto& in = sockets_.emplace_back(std::move(client));
      auto& out = sockets_.emplace_back(io_);
      auto [cec] = co_await out.async_connect(target_, asio::as_tuple(asio::use_awaitable));
      if (cec) {
        in.close(cec);
        continue;
      }
      asio::co_spawn(io_, pump(in, out), asio::detached);
      asio::co_spawn(io_, pump(out, in), asio::detached);
    }
  }
  static asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
    char buf[16384];
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(buf, n), asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    boost::system::error_code ignored;
    from.close(ignored);
    to.close(ignored);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  tcp::endpoint target_;
  tcp::acceptor acceptor_;
  std::list<tcp::socket> sockets_;  // stable addresses; kept until the proxy goes
  unsigned short port_ = 0;
  std::thread thread_;
};

// The test database's connection string, host and port: libpq's parse of
// WF_TEST_PG_URL. Empty host if it is not a TCP address (a socket directory).
struct conninfo {
  std::vector<std::pair<std::string, std::string>> fields;  // keyword, value (host and port left out)
  std::string host;
  unsigned short port = 5432;

  static conninfo parse(const std::string& text) {
    conninfo out;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
    if (!opts) {
      if (err) PQfreemem(err);
      return out;
    }
    for (auto* o = opts; o->keyword; ++o) {
      if (!o->val || !*o->val) continue;
      const std::string key = o->keyword, value = o->val;
      if (key == "host" || key == "hostaddr")
        out.host = value;
      else if (key == "port")
        out.port = static_cast<unsigned short>(std::stoi(value));
      else
        out.fields.emplace_back(key, value);
    }
    PQconninfoFree(opts);
    return out;
  }
  // The same connection, to 127.0.0.1:`port` instead.
  std::string via(unsigned short p) const {
    std::string s = "host=127.0.0.1 port=" + std::to_string(p);
    for (const auto& [k, v] : fields) {
      std::string quoted;
      for (char ch : v) {
        if (ch == '\'' || ch == '\\') quoted += '\\';
        quoted += ch;
      }
      s += " " + k + "='" + quoted + "'";
    }
    return s;
  }
};

}  // namespace

TEST_CASE("postgres: runtime::start() returns at once and leaves the io thread free while the database is unreachable") {
  WF_REQUIRE_DATABASE();
  const auto db = conninfo::parse(pg_url());
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(db.host, ec);
  if (db.host.empty() || ec) {
    WARN("WF_TEST_PG_URL does not name a TCP address: skipped");
    return;
  }
  tcp_proxy proxy(tcp::endpoint(address, db.port));
  auto options = pg_options();
  options.connection = db.via(proxy.port());
  auto store = wf::postgres_store::open(options);  // through the proxy, while it forwards
  proxy.cut();                                     // from now on, connecting is refused

  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "cut-off", .poll_interval = 50ms});
  rt.register_workflow("noop", [](wf::workflow&, std::string) -> asio::awaitable<void> { co_return; });

  // The first subscription to new work starts the store's listener, which
  // cannot connect. (It used to wait up to 5 s here for its LISTEN, on the
  // io thread.)
  const auto before_start = std::chrono::steady_clock::now();
  rt.start();
  CHECK(std::chrono::steady_clock::now() - before_start < 1s);

  // The io thread stays free while the poller fails to reach the database
  // every 50 ms: ten 20 ms waits take about 200 ms, not seconds.
  int ticks = 0;
  auto tick = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    for (; ticks < 10; ++ticks) {
      t.expires_after(20ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  };
  const auto before_ticks = std::chrono::steady_clock::now();
  asio::co_spawn(io, tick, asio::detached);
  while (ticks < 10 && std::chrono::steady_clock::now() - before_ticks < 10s) io.run_one_for(100ms);
  CHECK(ticks == 10);
  CHECK(std::chrono::steady_clock::now() - before_ticks < 1s);
  rt.stop();
}

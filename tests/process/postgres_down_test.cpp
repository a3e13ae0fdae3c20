// Process-level: a runtime whose PostgreSQL is down. It stops the test
// cluster, so it runs only where WF_TEST_PG_DATA and WF_TEST_PG_CTL name our
// own cluster (scripts/test sets them), serially with the other process tests.
#include "processes.hpp"
#include "support.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Starts the cluster again when the test ends, however it ends.
struct restart_on_exit {
  bool down = false;
  ~restart_on_exit() {
    if (down) wf_test::pg_ctl("start", "", "/dev/null");
  }
};

}  // namespace

TEST_CASE("process: runtime::start() returns at once and leaves the io thread free while PostgreSQL is down") {
  WF_REQUIRE_DATABASE();
  if (!wf_test::can_restart_postgres()) {
    WARN("WF_TEST_PG_DATA is not set (not our own cluster): skipped");
    return;
  }
  auto store = wf::postgres_store::open(wf_test::pg_options());  // opened while the database is up
  restart_on_exit cluster;
  REQUIRE(wf_test::pg_ctl("stop", "fast", "/dev/null") == 0);
  cluster.down = true;

  boost::asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "down", .poll_interval = 50ms});
  rt.register_workflow("noop", [](wf::workflow&, std::string) -> boost::asio::awaitable<void> { co_return; });

  // The first subscription to new work starts the store's listener, which
  // cannot connect now. (It used to wait up to 5 s here for its LISTEN, on
  // the io thread.)
  const auto before_start = std::chrono::steady_clock::now();
  rt.start();
  CHECK(std::chrono::steady_clock::now() - before_start < 1s);

  // The io thread stays free while the poller fails to reach the database
  // every 50 ms: ten 20 ms waits take about 200 ms, not seconds.
  int ticks = 0;
  auto tick = [&]() -> boost::asio::awaitable<void> {
    boost::asio::steady_timer t(io);
    for (; ticks < 10; ++ticks) {
      t.expires_after(20ms);
      co_await t.async_wait(boost::asio::use_awaitable);
    }
  };
  const auto before_ticks = std::chrono::steady_clock::now();
  boost::asio::co_spawn(io, tick, boost::asio::detached);
  while (ticks < 10 && std::chrono::steady_clock::now() - before_ticks < 10s) io.run_one_for(100ms);
  CHECK(ticks == 10);
  CHECK(std::chrono::steady_clock::now() - before_ticks < 1s);
  rt.stop();

  REQUIRE(wf_test::pg_ctl("start", "", "/dev/null") == 0);
  cluster.down = false;
  // The cluster is back where the tests after this one look for it (a start
  // without the first start's options once put it on another port).
  CHECK_NOTHROW(wf::postgres_store::open(wf_test::pg_options()));
}

// wf_test_worker: a process that runs many workflows against PostgreSQL, for
// the process-level tests (killed, frozen, restarted, two at once).
//
// usage: wf_test_worker URL SCHEMA EXECUTOR_ID COUNT LEASE_MS
//
// Runs workflows w-0 .. w-(COUNT-1) ("three": branches A, B, C; those whose
// index is a multiple of 5 are refused at C and roll back), resuming its own
// unfinished ones first and taking over those of runners whose lease expired.
// Its participant keeps its effects in SCHEMA.effects behind a barrier (a
// unique key on gid, branch id and op). Exits 0 once every workflow has an
// outcome.
#include <wf/postgres_store.hpp>
#include <wf/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace asio = boost::asio;

namespace {

// A participant whose data is in PostgreSQL: each op applies at most once per
// (gid, branch id, op); a rollback whose action never ran applies nothing and
// blocks that action.
class participant {
 public:
  participant(const std::string& url, std::string schema) : conn_(url), schema_(std::move(schema)) {
    // A frozen process may hold a row lock on a barrier key this one needs:
    // the server ends its idle transaction, and this one waits only so long
    // for the lock (then the call fails, transiently, and is retried).
    conn_.set_variable("idle_in_transaction_session_timeout", "2000");
    conn_.set_variable("lock_timeout", "2000");
  }

  void action(const wf::branch_context& c) {
    pqxx::work tx(conn_);
    tx.exec_params("INSERT INTO " + schema_ + ".effects VALUES ($1, $2, 'action', true) ON CONFLICT DO NOTHING",
                   std::string(c.gid), std::string(c.branch_id));
    tx.commit();
  }

  void rollback(const wf::branch_context& c) {
    pqxx::work tx(conn_);
    const auto blocked = tx.exec_params("INSERT INTO " + schema_ +
                                            ".effects VALUES ($1, $2, 'action', false) ON CONFLICT DO NOTHING",
                                        std::string(c.gid), std::string(c.branch_id));
    const bool null_compensation = blocked.affected_rows() == 1;
    tx.exec_params("INSERT INTO " + schema_ + ".effects VALUES ($1, $2, 'rollback', $3) ON CONFLICT DO NOTHING",
                   std::string(c.gid), std::string(c.branch_id), !null_compensation);
    tx.commit();
  }

 private:
  pqxx::connection conn_;
  std::string schema_;
};

asio::awaitable<void> run_all(wf::runtime& rt, int count, int& finished) {
  co_await rt.recover();
  rt.start();
  int in_flight = 0;
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < count; ++i) {
    while (in_flight >= 32) {
      asio::steady_timer t(ex, std::chrono::milliseconds(2));
      co_await t.async_wait(asio::use_awaitable);
    }
    ++in_flight;
    auto one = [&rt, &finished, &in_flight, i]() -> asio::awaitable<void> {
      const auto gid = "w-" + std::to_string(i);
      for (;;) {
        try {
          co_await rt.execute("three", gid, wf::encode(i));
          break;
        } catch (const std::exception&) {
          // Lost to another runner, or the database is restarting: ask again.
        }
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::use_awaitable);
      }
      --in_flight;
      ++finished;
    };
    asio::co_spawn(ex, one, asio::detached);
  }
  while (finished < count) {
    asio::steady_timer t(ex, std::chrono::milliseconds(10));
    co_await t.async_wait(asio::use_awaitable);
  }
  rt.stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: wf_test_worker URL SCHEMA EXECUTOR_ID COUNT LEASE_MS\n";
    return EXIT_FAILURE;
  }
  const std::string url = argv[1], schema = argv[2], id = argv[3];
  const int count = std::atoi(argv[4]);
  const auto lease = std::chrono::milliseconds(std::atoi(argv[5]));

  wf::postgres_options o;
  o.connection = url;
  o.schema = schema;
  o.wait_for_database = std::chrono::seconds(30);
  auto store = wf::postgres_store::open(o);
  auto p = std::make_shared<participant>(url, schema);

  asio::io_context io;
  wf::runtime rt(io.get_executor(), store,
                 {.executor_id = id, .lease_duration = lease, .poll_interval = std::chrono::milliseconds(100)});
  wf::workflow_options wo;
  wo.retry.initial_interval = std::chrono::milliseconds(10);
  wo.retry.max_interval = std::chrono::milliseconds(200);
  rt.register_workflow(
      "three",
      [p](wf::workflow& w, int index) -> asio::awaitable<int> {
        auto rollback = [p](const wf::branch_context& c) -> asio::awaitable<void> {
          p->rollback(c);
          co_return;
        };
        for (const char* name : {"A", "B", "C"}) {
          const bool refuse = std::string(name) == "C" && index % 5 == 0;
          auto action = [p, refuse](const wf::branch_context& c) -> asio::awaitable<void> {
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            if (refuse) throw wf::failure("C refused");
            p->action(c);
          };
          co_await w.new_branch(name).on_rollback(rollback).run(action);
        }
        co_return index;
      },
      wo);

  int finished = 0;
  bool failed = false;
  asio::co_spawn(io, run_all(rt, count, finished), [&](std::exception_ptr e) {
    if (!e) return;
    failed = true;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "wf_test_worker: " << ex.what() << "\n";
    }
  });
  io.run();
  std::cout << id << ": " << finished << " workflows finished\n";
  return failed || finished != count ? EXIT_FAILURE : EXIT_SUCCESS;
}

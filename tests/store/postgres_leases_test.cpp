// PostgreSQL: lease renewals keep up while the store does other work: a
// purge of many finished workflows, and journal writes of the very
// workflows being renewed.
#include "support.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <random>

using namespace wf_test;
using namespace std::chrono_literals;

TEST_CASE("postgres: leases are renewed while a purge deletes 150,000 workflows") {
  WF_REQUIRE_DATABASE();
  constexpr int old_workflows = 150'000;
  constexpr int parked = 1'000;
  const auto schema = fresh_schema();
  auto store = open_store("postgres", schema);
  {
    // Finished a day ago: what the purge deletes.
    pqxx::connection c(pg_url());
    pqxx::work tx(c);
    tx.exec("INSERT INTO " + schema +
            ".workflows (gid, name, input, status, result, epoch, owner, lease_expires, next_attempt_at, "
            "created_at, updated_at) "
            "SELECT 'old-' || i, 'old', '', 1, '', 1, '', now(), now(), now() - interval '2 days', "
            "now() - interval '1 day' FROM generate_series(1, " +
            std::to_string(old_workflows) + ") AS i");
    tx.commit();
  }

  asio::io_context io;
  // A short lease, a third of the purge (600 ms, renewed every 200 ms; the
  // purge takes about 1.8 s): a renewal held up behind the purge lets it run
  // out... (A 300 ms lease failed when a loaded machine, running other tests
  // beside this one, held the io thread up by more than 200 ms. Under a
  // sanitizer the io thread is slower still with 2,000 workflows on it:
  // 1.5 s then, still shorter than the purge.)
  const auto lease = slow_build ? 1500ms : 600ms;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "renewer", .lease_duration = lease});
  // ...and then another runner (a process of its own: its own store object)
  // takes the workflow over, and the renewer loses it.
  wf::runtime taker(io.get_executor(), open_store("postgres", schema),
                    {.executor_id = "taker", .lease_duration = lease, .poll_interval = 20ms});
  asio::steady_timer gate(io, asio::steady_timer::time_point::max());
  bool gate_open = false;
  int started = 0;
  auto parked_workflow = [&](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto action = [&](const wf::branch_context&) -> asio::awaitable<std::string> {
      ++started;
      while (!gate_open) {
        boost::system::error_code ec;
        co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      co_return "ok";
    };
    co_return co_await w.new_branch("Wait").run(action);
  };
  rt.register_workflow("parked", parked_workflow);
  taker.register_workflow("parked", parked_workflow);
  int succeeded = 0, lost = 0, failed = 0;
  for (int i = 0; i < parked; ++i)
    asio::co_spawn(io, rt.execute("parked", "p-" + std::to_string(i), ""), [&](std::exception_ptr e, wf::outcome o) {
      if (!e && o.succeeded()) {
        ++succeeded;
        return;
      }
      try {
        if (e) std::rethrow_exception(e);
        ++failed;
      } catch (const wf::lease_lost_error&) {
        ++lost;
      } catch (...) {
        ++failed;
      }
    });
  // Every workflow parked in its branch.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (started < parked && std::chrono::steady_clock::now() < give_up) io.run_one_for(50ms);
  REQUIRE(started == parked);

  // The purge, with another runner ready to take over any lease that runs out meanwhile.
  taker.start();
  const auto purged = run(io, rt.purge(std::chrono::hours(1)));
  taker.stop();
  CHECK(purged == static_cast<std::size_t>(old_workflows));

  gate_open = true;
  gate.cancel();
  while (succeeded + lost + failed < parked && std::chrono::steady_clock::now() < give_up + 30s) io.run_one_for(50ms);
  CHECK(succeeded == parked);
  CHECK(lost == 0);
  CHECK(failed == 0);
  pqxx::connection c(pg_url());
  pqxx::work tx(c);
  const auto r = tx.exec("SELECT count(*), count(*) FILTER (WHERE epoch = 1 AND status = 1 AND owner = 'renewer') FROM " +
                         schema + ".workflows");
  CHECK(r[0][0].as<int>() == parked);  // the old ones are gone, the parked ones finished
  CHECK(r[0][1].as<int>() == parked);  // never claimed again: no lease was lost
}

namespace {
// What a runner does when many of its workflows finish at once: the lease
// session renews all of them in one statement while the group writer
// commits their journal writes, in whatever order they came. Or, at
// shutdown, releases them (then the writes are fenced: the runner no
// longer owns them).
void renew_or_release_while_writing(bool release) {
  constexpr int n = 1'000;
  constexpr int rounds = 10;
  auto store = make_store("postgres");
  asio::io_context io;
  std::vector<std::string> gids;
  for (int i = 0; i < n; ++i) gids.push_back("w-" + std::to_string(i));
  int created = 0;
  for (const auto& gid : gids) {
    wf::workflow_state s;
    s.gid = gid;
    s.name = "w";
    s.owner = "me";
    s.lease_expires = wf::wall_clock::now() + 1h;
    s.next_attempt_at = wf::wall_clock::now();
    auto create = [&, s]() -> asio::awaitable<void> {
      if ((co_await store->create(s)).created) ++created;
    };
    asio::co_spawn(io, create, asio::detached);
  }
  io.run();
  REQUIRE(created == n);

  std::mt19937 rng(12345);
  int errors = 0;
  std::string first_error;
  std::chrono::milliseconds slowest_renewal{0};
  std::vector<wf::write_status> statuses;
  auto note_error = [&](const std::exception& e) {
    if (errors++ == 0) first_error = e.what();
  };
  for (int round = 0; round < rounds; ++round) {
    // The writes in the order the workflows happened to finish: one commit()
    // call per workflow, grouped by the writer.
    std::shuffle(gids.begin(), gids.end(), rng);
    for (const auto& gid : gids) {
      wf::write w{gid, 1, {}, wf::progress{wf::workflow_status::running, {}, static_cast<std::uint32_t>(round), "", {}}};
      auto commit = [&, w]() -> asio::awaitable<void> {
        try {
          std::vector<wf::write> batch{w};
          auto st = co_await store->commit(std::move(batch));
          statuses.push_back(st.at(0));
        } catch (const std::exception& e) {
          note_error(e);
        }
      };
      asio::co_spawn(io, commit, asio::detached);
    }
    // The renewal (or release) of all of them, meanwhile, in another order.
    std::shuffle(gids.begin(), gids.end(), rng);
    const bool last = round == rounds - 1;
    auto renew = [&, list = gids]() -> asio::awaitable<void> {
      const auto began = std::chrono::steady_clock::now();
      try {
        if (release && last) {
          co_await store->release("me", list);
        } else {
          auto lost = co_await store->renew("me", list, 1h);
          CHECK(lost.empty());
        }
      } catch (const std::exception& e) {
        note_error(e);
      }
      slowest_renewal = std::max(slowest_renewal, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::steady_clock::now() - began));
    };
    asio::co_spawn(io, renew, asio::detached);
    io.restart();
    io.run();
  }
  INFO("first error: " << first_error);
  CHECK(errors == 0);
  CHECK(statuses.size() == static_cast<std::size_t>(n * rounds));
  const auto ok = std::count(statuses.begin(), statuses.end(), wf::write_status::ok);
  if (release) {
    // The last round's writes land before or after the release (fenced).
    CHECK(ok >= n * (rounds - 1));
    CHECK(std::count(statuses.begin(), statuses.end(), wf::write_status::fenced) == n * rounds - ok);
    for (const auto& gid : gids) {
      auto s = run_bounded(io, store->find(gid));
      REQUIRE(s);
      CHECK(s->owner.empty());  // every one released
      CHECK(s->epoch == 2);
    }
  } else {
    CHECK(ok == n * rounds);
  }
  // PostgreSQL finds a deadlock after deadlock_timeout (1 s by default): a
  // renewal that took that long waited for one.
  CHECK(slowest_renewal < 900ms);
}
}  // namespace

TEST_CASE("postgres: renewing leases while the same workflows are written in groups neither deadlocks nor waits") {
  WF_REQUIRE_DATABASE();
  renew_or_release_while_writing(false);
}

TEST_CASE("postgres: releasing workflows while they are written in groups neither deadlocks nor loses a release") {
  WF_REQUIRE_DATABASE();
  renew_or_release_while_writing(true);
}

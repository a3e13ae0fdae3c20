// A runtime's life: stopped abruptly in any destruction order, shut down
// gracefully, losing a lease, healing its own lapsed workflows, recovering
// while callers execute; and the crash helper's comparison of recorded values.
#include "support.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <regex>
#include <set>

using namespace wf_test;
using namespace std::chrono_literals;

namespace {

// A latch for coroutines on one io_context: wait() completes once open() was
// called (at once if it was already). A waiter cancelled by its coroutine's
// cancellation slot throws operation_aborted, as any Asio wait does.
class held_gate {
 public:
  explicit held_gate(asio::any_io_executor ex) : timer_(std::move(ex), asio::steady_timer::time_point::max()) {}

  asio::awaitable<void> wait() {
    ++waiting_;
    while (!open_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec && !open_) {
        --waiting_;
        throw boost::system::system_error(ec);
      }
    }
    --waiting_;
  }
  void open() {
    open_ = true;
    timer_.cancel();
  }
  bool is_open() const noexcept { return open_; }
  int waiting() const noexcept { return waiting_; }

 private:
  asio::steady_timer timer_;
  bool open_ = false;
  int waiting_ = 0;
};

// Runs `io` until `done()` holds, at most `limit`. The store's threads and
// the runtime's timers go on meanwhile. Returns whether `done()` held.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 10s) {
  io.restart();
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    io.run_one_for(10ms);
    if (io.stopped()) io.restart();
  }
  return true;
}

// A store seen through a wrapper that can hold some operations at a held_gate,
// and notes which workflows it saw finish.
class probe_store final : public wf::store_wrapper {
 public:
  using wf::store_wrapper::store_wrapper;

  held_gate* hold_commit = nullptr;       // holds the first commit carrying a record named...
  std::string hold_commit_of;        // ...this
  held_gate* hold_renewals = nullptr;     // holds every renewal while set
  held_gate* hold_resumable = nullptr;    // holds claim_resumable while set
  bool commit_held = false;          // a commit is waiting at its held_gate
  int renewals_held = 0;
  bool resumable_held = false;
  std::set<std::string> finished;    // gids whose final status was committed
  std::map<std::string, wf::workflow_status> final_status;

  asio::awaitable<std::vector<wf::write_status>> commit(std::vector<wf::write> writes) override {
    if (hold_commit && !hold_commit_of.empty()) {
      bool match = false;
      for (const auto& w : writes)
        for (const auto& r : w.records) match = match || r.name == hold_commit_of;
      if (match) {
        hold_commit_of.clear();
        commit_held = true;
        co_await hold_commit->wait();
        commit_held = false;
      }
    }
    std::vector<std::pair<std::string, wf::workflow_status>> ends;
    for (const auto& w : writes) ends.emplace_back(w.gid, w.new_progress ? w.new_progress->status : wf::workflow_status::running);
    auto statuses = co_await wf::store_wrapper::commit(std::move(writes));
    for (std::size_t i = 0; i < statuses.size(); ++i)
      if (statuses[i] == wf::write_status::ok && ends[i].second != wf::workflow_status::running) {
        finished.insert(ends[i].first);
        final_status[ends[i].first] = ends[i].second;
      }
    co_return statuses;
  }

  asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                  std::chrono::milliseconds lease) override {
    if (hold_renewals) {
      ++renewals_held;
      co_await hold_renewals->wait();
      --renewals_held;
    }
    co_return co_await wf::store_wrapper::renew(std::move(owner), std::move(gids), lease);
  }

  asio::awaitable<std::vector<wf::claim_result>> claim_resumable(wf::claim_request request) override {
    if (hold_resumable) {
      resumable_held = true;
      co_await hold_resumable->wait();
      resumable_held = false;
    }
    co_return co_await wf::store_wrapper::claim_resumable(std::move(request));
  }
};

// A store that counts the new-work subscriptions alive and keeps a copy of
// every callback it was given, to call them when the test wants (as a
// notification thread that picked a callback just before it was removed).
class counting_subscriptions final : public wf::store_wrapper {
 public:
  using wf::store_wrapper::store_wrapper;

  std::shared_ptr<std::atomic<int>> live = std::make_shared<std::atomic<int>>(0);

  wf::subscription on_new_work(std::function<void()> callback) override {
    {
      std::lock_guard lock(mutex_);
      kept_.push_back(callback);
    }
    auto inner = std::make_shared<wf::subscription>(wf::store_wrapper::on_new_work(std::move(callback)));
    ++*live;
    return wf::subscription([inner, live = live] {
      inner->reset();
      --*live;
    });
  }

  std::size_t subscribed() const {
    std::lock_guard lock(mutex_);
    return kept_.size();
  }
  // Calls every callback ever given, as a late announcement would.
  void announce_late() const {
    std::vector<std::function<void()>> all;
    {
      std::lock_guard lock(mutex_);
      all = kept_;
    }
    for (auto& cb : all) cb();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::function<void()>> kept_;
};

// "sleeper": one branch whose action waits `nap` on a steady timer.
void register_sleeper(wf::runtime& rt, std::chrono::milliseconds nap) {
  rt.register_workflow("sleeper", [nap](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto sleep = [nap](const wf::branch_context&) -> asio::awaitable<std::string> {
      asio::steady_timer t(co_await asio::this_coro::executor, nap);
      co_await t.async_wait(asio::use_awaitable);
      co_return "rested";
    };
    co_return co_await w.new_branch("Nap").run(sleep);
  });
}

// What the "parked" workflow's action saw, shared by the runtimes of a test.
struct parked_calls {
  int calls = 0;                                // calls of the action, all runtimes
  std::optional<boost::system::error_code> ended;  // how the first call's hour-long wait ended
  std::string finished_by;                      // the runtime whose run returned
};

// "parked": one branch whose first call waits an hour on a steady timer (it
// ends only by cancellation); later calls return at once.
void register_parked(wf::runtime& rt, std::shared_ptr<parked_calls> st, std::string runner) {
  rt.register_workflow("parked", [st, runner](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto action = [st](const wf::branch_context&) -> asio::awaitable<std::string> {
      if (++st->calls == 1) {
        asio::steady_timer t(co_await asio::this_coro::executor, 1h);
        boost::system::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        st->ended = ec;
        if (ec) throw boost::system::system_error(ec);
      }
      co_return "done";
    };
    auto r = co_await w.new_branch("P").run(action);
    st->finished_by = runner;
    co_return r;
  });
}

// How a test observes an execute() it spawned.
struct call_result {
  bool done = false;
  std::optional<wf::outcome> out;
  std::exception_ptr error;
};

void spawn_execute(asio::io_context& io, wf::runtime& rt, const std::string& name, const std::string& gid,
                   const std::string& input, call_result& r) {
  asio::co_spawn(io, rt.execute(name, gid, input), [&r](std::exception_ptr e, wf::outcome o) {
    r.done = true;
    r.error = e;
    if (!e) r.out = std::move(o);
  });
}

template <class E>
bool thrown_as(const std::exception_ptr& e) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string message(const std::exception_ptr& e) {
  if (!e) return "(no error)";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

// ---- stopping abruptly: io.stop() while a store thread still works for the runtime

enum class teardown { runtime_io_store, io_runtime_store, store_first };

// The reproduction of the shutdown crash: a short lease (renewals every
// 10 ms), a workflow parked in a 200 ms wait, the io_context stopped after
// 50 ms and destroyed, with the three objects going in the order asked.
void stop_abruptly(const std::string& kind, teardown order) {
  const int rounds = kind == "memory" ? 3 : 20;
  auto open = shared_data(kind);
  for (int i = 0; i < rounds; ++i) {
    auto store = open();
    auto io = std::make_unique<asio::io_context>();
    auto rt = std::make_unique<wf::runtime>(io->get_executor(), store,
                                            wf::runtime_options{.executor_id = "abrupt", .lease_duration = 30ms});
    register_sleeper(*rt, 200ms);
    asio::co_spawn(*io, rt->execute("sleeper", "g" + std::to_string(i), ""), asio::detached);
    io->run_for(50ms);
    io->stop();
    switch (order) {
      case teardown::runtime_io_store:
        rt.reset();
        io.reset();
        store.reset();
        break;
      case teardown::io_runtime_store:
        io.reset();
        rt.reset();
        store.reset();
        break;
      case teardown::store_first:
        // The test's handle goes first; the store lives on in the runtime and
        // the coroutines, and goes with whichever of them is last.
        store.reset();
        if (i % 2 == 0) {
          rt.reset();
          io.reset();
        } else {
          io.reset();
          rt.reset();
        }
        break;
    }
  }
}

}  // namespace

// ---- abrupt stops

TEST_CASE("a runtime stopped mid-renewal can be destroyed before its io_context, then the store") {
  stop_abruptly(WF_EACH_STORE, teardown::runtime_io_store);
}

TEST_CASE("an io_context stopped mid-renewal can be destroyed before the runtime and the store") {
  stop_abruptly(WF_EACH_STORE, teardown::io_runtime_store);
}

TEST_CASE("the store handle can be dropped first after an io_context was stopped mid-renewal") {
  stop_abruptly(WF_EACH_STORE, teardown::store_first);
}

TEST_CASE("the new-work subscription of a started runtime ends with the runtime") {
  auto s = std::make_shared<counting_subscriptions>(make_store(WF_EACH_STORE));
  constexpr int runtimes = 6;
  for (int i = 0; i < runtimes; ++i) {
    auto io = std::make_unique<asio::io_context>();
    auto rt = std::make_unique<wf::runtime>(io->get_executor(), s, wf::runtime_options{.executor_id = "sub"});
    register_sleeper(*rt, 1ms);
    rt->start();
    io->poll();
    CHECK(*s->live == 1);
    // Half of them go before their io_context, half after it.
    if (i % 2 == 0) {
      rt.reset();
      io.reset();
    } else {
      io.reset();
      rt.reset();
    }
    CHECK(*s->live == 0);
  }
  CHECK(s->subscribed() == runtimes);
  CHECK(*s->live == 0);
}

TEST_CASE("a new-work announcement after the runtime or its io_context is gone is harmless") {
  const auto kind = WF_EACH_STORE;
  auto s = std::make_shared<counting_subscriptions>(make_store(kind));
  {
    // The runtime goes, its io_context lives on and runs what the late announcement posts.
    asio::io_context io;
    {
      wf::runtime rt(io.get_executor(), s, {.executor_id = "late-1"});
      register_sleeper(rt, 1ms);
      rt.start();
      io.poll();
    }
    s->announce_late();
    io.restart();
    io.poll();
    // The io_context goes too; announcing again touches neither.
  }
  s->announce_late();
  {
    // The io_context goes first, the runtime after it; then the announcement.
    auto io = std::make_unique<asio::io_context>();
    auto rt = std::make_unique<wf::runtime>(io->get_executor(), s, wf::runtime_options{.executor_id = "late-2"});
    register_sleeper(*rt, 1ms);
    rt->start();
    io->poll();
    io.reset();
    s->announce_late();
    rt.reset();
    s->announce_late();
  }
  CHECK(s->subscribed() == 2);
  CHECK(*s->live == 0);
}

// ---- graceful shutdown

TEST_CASE("shutdown cancels the action of a workflow parked in a branch and gives the workflow back to the store") {
  const auto kind = WF_EACH_STORE;
  auto store = make_store(kind);
  asio::io_context io;
  auto st = std::make_shared<parked_calls>();
  wf::runtime rt(io.get_executor(), store, {.executor_id = "A", .lease_duration = 1h});
  register_parked(rt, st, "A");
  call_result a;
  spawn_execute(io, rt, "parked", "g1", "", a);
  REQUIRE(run_until(io, [&] { return st->calls == 1; }));

  run(io, rt.shutdown(5s));
  REQUIRE(run_until(io, [&] { return a.done; }));
  const auto after = wf::wall_clock::now();

  // The action saw Asio's terminal cancellation.
  REQUIRE(st->ended);
  CHECK(*st->ended == asio::error::operation_aborted);
  CHECK(st->calls == 1);
  INFO(message(a.error));
  CHECK(thrown_as<wf::shutdown_error>(a.error));
  // Released: no owner, due now, fenced (epoch 1 of the creation, bumped).
  const auto s = run(io, store->find("g1"));
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::running);
  CHECK(s->owner.empty());
  CHECK(s->epoch == 2);
  CHECK(s->next_attempt_at <= after);
  CHECK(s->lease_expires <= after);
  CHECK(run(io, store->journal("g1")).empty());
}

TEST_CASE("a workflow given back by a shutdown is taken over at once by another runner's poller") {
  const auto kind = WF_EACH_STORE;
  auto store = make_store(kind);
  asio::io_context io;
  auto st = std::make_shared<parked_calls>();
  // Leases of an hour: the takeover cannot come from a lease running out. And
  // B polls once an hour: only the announcement of the release can wake it.
  wf::runtime a(io.get_executor(), store, {.executor_id = "A", .lease_duration = 1h});
  wf::runtime b(io.get_executor(), store, {.executor_id = "B", .lease_duration = 1h, .poll_interval = 1h});
  register_parked(a, st, "A");
  register_parked(b, st, "B");
  b.start();
  call_result from_a;
  spawn_execute(io, a, "parked", "g1", "", from_a);
  REQUIRE(run_until(io, [&] { return st->calls == 1; }));

  bool shut = false;
  asio::co_spawn(io, a.shutdown(5s), [&](std::exception_ptr e) {
    REQUIRE_FALSE(e);
    shut = true;
  });
  REQUIRE(run_until(io, [&] { return shut && st->finished_by == "B"; }, 10s));
  CHECK(thrown_as<wf::shutdown_error>(from_a.error));
  // B runs it now: its execute joins that run.
  const auto out = run(io, b.execute("parked", "g1", ""));
  CHECK(out.succeeded());
  CHECK(out.result == "done");
  CHECK(st->calls == 2);
  const auto s = run(io, store->find("g1"));
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::succeeded);
  CHECK(s->owner == "B");
  CHECK(s->epoch == 3);  // created, released, claimed by B
  b.stop();
}

TEST_CASE("after shutdown, execute, enqueue, recover and start are refused with shutdown_error") {
  auto store = make_store(WF_EACH_STORE);
  asio::io_context io;
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  wf::runtime rt(io.get_executor(), store, {.executor_id = "closed"});
  register_chain(rt, p);
  run(io, rt.shutdown(1s));
  const auto input = chain_input({"A"});
  CHECK_THROWS_AS(run(io, rt.execute("chain", "g1", input)), wf::shutdown_error);
  CHECK_THROWS_AS(run(io, rt.enqueue("chain", "g2", input)), wf::shutdown_error);
  CHECK_THROWS_AS(run(io, rt.recover()), wf::shutdown_error);
  CHECK_THROWS_AS(rt.start(), wf::shutdown_error);
  CHECK_FALSE(run(io, store->find("g1")));
  CHECK_FALSE(run(io, store->find("g2")));
  CHECK(p->calls.empty());
}

TEST_CASE("a journal write in flight when shutdown is called finishes, and the next runner does not redo its branch") {
  auto base = make_store(WF_EACH_STORE);
  asio::io_context io;
  held_gate write_gate(io.get_executor());
  auto probe = std::make_shared<probe_store>(base);
  probe->hold_commit = &write_gate;
  probe->hold_commit_of = "A";  // the write of A's outcome waits at the held_gate
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  const auto input = chain_input({"A", "B"});
  {
    wf::runtime rt(io.get_executor(), probe, {.executor_id = "first", .lease_duration = 1h});
    register_chain(rt, p);
    call_result first;
    spawn_execute(io, rt, "chain", "g1", input, first);
    REQUIRE(run_until(io, [&] { return probe->commit_held; }));

    bool shut = false;
    asio::co_spawn(io, rt.shutdown(10s), [&](std::exception_ptr e) {
      REQUIRE_FALSE(e);
      shut = true;
    });
    io.restart();
    io.poll();
    CHECK_FALSE(shut);  // it waits for the write
    write_gate.open();
    REQUIRE(run_until(io, [&] { return shut && first.done; }));
    CHECK(thrown_as<wf::shutdown_error>(first.error));
  }
  // The write landed before the release: A's outcome is journaled.
  const auto journal = run(io, base->journal("g1"));
  REQUIRE(journal.size() == 1);
  CHECK(journal[0].name == "A");
  const auto s = run(io, base->find("g1"));
  REQUIRE(s);
  CHECK(s->owner.empty());
  CHECK(s->epoch == 2);
  // Another runner finishes it from the journal: A is not called again.
  wf::runtime next(io.get_executor(), base, {.executor_id = "next"});
  register_chain(next, p);
  const auto out = run(io, next.execute("chain", "g1", input));
  CHECK(out.succeeded());
  CHECK(p->calls == std::vector<std::string>{"A/action", "B/action"});
}

// ---- lost leases

TEST_CASE("a runner that loses its lease while backing off stops at once, without waiting for the backoff") {
  const auto kind = WF_EACH_STORE;
  auto base = make_store(kind);
  asio::io_context io;
  held_gate renewals(io.get_executor());
  auto probe = std::make_shared<probe_store>(base);
  // The runtime's clock never moves: its backoff never ends by itself.
  auto clock = std::make_shared<wf::testing::manual_clock>();
  const auto start = clock->now();
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  p->answer("A/action", "T");  // transient, forever
  wf::runtime rt(io.get_executor(), probe, {.executor_id = "A", .lease_duration = 150ms, .clock = clock});
  register_chain(rt, p);
  call_result a;
  spawn_execute(io, rt, "chain", "g1", chain_input({"A"}), a);
  REQUIRE(run_until(io, [&] { return clock->waiting() == 1; }));  // in backoff
  REQUIRE(p->calls.size() == 1);

  // A stops getting its renewals through (a slow lease session, a pause):
  // once its lease has run out, B takes the workflow over.
  probe->hold_renewals = &renewals;
  auto take_over = [&]() -> asio::awaitable<bool> {
    for (int i = 0; i < 500; ++i) {  // the lease (150 ms) runs out in real time
      auto c = co_await base->claim("g1", "B", 1h);
      if (c.status == wf::claim_status::claimed) co_return true;
      asio::steady_timer t(co_await asio::this_coro::executor, 10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return false;
  };
  REQUIRE(run(io, take_over()));
  CHECK_FALSE(a.done);

  // A's next renewal finds the lease lost: the attempt stops there and then.
  probe->hold_renewals = nullptr;
  renewals.open();
  REQUIRE(run_until(io, [&] { return a.done; }, 5s));
  INFO(message(a.error));
  CHECK(thrown_as<wf::lease_lost_error>(a.error));
  CHECK(clock->now() == start);
  CHECK(clock->waiting() == 0);  // the backoff wait was ended, not left behind
  CHECK(p->calls.size() == 1);   // and the participant was not called again
  const auto s = run(io, base->find("g1"));
  REQUIRE(s);
  CHECK(s->owner == "B");
}

// ---- healing and recovery

TEST_CASE("a runner's poller resumes its own unfinished workflow whose lease lapsed") {
  const auto kind = WF_EACH_STORE;
  auto base = make_store(kind);
  auto probe = std::make_shared<probe_store>(base);
  asio::io_context io;
  // What a run of this runner left behind when it stopped renewing: its own,
  // lease expired, due now.
  const auto now = wf::wall_clock::now();
  wf::workflow_state s;
  s.gid = "own-1";
  s.name = "chain";
  s.input = chain_input({"A"});
  s.owner = "me";
  s.lease_expires = now - 1s;
  s.next_attempt_at = now - 1s;
  s.created_at = s.updated_at = now - 1min;
  REQUIRE(run(io, base->create(s)).created);

  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  wf::runtime rt(io.get_executor(), probe, {.executor_id = "me"});
  register_chain(rt, p);
  rt.start();
  REQUIRE(run_until(io, [&] { return probe->finished.count("own-1") > 0; }, 10s));
  rt.stop();
  CHECK(probe->final_status["own-1"] == wf::workflow_status::succeeded);
  CHECK(p->calls == std::vector<std::string>{"A/action"});
  const auto after = run(io, base->find("own-1"));
  REQUIRE(after);
  CHECK(after->status == wf::workflow_status::succeeded);
  CHECK(after->epoch == 2);
}

TEST_CASE("execute called while recover is claiming waits for it: the new workflow is claimed once") {
  auto base = make_store(WF_EACH_STORE);
  asio::io_context io;
  held_gate claims(io.get_executor());
  held_gate branch(io.get_executor());
  auto probe = std::make_shared<probe_store>(base);
  probe->hold_resumable = &claims;
  wf::runtime rt(io.get_executor(), probe, {.executor_id = "me"});
  int started = 0;
  rt.register_workflow("held", [&](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto action = [&](const wf::branch_context&) -> asio::awaitable<std::string> {
      ++started;
      co_await branch.wait();
      co_return "ok";
    };
    co_return co_await w.new_branch("H").run(action);
  });

  bool recovered = false;
  std::size_t resumed = 99;
  asio::co_spawn(io, rt.recover(), [&](std::exception_ptr e, std::size_t n) {
    REQUIRE_FALSE(e);
    resumed = n;
    recovered = true;
  });
  REQUIRE(run_until(io, [&] { return probe->resumable_held; }));
  // recover's claim is pending; a caller executes a new workflow meanwhile.
  call_result r;
  spawn_execute(io, rt, "held", "new-1", "", r);
  io.restart();
  io.poll();
  claims.open();
  REQUIRE(run_until(io, [&] { return recovered; }));
  CHECK(resumed == 0);
  branch.open();
  REQUIRE(run_until(io, [&] { return r.done; }));
  INFO(message(r.error));
  REQUIRE(r.out);
  CHECK(r.out->succeeded());
  CHECK(started == 1);
  const auto s = run(io, base->find("new-1"));
  REQUIRE(s);
  CHECK(s->epoch == 1);  // neither fenced nor claimed twice
}

// ---- the crash helper and recorded values

namespace {

// "stamped": records a uuid and the time, passes both to a participant
// (whose effect text holds them, and a timestamp of its own), and returns a
// result holding the uuid.
std::function<void(wf::runtime&)> register_stamped(wf::testing::effect_log& log) {
  auto p = std::make_shared<fake_participant>(log);
  return [p](wf::runtime& rt) {
    rt.register_workflow("stamped", [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
      const auto id = co_await w.uuid();
      const auto at = co_await w.now();
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
      const std::string text = "order " + id + " at " + std::to_string(ns);
      // The participant adds a time of its own, which no journal knows.
      auto action = [p, text](const wf::branch_context& c) -> asio::awaitable<std::string> {
        const auto seen = std::chrono::steady_clock::now().time_since_epoch().count();
        co_return co_await p->call(c, text + " seen@" + std::to_string(seen));
      };
      co_await w.new_branch("Stamp").run(action);
      co_return "order " + id;
    });
  };
}

wf::testing::crash_test stamped_test(const std::string& kind) {
  wf::testing::crash_test t;
  t.workflow = "stamped";
  t.gid = "stamped-1";
  t.compare_results = true;
  t.make_store = store_per_run(kind);
  t.renewal_faults = renewal_faults_on(kind);
  t.run_limit = 10s;
  t.setup = [](wf::testing::effect_log& log) { return register_stamped(log); };
  return t;
}

}  // namespace

TEST_CASE("the crash test compares effects and results modulo recorded values, and applies normalize") {
  auto t = stamped_test(WF_EACH_STORE);
  t.normalize = [](std::string text) { return std::regex_replace(text, std::regex("seen@[0-9]+"), "seen@T"); };
  const auto r = wf::testing::check_crash_recovery(t);
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.journal_writes == 5);  // create, uuid, now, Stamp, decision
  CHECK(r.crash_points == crash_points_for(5, t.renewal_faults));
  // Compared as "the value of operation N", not as the values of one run.
  CHECK(r.reference.result == "order <value of operation 1>");
  REQUIRE(r.reference_effects.size() == 1);
  CHECK(r.reference_effects[0].what ==
        "Stamp/action order <value of operation 1> at <value of operation 2> seen@T");
}

TEST_CASE("without normalize, a participant's own timestamp makes the crash test report a difference") {
  // The same workflow: what normalize rewrote above is a real difference here,
  // so the comparison above was not vacuous.
  auto t = stamped_test("memory");
  t.faults = {wf::testing::fault::refuse};
  const auto r = wf::testing::check_crash_recovery(t);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.describe(), Catch::Contains("seen@"));
}

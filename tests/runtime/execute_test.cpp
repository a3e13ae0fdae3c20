// execute(): registration, idempotence by gid, conflicts, concurrency, ownership.
#include "support.hpp"

#include <boost/asio/steady_timer.hpp>

using namespace wf_test;

TEST_CASE("registering a name twice is an error") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  CHECK_THROWS_AS(register_chain(f.rt, f.participant), wf::duplicate_workflow_error);
}

TEST_CASE("executing an unknown workflow name is an error and stores nothing") {
  fixture f{WF_EACH_STORE};
  CHECK_THROWS_AS(f.execute("nope", "g1", ""), wf::unknown_workflow_error);
  CHECK_FALSE(f.state("g1"));
}

TEST_CASE("bad workflow ids are refused") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  CHECK_THROWS_AS(f.execute("chain", "", ""), std::invalid_argument);
  CHECK_THROWS_AS(f.execute("chain", "has space", ""), std::invalid_argument);
  CHECK_THROWS_AS(f.execute("chain", std::string(129, 'x'), ""), std::invalid_argument);
  CHECK_FALSE(f.state("has space"));
}

TEST_CASE("executing a finished gid again returns the stored outcome without running anything") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  auto first = f.execute("chain", "g1", chain_input({"A"}));
  const auto calls = f.participant->calls;
  auto second = f.execute("chain", "g1", chain_input({"A"}));
  CHECK(second.status == first.status);
  CHECK(second.result == first.result);
  CHECK(f.participant->calls == calls);

  f.participant->answer("B/action", "f");
  auto failed = f.execute("chain", "g2", chain_input({"B"}));
  CHECK(f.execute("chain", "g2", chain_input({"B"})).reason == failed.reason);
}

namespace {
// Counts the claims of single workflows.
struct counting_claims final : wf::store_wrapper {
  using wf::store_wrapper::store_wrapper;
  int claims = 0;
  asio::awaitable<wf::claim_result> claim(std::string gid, std::string owner, std::chrono::milliseconds lease) override {
    ++claims;
    co_return co_await wf::store_wrapper::claim(std::move(gid), std::move(owner), lease);
  }
};
}  // namespace

TEST_CASE("executing a finished gid in another runtime takes its outcome from the creation attempt, with no claim") {
  auto memory = std::make_shared<wf::memory_store>();
  wf::testing::effect_log log;
  auto participant = std::make_shared<fake_participant>(log);
  asio::io_context io;
  wf::outcome first;
  {
    wf::runtime rt(io.get_executor(), memory, {.executor_id = "first"});
    register_chain(rt, participant);
    first = run(io, rt.execute("chain", "g1", chain_input({"A"})));
    REQUIRE(first.succeeded());
  }
  auto counted = std::make_shared<counting_claims>(memory);
  wf::runtime rt(io.get_executor(), counted, {.executor_id = "second"});
  register_chain(rt, participant);
  const auto calls = participant->calls;
  const auto again = run(io, rt.execute("chain", "g1", chain_input({"A"})));
  CHECK(again.succeeded());
  CHECK(again.result == first.result);
  CHECK(counted->claims == 0);
  CHECK(participant->calls == calls);
  CHECK(memory->state("g1")->epoch == 1);
}

TEST_CASE("executing a running gid again waits for the same run") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  f.participant->answer("A/action", "t");
  std::vector<wf::outcome> outs;
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(f.io, f.rt.execute("chain", "g1", chain_input({"A"})),
                   [&](std::exception_ptr e, wf::outcome o) {
                     REQUIRE_FALSE(e);
                     outs.push_back(o);
                   });
  f.io.run();
  REQUIRE(outs.size() == 3);
  for (const auto& o : outs) CHECK(o.result == "done:A/action");
  CHECK(f.participant->calls == std::vector<std::string>{"A/action", "A/action"});
}

TEST_CASE("the same gid with a different input or name is a conflict") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  register_chain(f.rt, f.participant, fast_retries(), "other");
  f.execute("chain", "g1", chain_input({"A"}));
  CHECK_THROWS_AS(f.execute("chain", "g1", chain_input({"B"})), wf::conflict_error);
  CHECK_THROWS_AS(f.execute("other", "g1", chain_input({"A"})), wf::conflict_error);
  CHECK(f.records("g1").size() == 2);
}

TEST_CASE("async_execute completes a callback for callers outside coroutines") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  std::optional<wf::outcome> got;
  f.rt.async_execute("chain", "g1", chain_input({"A"}), [&](std::exception_ptr e, wf::outcome o) {
    REQUIRE_FALSE(e);
    got = o;
  });
  f.io.run();
  REQUIRE(got);
  CHECK(got->succeeded());
}

TEST_CASE("ten thousand workflows run concurrently on one thread") {
  fixture f;  // the runtime's concurrency, on the memory store
  register_chain(f.rt, f.participant);
  constexpr int n = 10'000;
  const auto input = chain_input({"A", "B"});
  int succeeded = 0;
  for (int i = 0; i < n; ++i)
    asio::co_spawn(f.io, f.rt.execute("chain", numbered("g", i), input),
                   [&](std::exception_ptr e, wf::outcome o) {
                     if (!e && o.succeeded()) ++succeeded;
                   });
  f.io.run();
  CHECK(succeeded == n);
  CHECK(std::static_pointer_cast<wf::memory_store>(f.store)->size() == n);
  CHECK(f.log.effects().size() == 2 * n);
}

TEST_CASE("a runner whose workflow was claimed by another cannot write to its journal") {
  fixture f{WF_EACH_STORE};
  f.rt.register_workflow("w", [p = f.participant, store = f.store, &f](wf::workflow& w, std::string) -> asio::awaitable<void> {
    co_await w.new_branch("A").run([&](const wf::branch_context& c) -> asio::awaitable<std::string> {
      // While A runs, a second runner takes the workflow over.
      auto claimed = co_await store->claim(std::string(c.gid), "another-runner", std::chrono::seconds(30));
      REQUIRE(claimed.status == wf::claim_status::busy);
      claimed = co_await store->claim(std::string(c.gid), f.rt.executor_id(), std::chrono::seconds(30));
      REQUIRE(claimed.status == wf::claim_status::claimed);
      co_return co_await p->call(c);
    });
  });
  CHECK_THROWS_AS(f.execute("w", "g1", ""), wf::lease_lost_error);
  CHECK(f.records("g1").empty());
  CHECK(f.state("g1")->epoch == 2);
}

TEST_CASE("recover resumes the unfinished workflows of a restarted runner") {
  auto open = shared_data(WF_EACH_STORE);
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  auto start = [p](wf::runtime& rt) {
    register_chain(rt, p);
    const auto input = chain_input({"A", "B"});
    for (int i = 0; i < 3; ++i)
      asio::co_spawn(rt.get_executor(), rt.execute("chain", numbered("g", i), input), asio::detached);
  };
  REQUIRE(wf::testing::run_until_crash(open(), 6, {.executor_id = "svc"}, start));
  auto store = open();
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "svc"});
  register_chain(rt, p);
  const auto resumed = run(io, rt.recover());
  CHECK(resumed == 3);
  io.restart();
  io.run();
  for (int i = 0; i < 3; ++i) CHECK(run(io, store->find(numbered("g", i)))->status == wf::workflow_status::succeeded);
  CHECK(log.effects().size() == 6);
}

TEST_CASE("another runner waits for a live lease and cannot recover what it does not own") {
  auto store = make_store(WF_EACH_STORE);
  asio::io_context io;
  wf::runtime owner(io.get_executor(), store, {.executor_id = "owner"});
  wf::runtime other(io.get_executor(), store, {.executor_id = "other", .lease_duration = std::chrono::milliseconds(100)});
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  register_chain(owner, p);
  register_chain(other, p);
  p->answer("A/action", "tt");
  std::optional<wf::outcome> from_other;
  asio::co_spawn(io, owner.execute("chain", "g1", chain_input({"A"})), asio::detached);
  const auto input = chain_input({"A"});
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    const auto resumed = co_await other.recover();
    CHECK(resumed == 0);
    from_other = co_await other.execute("chain", "g1", input);
  }, asio::detached);
  io.run();
  REQUIRE(from_other);
  CHECK(from_other->result == "done:A/action");
  CHECK(run(io, store->find("g1"))->owner == "owner");
}

namespace {
// A store whose claim_resumable pages overlap (it ignores `after`): recover()
// must still claim nothing that runs here already.
struct overlapping_pages final : wf::store_wrapper {
  using wf::store_wrapper::store_wrapper;
  asio::awaitable<std::vector<wf::claim_result>> claim_resumable(wf::claim_request request) override {
    request.after.clear();
    co_return co_await wf::store_wrapper::claim_resumable(std::move(request));
  }
};
}  // namespace

TEST_CASE("recover claims each workflow once, in pages, even from a store whose pages overlap") {
  auto memory = std::make_shared<wf::memory_store>();
  auto store = std::make_shared<overlapping_pages>(memory);
  asio::io_context io;
  constexpr int count = 10;
  for (int i = 0; i < count; ++i) {
    wf::workflow_state s;
    s.gid = numbered("p", i);
    s.name = "parked";
    s.owner = "svc";  // a restarted runner's own
    s.lease_expires = wf::wall_clock::now() + std::chrono::seconds(30);
    run(io, memory->create(s));
  }
  wf::runtime rt(io.get_executor(), store, {.executor_id = "svc", .recovery_batch = 3});
  asio::steady_timer gate(io, asio::steady_timer::time_point::max());
  bool open = false;
  rt.register_workflow("parked", [&](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto wait = [&](const wf::branch_context&) -> asio::awaitable<void> {
      while (!open) {
        boost::system::error_code ec;
        co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    };
    co_await w.new_branch("Wait").run(wait);
  });
  CHECK(run(io, rt.recover()) == count);
  for (int i = 0; i < count; ++i) CHECK(memory->state(numbered("p", i))->epoch == 2);  // one claim each
  open = true;
  gate.cancel();
  for (int i = 0; i < count; ++i) CHECK(run(io, rt.execute("parked", numbered("p", i), "")).succeeded());
}

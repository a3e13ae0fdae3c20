// The three kinds of error at work: bugs stop a workflow as stuck after one
// call (and resume() runs it again once fixed), a custom classification, a
// write in doubt that must not orphan its workflow, and a deadline driven on
// a manual clock.
#include "support.hpp"

#include <wf/http.hpp>

#include <chrono>
#include <functional>

using namespace wf_test;
using namespace std::chrono_literals;

namespace {

// A participant that can be "fixed": its action throws what `fault` throws
// until `fixed` is set, then succeeds.
struct fixable {
  int calls = 0;
  bool fixed = false;
  std::function<void()> fault;
};

// "fixable": branch A (the fake participant), then branch B (`f`).
void register_fixable(wf::runtime& rt, std::shared_ptr<fake_participant> p, std::shared_ptr<fixable> f) {
  rt.register_workflow(
      "fixable",
      [p, f](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const auto a = co_await w.new_branch("A").run(call_action(p));
        auto b_action = [f](const wf::branch_context&) -> asio::awaitable<std::string> {
          ++f->calls;
          co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          if (!f->fixed) f->fault();
          co_return "b-ok";
        };
        const auto b = co_await w.new_branch("B").run(b_action);
        co_return a + "," + b;
      },
      fast_retries());
}

// The journal's decision, if any.
std::optional<wf::journal_record> decision_of(const std::vector<wf::journal_record>& journal) {
  std::optional<wf::journal_record> d;
  for (const auto& r : journal)
    if (r.kind == wf::record_kind::decision) {
      REQUIRE_FALSE(d);  // one decision at most
      d = r;
    }
  return d;
}

struct fatal_config : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A service's own rule: its fatal_config is a bug; std::invalid_argument,
// which wf calls a bug, is transient here; the rest as wf says.
wf::error_kind service_classify(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const fatal_config&) {
    return wf::error_kind::bug;
  } catch (const std::invalid_argument&) {
    return wf::error_kind::transient;
  } catch (...) {
    return wf::classify(e);
  }
}

}  // namespace

// ---- bugs: stuck after one call, resumed once fixed

TEST_CASE("a logic_error thrown by an action makes the workflow stuck after one call; resume runs it again from its journal") {
  const auto kind = WF_EACH_STORE;
  const bool invalid_argument = GENERATE(false, true);
  const std::string what = invalid_argument ? "B: bad argument" : "B: broken invariant";
  fixture f{kind};
  auto b = std::make_shared<fixable>();
  b->fault = [invalid_argument, what] {
    if (invalid_argument) throw std::invalid_argument(what);
    throw std::logic_error(what);
  };
  register_fixable(f.rt, f.participant, b);
  const auto input = std::string("in");

  // The run that meets the bug throws it; nothing is retried.
  CHECK_THROWS_AS(f.execute("fixable", "g1", input), std::logic_error);
  CHECK(b->calls == 1);
  auto s = f.state("g1");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->attempts == 0);
  CHECK_THAT(s->result, Catch::Contains(what));
  CHECK_THROWS_AS(f.execute("fixable", "g1", input), wf::workflow_stuck_error);
  CHECK(b->calls == 1);

  // Fixed: resumed from its journal. A, journaled before, is not called again.
  b->fixed = true;
  CHECK(run(f.io, f.rt.resume("g1")));
  const auto out = f.execute("fixable", "g1", input);
  CHECK(out.succeeded());
  CHECK(out.result == "done:A/action,b-ok");
  CHECK(b->calls == 2);
  CHECK(f.participant->calls == std::vector<std::string>{"A/action"});
  CHECK(f.state("g1")->status == wf::workflow_status::succeeded);
}

TEST_CASE("a journaled result that does not decode as the branch's type makes the workflow stuck after one call") {
  fixture f{WF_EACH_STORE};
  auto calls = std::make_shared<int>(0);
  f.rt.register_workflow(
      "typed",
      [calls](wf::workflow& w, std::string) -> asio::awaitable<int> {
        // A participant answering "x" where the code expects a number.
        wf::raw_action answer_x = [calls](const wf::branch_context&) -> asio::awaitable<std::string> {
          ++*calls;
          co_return "x";
        };
        const auto bytes = co_await w.new_branch("N").run_bytes(answer_x);
        co_return wf::decode<int>(bytes) + 1;
      },
      fast_retries());
  CHECK_THROWS_AS(f.execute("typed", "g1", ""), wf::decode_error);
  CHECK(*calls == 1);
  const auto s = f.state("g1");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->attempts == 0);
  CHECK_THAT(s->result, Catch::Contains("not a number: 'x'"));
  // The result was journaled before it was decoded; resumed, it is replayed
  // (the participant is not asked again) and is a bug again.
  const auto journal = f.records("g1");
  REQUIRE(journal.size() == 1);
  CHECK(journal[0].payload == "x");
  CHECK(run(f.io, f.rt.resume("g1")));
  CHECK_THROWS_AS(f.execute("typed", "g1", ""), wf::decode_error);
  CHECK(*calls == 1);
  CHECK(f.state("g1")->status == wf::workflow_status::stuck);
}

TEST_CASE("runtime_options::classify can make an exception type a bug, and a bug a transient error") {
  const auto kind = WF_EACH_STORE;
  auto store = make_store(kind);
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "svc", .classify = service_classify});
  auto fatal_calls = std::make_shared<int>(0);
  auto arg_calls = std::make_shared<int>(0);
  rt.register_workflow(
      "fatal",
      [fatal_calls](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto action = [fatal_calls](const wf::branch_context&) -> asio::awaitable<std::string> {
          ++*fatal_calls;
          throw fatal_config("no such account configured");
          co_return "";
        };
        co_return co_await w.new_branch("F").run(action);
      },
      fast_retries());
  rt.register_workflow(
      "retried",
      [arg_calls](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto action = [arg_calls](const wf::branch_context&) -> asio::awaitable<std::string> {
          if (++*arg_calls <= 2) throw std::invalid_argument("not yet");
          co_return "ok";
        };
        co_return co_await w.new_branch("R").run(action);
      },
      fast_retries());

  CHECK_THROWS_AS(run(io, rt.execute("fatal", "f1", "")), fatal_config);
  CHECK(*fatal_calls == 1);
  auto s = run(io, store->find("f1"));
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK_THAT(s->result, Catch::Contains("no such account configured"));

  const auto out = run(io, rt.execute("retried", "r1", ""));
  CHECK(out.succeeded());
  CHECK(*arg_calls == 3);
  CHECK(run(io, store->find("r1"))->attempts == 2);
}

TEST_CASE("an HTTP branch to a malformed URL makes the workflow stuck, not retried") {
  fixture f{WF_EACH_STORE};
  auto client = std::make_shared<wf::http::client>(f.io.get_executor());
  auto runs = std::make_shared<int>(0);
  f.rt.register_workflow(
      "bad-url",
      [client, runs](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        ++*runs;
        // The URL is checked when the action is made, here in the workflow's
        // code: the std::invalid_argument escapes the code itself.
        auto call = client->action("not a url");
        co_return co_await w.new_branch("Call").run(call);
      },
      fast_retries());
  CHECK_THROWS_AS(f.execute("bad-url", "g1", ""), std::invalid_argument);
  CHECK(*runs == 1);
  const auto s = f.state("g1");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->attempts == 0);
  CHECK_FALSE(s->result.empty());
  CHECK(f.records("g1").empty());
  CHECK_THROWS_AS(f.execute("bad-url", "g1", ""), wf::workflow_stuck_error);
  CHECK(*runs == 1);
  CHECK(client->connections_opened() == 0);
}

// ---- a write in doubt

TEST_CASE("a branch's journal write in doubt on the last attempt ends the workflow, consistent with its journal") {
  const auto kind = WF_EACH_STORE;
  auto base = make_store(kind);
  asio::io_context io;
  // Write 1 creates the workflow, write 2 journals A's outcome: applied, then reported as failed.
  auto crashing = std::make_shared<wf::testing::crashing_store>(
      base, wf::testing::crashing_store::plan{wf::testing::fault::in_doubt, wf::testing::fault_point::write, 2});
  wf::runtime rt(io.get_executor(), crashing, {.executor_id = "me"});
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  auto options = fast_retries();
  options.retry.max_attempts = 1;
  register_chain(rt, p, options);

  const auto out = run(io, rt.execute("chain", "g1", chain_input({"A", "B"})));
  CHECK(crashing->faulted());
  // That attempt counts; it was the last: the workflow closes, on the journal
  // as it was re-read (A's outcome is there), and rolls back.
  CHECK(out.status == wf::workflow_status::failed);
  CHECK_THAT(out.reason, Catch::Contains("retries exhausted after 1 attempt(s)"));
  const auto s = run(io, base->find("g1"));
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::failed);
  // The journal: A's outcome (once), the rollback decision, then the
  // compensations, A's last. (B, which a closing run cannot know was never
  // called, is compensated too: the barrier makes that a null compensation.)
  const auto journal = run(io, base->journal("g1"));
  REQUIRE(journal.size() >= 3);
  CHECK(journal[0].kind == wf::record_kind::branch);
  CHECK(journal[0].name == "A");
  CHECK(journal[1].kind == wf::record_kind::decision);
  CHECK(journal[1].failed);
  CHECK(journal.back().kind == wf::record_kind::rollback);
  CHECK(journal.back().name == "A");
  CHECK(std::count(p->calls.begin(), p->calls.end(), "A/action") == 1);
  CHECK(std::count(p->calls.begin(), p->calls.end(), "B/action") == 0);
  CHECK(effects(log) == std::vector<std::string>{"A/action", "A/rollback"});
}

TEST_CASE("a journal write in doubt at any point never leaves the workflow running") {
  const auto kind = WF_EACH_STORE;
  auto options = fast_retries();
  options.retry.max_attempts = 1;
  const auto input = chain_input({"A", "B"}, true, true);
  // The writes of an uninterrupted run.
  std::size_t writes = 0;
  {
    asio::io_context io;
    auto counting = std::make_shared<wf::testing::crashing_store>(make_store(kind), 0);
    wf::runtime rt(io.get_executor(), counting);
    wf::testing::effect_log log;
    register_chain(rt, std::make_shared<fake_participant>(log), options);
    REQUIRE(run(io, rt.execute("chain", "g", input)).succeeded());
    writes = counting->writes();
  }
  REQUIRE(writes == 8);  // create, A, B, decision, 2 commits, 2 finishes
  for (std::size_t n = 2; n <= writes; ++n) {
    INFO("write " << n << " in doubt");
    auto base = make_store(kind);
    asio::io_context io;
    auto crashing = std::make_shared<wf::testing::crashing_store>(
        base, wf::testing::crashing_store::plan{wf::testing::fault::in_doubt, wf::testing::fault_point::write, n});
    wf::runtime rt(io.get_executor(), crashing, {.executor_id = "me"});
    wf::testing::effect_log log;
    register_chain(rt, std::make_shared<fake_participant>(log), options);
    std::exception_ptr error;
    std::optional<wf::outcome> out;
    try {
      out = run(io, rt.execute("chain", "g", input));
    } catch (...) {
      error = std::current_exception();
    }
    CHECK_FALSE(error);
    CHECK(crashing->faulted());
    const auto s = run(io, base->find("g"));
    REQUIRE(s);
    CHECK(s->finished());
    const auto d = decision_of(run(io, base->journal("g")));
    REQUIRE(d);
    CHECK(s->status == (d->failed ? wf::workflow_status::failed : wf::workflow_status::succeeded));
    if (out) CHECK(out->status == s->status);
  }
}

// ---- the deadline, on a manual clock

TEST_CASE("a workflow failing transiently rolls back once its deadline has passed on the clock, not before") {
  auto clock = std::make_shared<wf::testing::manual_clock>();
  auto store = std::make_shared<wf::memory_store>(clock);
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "me", .clock = clock});
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  p->answer("B/action", "T");  // transient, forever
  wf::workflow_options options;
  options.timeout = 1h;
  options.retry.initial_interval = 1min;
  options.retry.max_interval = 10min;
  register_chain(rt, p, options);

  const auto created = clock->now();
  const auto deadline = created + 1h;
  std::optional<wf::outcome> out;
  std::optional<wf::wall_clock::time_point> ended_at;
  asio::co_spawn(io, rt.execute("chain", "g1", chain_input({"A", "B"})), [&](std::exception_ptr e, wf::outcome o) {
    REQUIRE_FALSE(e);
    out = o;
    ended_at = clock->now();
  });
  // Run what is ready, then move the clock a minute; no real time passes.
  int steps = 0;
  for (; steps < 1000 && !out; ++steps) {
    io.poll();
    if (out) break;
    REQUIRE(clock->waiting() == 1);  // the backoff is all it waits for
    clock->advance(1min);
  }
  REQUIRE(out);
  CHECK(out->status == wf::workflow_status::failed);
  CHECK_THAT(out->reason, Catch::Contains("deadline exceeded"));
  REQUIRE(ended_at);
  CHECK(*ended_at >= deadline);
  // At the first transient error past the deadline: at most one backoff later.
  CHECK(*ended_at <= deadline + options.retry.max_interval);
  CHECK(store->state("g1")->deadline == deadline);
  // A ran once, was compensated once; B was tried at each attempt until then.
  const auto b_calls = std::count(p->calls.begin(), p->calls.end(), "B/action");
  CHECK(b_calls == static_cast<long>(store->state("g1")->attempts));
  CHECK(std::count(p->calls.begin(), p->calls.end(), "A/action") == 1);
  CHECK(std::count(p->calls.begin(), p->calls.end(), "A/rollback") == 1);
}

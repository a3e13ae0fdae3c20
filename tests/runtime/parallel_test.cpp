// Parallel branches (wf::when_all): operation and branch ids in argument
// order whatever the completion order; outcomes journaled in completion
// order and replayed each to its own operation; a failure while others are
// in flight; compensation, commit and finish handlers in reverse completion
// order; misuse; group commit. (Under faults: parallel_crash_test.cpp.)
//
// Completion order is the test's, never the scheduler's: actions wait on
// gates that open once every action expected in flight has been called, and
// then one after the other, each once the outcome before it is durable (seen
// through a store wrapper).
#include "parallel_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

using namespace wf_test;
using namespace wf_test::parallel;

// ---- 1, 2: ids in argument order, outcomes in completion order

TEST_CASE("branches started with when_all are in flight together and get ids in argument order whatever order they complete in") {
  const std::string kind = WF_EACH_STORE;
  const auto order = permutation_of_abc(GENERATE(range(0, 6)));
  INFO("store " << kind << ", completion order " << show(order));
  // Each action waits until all three have been called: run one at a time, they would never end.
  par_process proc(make_store(kind), 3, order);
  register_three(proc.rt, proc.p);

  const auto out = proc.execute("three", "ids");
  REQUIRE(out.succeeded());
  CHECK(out.result == "r:A,r:B,r:C");  // results in argument order
  CHECK(proc.p->finished == order);
  CHECK(proc.p->branch_ids == std::map<std::string, std::string>{{"A", "01"}, {"B", "02"}, {"C", "03"}});
  const auto ops = operations(proc.records("ids"));
  REQUIRE(ops.size() == 3);
  CHECK(ops.at("A").op == 1);
  CHECK(ops.at("A").branch == 1);
  CHECK(ops.at("B").op == 2);
  CHECK(ops.at("B").branch == 2);
  CHECK(ops.at("C").op == 3);
  CHECK(ops.at("C").branch == 3);
}

TEST_CASE("the journal holds parallel outcomes in completion order") {
  const std::string kind = WF_EACH_STORE;
  const auto order = permutation_of_abc(GENERATE(range(0, 6)));
  INFO("store " << kind << ", completion order " << show(order));
  par_process proc(make_store(kind), 3, order);
  register_three(proc.rt, proc.p);

  REQUIRE(proc.execute("three", "order").succeeded());
  const auto journal = proc.records("order");
  CHECK(outcome_order(journal) == order);
  // Each outcome was a write of its own, then the decision. The first write
  // carried, before that outcome, the commands of the two still in flight
  // (pending, by operation id); their outcomes came as completions.
  REQUIRE(journal.size() == 6);
  std::vector<std::string> still_running{order[1], order[2]};
  std::sort(still_running.begin(), still_running.end());
  CHECK(pending_commands(journal) == still_running);
  CHECK(journal[0].pending);
  CHECK(journal[1].pending);
  CHECK(journal[2].name == order[0]);
  CHECK(journal[2].kind == wf::record_kind::branch);
  CHECK_FALSE(journal[2].pending);
  CHECK(journal[3].kind == wf::record_kind::completion);
  CHECK(journal[3].name == order[1]);
  CHECK(journal[4].kind == wf::record_kind::completion);
  CHECK(journal[4].name == order[2]);
  CHECK(journal[4].payload == "r:" + order[2]);
  CHECK(journal[5].kind == wf::record_kind::decision);
  CHECK(journal[5].in_flight.empty());
}

TEST_CASE("replay after a crash returns each parallel branch its own outcome") {
  const std::string kind = WF_EACH_STORE;
  const std::vector<std::string> order{"C", "A", "B"};
  auto open = shared_data(kind);

  // The uninterrupted run's writes: the creation, three outcomes, the decision.
  std::size_t writes = 0;
  {
    par_process reference(make_store(kind), 3, order);
    register_three(reference.rt, reference.p);
    REQUIRE(reference.execute("three", "reference").succeeded());
    writes = reference.crashing->writes();
  }
  REQUIRE(writes == 5);

  {
    // Dies at the decision: the three outcomes are durable, in completion order.
    par_process first(open(), 3, order, writes);
    register_three(first.rt, first.p);
    asio::co_spawn(first.io, first.rt.execute("three", "crash", ""), asio::detached);
    first.io.run_for(std::chrono::seconds(20));
    REQUIRE(first.crashing->crashed());
    CHECK(first.p->finished == order);
  }
  par_process second(open(), 0, {});
  register_three(second.rt, second.p);
  auto journal = second.records("crash");
  CHECK(outcome_order(journal) == order);
  auto recover_then_execute = [](wf::runtime& rt) -> asio::awaitable<wf::outcome> {
    co_await rt.recover();
    co_return co_await rt.execute("three", "crash", "");
  };
  const auto out = run_bounded(second.io, recover_then_execute(second.rt));
  REQUIRE(out.succeeded());
  CHECK(out.result == "r:A,r:B,r:C");  // each operation got its own recorded result
  CHECK(second.p->calls.empty());      // nothing was called again
}

// ---- 3: a business failure while other branches are in flight

TEST_CASE("a business failure while branches are in flight awaits them, then compensates every completed branch, latest completion first") {
  const std::string kind = WF_EACH_STORE;
  // A completes, B fails while C and D are in flight; then D, then C complete.
  par_process proc(make_store(kind), 4, {"A", "B", "D", "C"});
  proc.p->refuse = {"B"};
  register_group(proc.rt, proc.p, handlers{true, false, true, std::nullopt});

  const auto out = proc.execute("group", "fail", group_input({"A", "B", "C", "D"}));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "B refused");
  // Never abandoned: C and D ran to their end after B's failure, and were journaled.
  CHECK(proc.p->finished == std::vector<std::string>{"A", "B", "D", "C"});
  const auto journal = proc.records("fail");
  CHECK(outcome_order(journal) == std::vector<std::string>{"A", "B", "D", "C"});
  CHECK(operations(journal).at("B").failed);
  const auto decision =
      std::find_if(journal.begin(), journal.end(), [](const auto& r) { return r.kind == wf::record_kind::decision; });
  REQUIRE(decision != journal.end());
  CHECK(decision->failed);
  CHECK(decision->in_flight.empty());
  CHECK(decision - journal.begin() == 7);  // after the four outcomes and the three commands A's write carried
  CHECK(pending_commands(journal) == std::vector<std::string>{"B", "C", "D"});
  // Compensated latest completion first; B, whose own action failed, is not.
  CHECK(proc.p->handler_calls("rollback") == std::vector<std::string>{"C", "D", "A"});
  CHECK(proc.p->handler_calls("finish") == std::vector<std::string>{"C", "D", "B", "A"});
  CHECK(proc.state("fail")->status == wf::workflow_status::failed);
}

TEST_CASE("the failed branch of a parallel group is compensated only when asked, per branch or per workflow") {
  const std::string kind = WF_EACH_STORE;
  struct variant {
    const char* label;
    bool workflow_default;
    std::optional<bool> branch;
    bool compensated;
  };
  const auto v = GENERATE(variant{"default", false, std::nullopt, false},
                          variant{"branch asks", false, true, true},
                          variant{"workflow asks", true, std::nullopt, true},
                          variant{"workflow asks, branch declines", true, false, false});
  INFO("store " << kind << ", " << v.label);
  par_process proc(make_store(kind), 3, {"A", "B", "C"});
  proc.p->refuse = {"B"};
  auto options = fast_retries();
  options.compensate_failed_branch = v.workflow_default;
  register_group(proc.rt, proc.p, {}, options);
  std::map<std::string, bool> per_branch;
  if (v.branch) per_branch["B"] = *v.branch;

  const auto out = proc.execute("group", "failed-branch", group_input({"A", "B", "C"}, false, per_branch));
  REQUIRE_FALSE(out.succeeded());
  const std::vector<std::string> expected =
      v.compensated ? std::vector<std::string>{"C", "B", "A"} : std::vector<std::string>{"C", "A"};
  CHECK(proc.p->handler_calls("rollback") == expected);
}

TEST_CASE("when a parallel group runs out of attempts, the branch in flight is compensated first, then the completed ones latest first") {
  const std::string kind = WF_EACH_STORE;
  // A completes, then C; B fails transiently every time, after A and C.
  par_process proc(make_store(kind), 0, {"A", "C", "B"});
  proc.p->unavailable = {"B"};
  auto options = fast_retries();
  options.retry.max_attempts = 2;
  register_group(proc.rt, proc.p, {}, options);

  const auto out = proc.execute("group", "exhausted", group_input({"A", "B", "C"}));
  REQUIRE_FALSE(out.succeeded());
  CHECK_THAT(out.reason, Catch::StartsWith("retries exhausted after 2 attempt(s)") &&
                             Catch::Contains("B unavailable"));
  // A and C were journaled in the first attempt and not called again.
  CHECK(proc.p->handler_calls("action") == std::vector<std::string>{"A", "B", "C", "B"});
  const auto journal = proc.records("exhausted");
  CHECK(outcome_order(journal) == std::vector<std::string>{"A", "C"});
  const auto decision =
      std::find_if(journal.begin(), journal.end(), [](const auto& r) { return r.kind == wf::record_kind::decision; });
  REQUIRE(decision != journal.end());
  CHECK(decision->in_flight == std::vector<std::uint32_t>{2});
  // B's outcome is unknown: its compensation goes first (a no-op at a barrier if the action never applied).
  CHECK(proc.p->handler_calls("rollback") == std::vector<std::string>{"B", "C", "A"});
}

TEST_CASE("a business failure beside a transient error in a parallel group waits for the unknown outcome before rolling back") {
  const std::string kind = WF_EACH_STORE;
  // A completes, B is refused, then C fails transiently (once): C's outcome is unknown.
  par_process proc(make_store(kind), 3, {"A", "B", "C"});
  proc.p->refuse = {"B"};
  proc.p->flaky = {{"C", 1}};
  register_group(proc.rt, proc.p);

  const auto out = proc.execute("group", "mixed-errors", group_input({"A", "B", "C"}));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "B refused");
  // The first run could not decide; the second replayed A and B and asked C again.
  CHECK(proc.p->handler_calls("action") == std::vector<std::string>{"A", "B", "C", "C"});
  CHECK(proc.state("mixed-errors")->attempts == 1);
  const auto journal = proc.records("mixed-errors");
  CHECK(outcome_order(journal) == std::vector<std::string>{"A", "B", "C"});
  // C completed (in the second run): compensated first.
  CHECK(proc.p->handler_calls("rollback") == std::vector<std::string>{"C", "A"});
}

// ---- 4: a branch started after another finished

namespace {

// A, then C once A's outcome is durable.
asio::awaitable<std::string> a_then_c(wf::workflow& w, std::shared_ptr<gated_participant> p) {
  auto a = branch_op(w, p, "A");
  std::string ra = co_await std::move(a);
  auto c = branch_op(w, p, "C");
  std::string rc = co_await std::move(c);
  co_return ra + "+" + rc;
}

// B in parallel with (A, then C); then a failing check.
void register_b_with_a_then_c(wf::runtime& rt, std::shared_ptr<gated_participant> p) {
  rt.register_workflow(
      "b_with_a_then_c",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto b = branch_op(w, p, "B");
        auto ac = a_then_c(w, p);
        auto r = co_await wf::when_all(std::move(b), std::move(ac));
        co_await w.step("Check", refused_check);
        co_return std::get<0>(r) + "," + std::get<1>(r);
      },
      fast_retries());
}

}  // namespace

TEST_CASE("a branch started after another finished is compensated before it") {
  const std::string kind = WF_EACH_STORE;
  // B is in flight throughout; A completes, then C starts and completes, then B.
  par_process proc(make_store(kind), 0, {"A", "C", "B"});
  register_b_with_a_then_c(proc.rt, proc.p);

  const auto out = proc.execute("b_with_a_then_c", "later");
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "check refused");
  CHECK(proc.p->calls[0] == "B/action");
  CHECK(proc.p->calls[1] == "A/action");
  CHECK(proc.p->calls[2] == "C/action");  // called after A had finished
  CHECK(proc.p->branch_ids == std::map<std::string, std::string>{{"A", "02"}, {"B", "01"}, {"C", "03"}});
  CHECK(outcome_order(proc.records("later")) == std::vector<std::string>{"A", "C", "B", "Check"});
  // Latest completion first: not the reverse of the start order (C, A, B).
  CHECK(proc.p->handler_calls("rollback") == std::vector<std::string>{"B", "C", "A"});
}

// ---- 5: commit and finish handlers

TEST_CASE("on_commit and on_finish handlers of parallel branches run in reverse completion order") {
  const std::string kind = WF_EACH_STORE;
  par_process proc(make_store(kind), 3, {"B", "C", "A"});
  register_three(proc.rt, proc.p, handlers{false, true, true, std::nullopt});

  const auto out = proc.execute("three", "commit");
  REQUIRE(out.succeeded());
  CHECK(proc.p->handler_calls("commit") == std::vector<std::string>{"A", "C", "B"});
  CHECK(proc.p->handler_calls("finish") == std::vector<std::string>{"A", "C", "B"});
  // Every commit handler before any finish handler.
  const auto& calls = proc.p->calls;
  CHECK(calls == std::vector<std::string>{"A/action", "B/action", "C/action", "A/commit", "C/commit", "B/commit",
                                          "A/finish", "C/finish", "B/finish"});
}

// ---- 6: the vector form, and mixed operations

TEST_CASE("when_all over a vector of ten branches gives results and ids in order, outcomes in completion order") {
  const std::string kind = WF_EACH_STORE;
  std::vector<std::string> names;
  for (int i = 1; i <= 10; ++i) names.push_back("P" + std::to_string(i));
  const std::vector<std::string> order{"P7", "P3", "P10", "P1", "P5", "P9", "P2", "P8", "P4", "P6"};
  par_process proc(make_store(kind), 10, order);
  register_group(proc.rt, proc.p);

  const auto out = proc.execute("group", "ten", group_input(names));
  REQUIRE(out.succeeded());
  std::string expected;
  for (const auto& n : names) expected += (expected.empty() ? "" : ",") + ("r:" + n);
  CHECK(out.result == expected);
  CHECK(proc.p->finished == order);
  const auto journal = proc.records("ten");
  CHECK(outcome_order(journal) == order);
  const auto ops = operations(journal);
  for (std::uint32_t i = 1; i <= 10; ++i) {
    const auto& n = names[i - 1];
    INFO(n);
    CHECK(ops.at(n).op == i);
    CHECK(ops.at(n).branch == i);
    char id[8];
    std::snprintf(id, sizeof id, "%02u", static_cast<unsigned>(i));
    CHECK(proc.p->branch_ids.at(n) == id);
  }
}

namespace {

// A branch, a step and a recorded value in one when_all.
void register_mixed(wf::runtime& rt, std::shared_ptr<gated_participant> p) {
  rt.register_workflow(
      "mixed",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto a = branch_op(w, p, "A");
        auto s = w.step("S", seven);
        auto v = w.record("R", [] { return 42; });
        auto r = co_await wf::when_all(std::move(a), std::move(s), std::move(v));
        co_return std::get<0>(r) + "/" + std::to_string(std::get<1>(r)) + "/" + std::to_string(std::get<2>(r));
      },
      fast_retries());
}

}  // namespace

TEST_CASE("a branch, a step and a recorded value run together in one when_all") {
  const std::string kind = WF_EACH_STORE;
  auto open = shared_data(kind);
  {
    par_process proc(open(), 0, {});
    register_mixed(proc.rt, proc.p);
    const auto out = proc.execute("mixed", "mixed");
    REQUIRE(out.succeeded());
    CHECK(out.result == "r:A/7/42");
    const auto ops = operations(proc.records("mixed"));
    REQUIRE(ops.size() == 3);
    CHECK(ops.at("A").kind == wf::record_kind::branch);
    CHECK(ops.at("A").op == 1);
    CHECK(ops.at("A").branch == 1);
    CHECK(ops.at("S").kind == wf::record_kind::step);
    CHECK(ops.at("S").op == 2);
    CHECK(ops.at("S").branch == 2);
    CHECK(ops.at("R").kind == wf::record_kind::value);
    CHECK(ops.at("R").op == 3);
    CHECK(ops.at("R").branch == 0);
  }
  // Replayed from the journal (a finished gid: its stored outcome), in another process.
  par_process again(open(), 0, {});
  register_mixed(again.rt, again.p);
  CHECK(again.execute("mixed", "mixed").result == "r:A/7/42");
  CHECK(again.p->calls.empty());
}

// ---- 9: misuse

namespace {

asio::awaitable<std::string> run_again(wf::workflow::branch& b, wf::raw_action action) {
  co_return co_await b.run(action);
}

}  // namespace

TEST_CASE("running one branch object twice, the second time while the first is in flight, makes the workflow stuck with a logic_error") {
  const std::string kind = WF_EACH_STORE;
  par_process proc(make_store(kind), 0, {});
  proc.rt.register_workflow("twice", [p = proc.p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto b = w.new_branch("A");
    wf::raw_action action = [p](const wf::branch_context& c) { return p->action(c); };
    auto first = b.run(action);
    auto again = run_again(b, action);
    auto r = co_await wf::when_all(std::move(first), std::move(again));
    co_return std::get<0>(r);
  });
  const std::string message = "wf: branch 'A' was run twice; make a new one with new_branch()";
  try {
    proc.execute("twice", "twice");
    FAIL("the workflow ran");
  } catch (const wf::workflow_stuck_error& e) {
    FAIL("the first run should throw the logic_error itself, got workflow_stuck_error: " << e.what());
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == message);
  }
  // The first run of A was awaited, not abandoned; A was called once.
  CHECK(proc.p->calls == std::vector<std::string>{"A/action"});
  CHECK(proc.p->finished == std::vector<std::string>{"A"});
  const auto s = proc.state("twice");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->result == message);
  // Nothing corrupt: at most one record of A, and no decision.
  const auto journal = proc.records("twice");
  CHECK(std::count_if(journal.begin(), journal.end(), [](const auto& r) { return r.name == "A"; }) <= 1);
  CHECK(std::none_of(journal.begin(), journal.end(),
                     [](const auto& r) { return r.kind == wf::record_kind::decision; }));
  CHECK_THROWS_AS(proc.execute("twice", "twice"), wf::workflow_stuck_error);
}

TEST_CASE("a workflow& used from a thread that does not run the runtime's executor is refused with a logic_error; the workflow is stuck, nothing called") {
  const std::string kind = WF_EACH_STORE;
  par_process proc(make_store(kind), 0, {});
  asio::thread_pool elsewhere(1);
  proc.rt.register_workflow("foreign", [p = proc.p, &elsewhere](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    wf::raw_action action = [p](const wf::branch_context& c) { return p->action(c); };
    // A coroutine of another executor (a thread pool's) uses the workflow.
    // It hands back the error's text, not the exception: libstdc++'s
    // exceptions share their message through reference counts that
    // ThreadSanitizer does not see, so an exception thrown on one thread and
    // read on another would be reported as a race in the test itself.
    auto use_it = [&w, action]() -> asio::awaitable<std::string> {
      try {
        co_await w.step_bytes("S", action);
      } catch (const std::logic_error& e) {
        co_return std::string(e.what());
      }
      co_return std::string();
    };
    auto there = asio::co_spawn(elsewhere.get_executor(), use_it(), asio::use_awaitable);
    const std::string refused = co_await std::move(there);
    if (refused.empty()) co_return "the step ran";
    throw std::logic_error(refused);  // ends the workflow's code: stuck
  });
  const std::string message =
      "wf: workflow 'foreign' (gid 'foreign') was used from a thread that is not running its runtime's executor; "
      "use a wf::workflow& only in the workflow's coroutine and the coroutines it awaits";
  try {
    proc.execute("foreign", "foreign");
    FAIL("the workflow ran");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == message);  // what the foreign coroutine got, rethrown by the workflow
  }
  elsewhere.join();
  CHECK(proc.p->calls.empty());
  const auto s = proc.state("foreign");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->result == message);
  CHECK(proc.records("foreign").empty());
}

TEST_CASE("a parallel branch with an empty name makes the workflow stuck with an invalid_argument, its sibling awaited") {
  const std::string kind = WF_EACH_STORE;
  par_process proc(make_store(kind), 0, {});
  proc.rt.register_workflow("unnamed", [p = proc.p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto a = branch_op(w, p, "A");
    auto unnamed = branch_op(w, p, "");
    auto r = co_await wf::when_all(std::move(a), std::move(unnamed));
    co_return std::get<0>(r);
  });
  const std::string message = "wf: the name of a branch is empty";
  try {
    proc.execute("unnamed", "unnamed");
    FAIL("the workflow ran");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == message);
  }
  CHECK_THROWS_AS(proc.execute("unnamed", "unnamed"), wf::workflow_stuck_error);
  CHECK(proc.p->calls == std::vector<std::string>{"A/action"});  // the unnamed one was never called
  CHECK(proc.p->finished == std::vector<std::string>{"A"});
  const auto s = proc.state("unnamed");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->result == message);
}

// ---- 10: group commit of outcomes that arrive together

TEST_CASE("ten parallel branches finishing together cost at most three journal writes on PostgreSQL") {
  WF_REQUIRE_DATABASE();
  std::vector<std::string> names;
  for (int i = 1; i <= 10; ++i) names.push_back("P" + std::to_string(i));
  // One gate, opened when the tenth is called: all ten end together.
  par_process proc(make_store("postgres"), 10, {});
  register_group(proc.rt, proc.p);
  const auto out = proc.execute("group", "together", group_input(names));
  REQUIRE(out.succeeded());
  CHECK(proc.p->finished.size() == 10);
  INFO("commit() calls: " << proc.observed->commits << ", with outcomes: " << proc.observed->outcome_commits);
  CHECK(proc.observed->outcome_commits <= 3);
  CHECK(outcome_order(proc.records("together")).size() == 10);
}

// The crash-test helper users run on their own workflows, tested on ours.
#include "support.hpp"

using namespace wf_test;

TEST_CASE("the effect log filters requests the way a barrier does") {
  wf::testing::effect_log log;
  auto ctx = [](std::string_view branch, std::string_view op) { return wf::branch_context{"g", branch, op, "x"}; };
  CHECK(log.apply(ctx("01", "action"), "a1"));
  CHECK_FALSE(log.apply(ctx("01", "action"), "a1 again"));  // duplicate
  CHECK(log.apply(ctx("01", "rollback"), "r1"));
  CHECK_FALSE(log.apply(ctx("02", "rollback"), "r2"));      // null compensation
  CHECK_FALSE(log.apply(ctx("02", "action"), "a2"));        // hanging action, blocked
  REQUIRE(log.effects().size() == 2);
  CHECK(log.effects()[1].what == "r1");
}

TEST_CASE("the crash test crashes at every write of a correct workflow and finds nothing") {
  auto t = chain_crash_test(WF_EACH_STORE, chain_input({"A", "B"}, true, true));
  t.renewal_faults = true;  // on every store (elsewhere on the memory store only)
  auto r = wf::testing::check_crash_recovery(t);
  INFO(r.describe());
  CHECK(r.ok());
  // create, A, B, decision, 2 commits, 2 finishes (the last one with the final status)
  CHECK(r.journal_writes == 8);
  // Each write refused, in doubt, and fenced by a takeover (but the creation:
  // there is nothing to take over before it); then the same three at a lease
  // renewal during each write but the creation.
  CHECK(r.crash_points == 3 * 8 - 1 + 3 * 7);
  CHECK(r.reference.succeeded());
  CHECK(r.reference_effects.size() == 6);
}

TEST_CASE("the crash test reports a workflow whose code is not deterministic") {
  wf::testing::crash_test t;
  t.workflow = "flaky";
  t.setup = [](wf::testing::effect_log& log) {
    auto p = std::make_shared<fake_participant>(log);
    auto runs = std::make_shared<int>(0);
    return std::function<void(wf::runtime&)>([p, runs](wf::runtime& rt) {
      rt.register_workflow("flaky", [p, runs](wf::workflow& w, std::string) -> asio::awaitable<void> {
        // Wrong: the branch name depends on how often the code ran.
        const auto name = "A" + std::to_string((*runs)++);
        co_await w.new_branch(name).run(call_action(p));
        co_await w.new_branch("B").run(call_action(p));
      });
    });
  };
  auto r = wf::testing::check_crash_recovery(t);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.describe(), Catch::Contains("non-determinism"));
}

TEST_CASE("the crash test reports effects that a resumed run loses") {
  wf::testing::crash_test t;
  t.workflow = "forgetful";
  t.setup = [](wf::testing::effect_log& log) {
    auto p = std::make_shared<fake_participant>(log);
    auto runs = std::make_shared<int>(0);
    return std::function<void(wf::runtime&)>([p, runs](wf::runtime& rt) {
      rt.register_workflow("forgetful", [p, runs](wf::workflow& w, std::string) -> asio::awaitable<void> {
        // Wrong: a side effect outside any branch, skipped when the code runs again.
        if ((*runs)++ == 0) co_return;
        co_await w.new_branch("late").run(call_action(p));
      });
    });
  };
  auto r = wf::testing::check_crash_recovery(t);
  CHECK_FALSE(r.ok());
}

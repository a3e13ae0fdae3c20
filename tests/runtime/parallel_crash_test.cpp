// Parallel branches under faults: wf::testing::check_crash_recovery over
// parallel workflows (every journal write refused, in doubt, or fenced by a
// takeover), and a crash at every write with several branches in flight:
// those whose outcome is journaled are not called again, those in flight are.
//
// No gates here (a resumed run calls only some branches): the completion
// order is fixed by each action's number of asynchronous hops.
#include "parallel_support.hpp"

using namespace wf_test;
using namespace wf_test::parallel;

// ---- 7: wf::testing::check_crash_recovery over parallel workflows

namespace {

/// A participant for crash tests: no gates (a resumed run calls only some
/// branches), completion order fixed by each action's number of asynchronous
/// hops. Effects go to the crash test's effect log: "A/action", "A/rollback"...
struct hop_participant {
  explicit hop_participant(wf::testing::effect_log& l) : log(l) {}
  wf::testing::effect_log& log;
  std::map<std::string, int> hops;  ///< hops an action takes (default 1)
  std::set<std::string> refuse;
  std::set<std::string> unavailable;  ///< actions that fail transiently, every time
  /// Record in the log when called, not when done (then calls() is every action called).
  bool record_on_call = false;

  asio::awaitable<std::string> action(const wf::branch_context& c) {
    const std::string name(c.name);
    if (record_on_call) log.apply(c, name + "/action");
    const auto h = hops.find(name);
    const int n = h == hops.end() ? 1 : h->second;
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < n; ++i) co_await asio::post(ex, asio::use_awaitable);
    if (refuse.count(name)) throw wf::failure(name + " refused");
    if (unavailable.count(name)) throw std::runtime_error(name + " unavailable");
    if (!record_on_call) log.apply(c, name + "/action");
    co_return "r:" + name;
  }
  asio::awaitable<void> handler(const wf::branch_context& c) {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    log.apply(c, std::string(c.name) + "/" + std::string(c.op));
  }
};

asio::awaitable<std::string> hop_branch(wf::workflow& w, const std::shared_ptr<hop_participant>& p,
                                        const std::string& name, const handlers& h) {
  auto b = w.new_branch(name);
  wf::handler handler = [p](const wf::branch_context& c) { return p->handler(c); };
  if (h.rollback) b.on_rollback(handler);
  if (h.commit) b.on_commit(handler);
  if (h.finish) b.on_finish(handler);
  wf::raw_action action = [p](const wf::branch_context& c) { return p->action(c); };
  return b.run(action);
}

asio::awaitable<std::string> hop_a_then_c(wf::workflow& w, std::shared_ptr<hop_participant> p, handlers h) {
  auto a = hop_branch(w, p, "A", h);
  std::string ra = co_await std::move(a);
  auto c = hop_branch(w, p, "C", h);
  std::string rc = co_await std::move(c);
  co_return ra + "+" + rc;
}

/// The parallel shapes, on a hop participant:
///  "par_commit": A, B, C in parallel (completing B, C, A), committed, with commit and finish handlers;
///  "par_fail":   A, B, C, D in parallel; B fails while C and D are in flight; rollback and finish handlers;
///  "par_nested": B in parallel with (A, then C), completing B, A, C; then a failing check;
///  "par_mixed":  a branch, a step and a recorded value in one when_all, then a branch;
///  "par_exhausted": A, B, C in parallel, at most 2 attempts (B may fail transiently every time).
void register_hop_workflows(wf::runtime& rt, std::shared_ptr<hop_participant> p) {
  auto two_attempts = fast_retries();
  two_attempts.retry.max_attempts = 2;
  rt.register_workflow(
      "par_exhausted",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, false, true, std::nullopt};
        auto a = hop_branch(w, p, "A", h);
        auto b = hop_branch(w, p, "B", h);
        auto c = hop_branch(w, p, "C", h);
        auto r = co_await wf::when_all(std::move(a), std::move(b), std::move(c));
        co_return std::get<0>(r);
      },
      two_attempts);
  rt.register_workflow(
      "par_commit",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, true, true, std::nullopt};
        auto a = hop_branch(w, p, "A", h);
        auto b = hop_branch(w, p, "B", h);
        auto c = hop_branch(w, p, "C", h);
        auto r = co_await wf::when_all(std::move(a), std::move(b), std::move(c));
        co_return std::get<0>(r) + "," + std::get<1>(r) + "," + std::get<2>(r);
      },
      fast_retries());
  rt.register_workflow(
      "par_fail",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, false, true, std::nullopt};
        std::vector<asio::awaitable<std::string>> ops;
        for (const char* n : {"A", "B", "C", "D"}) ops.push_back(hop_branch(w, p, n, h));
        auto r = co_await wf::when_all(std::move(ops));
        co_return r.front();
      },
      fast_retries());
  rt.register_workflow(
      "par_nested",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, false, false, std::nullopt};
        auto b = hop_branch(w, p, "B", h);
        auto ac = hop_a_then_c(w, p, h);
        auto r = co_await wf::when_all(std::move(b), std::move(ac));
        co_await w.step("Check", refused_check);
        co_return std::get<0>(r);
      },
      fast_retries());
  rt.register_workflow(
      "par_mixed",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, true, false, std::nullopt};
        auto a = hop_branch(w, p, "A", h);
        auto s = w.step("S", seven);
        auto v = w.uuid();
        auto r = co_await wf::when_all(std::move(a), std::move(s), std::move(v));
        auto e = hop_branch(w, p, "E", h);
        const std::string re = co_await std::move(e);
        co_return std::get<0>(r) + "/" + std::to_string(std::get<1>(r)) + "/" + std::get<2>(r) + "/" + re;
      },
      fast_retries());
}

wf::testing::crash_test_result crash_check_parallel(const std::string& kind, const std::string& workflow,
                                                    std::map<std::string, int> hops, std::set<std::string> refuse = {},
                                                    std::set<std::string> unavailable = {}) {
  wf::testing::crash_test t;
  t.workflow = workflow;
  t.gid = "par-crash";
  t.make_store = store_per_run(kind);
  // Off for now: under LeakSanitizer, a renewal fault in a parallel group
  // leaves a torn-down "process" alive (indirect leaks only: a reference
  // cycle through its coroutine frames, not found yet).
  t.renewal_faults = false;
  t.run_limit = std::chrono::seconds(10);
  t.setup = [hops, refuse, unavailable](wf::testing::effect_log& log) {
    auto p = std::make_shared<hop_participant>(log);
    p->hops = hops;
    p->refuse = refuse;
    p->unavailable = unavailable;
    return std::function<void(wf::runtime&)>([p](wf::runtime& rt) { register_hop_workflows(rt, p); });
  };
  return wf::testing::check_crash_recovery(t);
}

std::vector<std::string> whats(const std::vector<wf::testing::effect_log::effect>& effects) {
  std::vector<std::string> out;
  for (const auto& e : effects) out.push_back(e.what);
  return out;
}

}  // namespace

TEST_CASE("parallel branches that commit survive a fault at every journal write") {
  const std::string kind = WF_EACH_STORE;
  auto r = crash_check_parallel(kind, "par_commit", {{"A", 5}, {"B", 1}, {"C", 3}});
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.reference.succeeded());
  CHECK(r.reference.result == "r:A,r:B,r:C");
  CHECK(whats(r.reference_effects) == std::vector<std::string>{"B/action", "C/action", "A/action", "A/commit",
                                                                "C/commit", "B/commit", "A/finish", "C/finish",
                                                                "B/finish"});
  CHECK(r.crash_points > 0);
}

TEST_CASE("a parallel group failing with branches in flight survives a fault at every journal write") {
  const std::string kind = WF_EACH_STORE;
  auto r = crash_check_parallel(kind, "par_fail", {{"A", 1}, {"B", 3}, {"C", 7}, {"D", 5}}, {"B"});
  INFO(r.describe());
  CHECK(r.ok());
  CHECK_FALSE(r.reference.succeeded());
  CHECK(r.reference.reason == "B refused");
  CHECK(whats(r.reference_effects) == std::vector<std::string>{"A/action", "D/action", "C/action", "C/rollback",
                                                                "D/rollback", "A/rollback", "C/finish", "D/finish",
                                                                "B/finish", "A/finish"});
}

TEST_CASE("a branch started after another finished, with one in parallel, survives a fault at every journal write") {
  const std::string kind = WF_EACH_STORE;
  // B completes before A, so the completion order B, A, C holds in every run.
  auto r = crash_check_parallel(kind, "par_nested", {{"B", 1}, {"A", 3}, {"C", 2}});
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.reference.reason == "check refused");
  CHECK(whats(r.reference_effects) == std::vector<std::string>{"B/action", "A/action", "C/action", "C/rollback",
                                                                "A/rollback", "B/rollback"});
}

TEST_CASE("a parallel group that runs out of attempts with a branch in flight survives a fault at every journal write") {
  const std::string kind = WF_EACH_STORE;
  auto r = crash_check_parallel(kind, "par_exhausted", {{"A", 1}, {"B", 5}, {"C", 3}}, {}, {"B"});
  INFO(r.describe());
  CHECK(r.ok());
  CHECK_THAT(r.reference.reason, Catch::StartsWith("retries exhausted after 2 attempt(s)"));
  // B's compensation is sent first; its action never applied, so it has no effect (as at a barrier).
  CHECK(whats(r.reference_effects) == std::vector<std::string>{"A/action", "C/action", "C/rollback", "A/rollback",
                                                                "B/finish", "C/finish", "A/finish"});
}

TEST_CASE("a branch, a step and a recorded value in one when_all survive a fault at every journal write") {
  const std::string kind = WF_EACH_STORE;
  auto r = crash_check_parallel(kind, "par_mixed", {{"A", 3}});
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.reference.succeeded());
  CHECK_THAT(r.reference.result, Catch::StartsWith("r:A/7/<value of operation 3>/r:E"));
}

// ---- 8: a crash with several branches in flight

namespace {

// Four branches in parallel (hops 1, 2, 4, 8: they complete in turn), then one more.
void register_loop_workflow(wf::runtime& rt, std::shared_ptr<hop_participant> p) {
  rt.register_workflow(
      "par_loop",
      [p](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        const handlers h{true, true, false, std::nullopt};
        std::vector<asio::awaitable<std::string>> ops;
        for (const char* n : {"A", "B", "C", "D"}) ops.push_back(hop_branch(w, p, n, h));
        auto r = co_await wf::when_all(std::move(ops));
        auto e = hop_branch(w, p, "E", h);
        const std::string re = co_await std::move(e);
        co_return r[0] + r[1] + r[2] + r[3] + re;
      },
      fast_retries());
}

std::shared_ptr<hop_participant> loop_participant(wf::testing::effect_log& log) {
  auto p = std::make_shared<hop_participant>(log);
  p->hops = {{"A", 1}, {"B", 2}, {"C", 4}, {"D", 8}};
  p->record_on_call = true;
  return p;
}

std::string branch_text(std::uint32_t b) {
  char id[8];
  std::snprintf(id, sizeof id, "%02u", static_cast<unsigned>(b));
  return id;
}

}  // namespace

TEST_CASE("a crash with several branches in flight resumes correctly: completed ones are not called again, those in flight are") {
  const std::string kind = WF_EACH_STORE;
  const std::string gid = "par-loop";
  const std::string expected_result = "r:Ar:Br:Cr:Dr:E";

  std::size_t writes = 0;
  {
    wf::testing::effect_log log;
    asio::io_context io;
    auto counting = std::make_shared<wf::testing::crashing_store>(make_store(kind));
    wf::runtime rt(io.get_executor(), counting, runner_options());
    register_loop_workflow(rt, loop_participant(log));
    const auto out = run_bounded(io, rt.execute("par_loop", gid, ""));
    REQUIRE(out.succeeded());
    REQUIRE(out.result == expected_result);
    writes = counting->writes();
  }
  REQUIRE(writes >= 4);

  bool some_journaled_some_in_flight = false;
  bool some_pending_in_flight = false;
  for (std::size_t n = 1; n <= writes; ++n) {
    INFO("store " << kind << ", crash at journal write " << n << " of " << writes);
    auto open = shared_data(kind);
    wf::testing::effect_log log;
    auto p = loop_participant(log);

    {  // The process that dies at write n.
      asio::io_context io;
      auto crashing = std::make_shared<wf::testing::crashing_store>(open(), n, [&io] { io.stop(); });
      {
        wf::runtime rt(io.get_executor(), crashing, runner_options());
        register_loop_workflow(rt, p);
        asio::co_spawn(io, rt.execute("par_loop", gid, ""), asio::detached);
        io.run_for(std::chrono::seconds(20));
      }
      REQUIRE(crashing->crashed());
      crashing->detach();
    }
    const auto first_calls = log.calls();

    // What survived: the branches whose outcome is journaled, and those
    // journaled as started (pending) with no outcome.
    std::set<std::string> journaled, pending;
    {
      asio::io_context io;
      auto s = open();
      for (const auto& r : run(io, s->journal(gid))) {
        if (r.kind == wf::record_kind::branch && r.pending) pending.insert(branch_text(r.branch));
        if ((r.kind == wf::record_kind::branch && !r.pending) || r.kind == wf::record_kind::completion)
          journaled.insert(branch_text(r.branch));
      }
    }
    std::set<std::string> called;
    for (const auto& c : first_calls)
      if (c.op == "action") called.insert(c.branch_id);
    std::set<std::string> in_flight;
    for (const auto& b : called)
      if (!journaled.count(b)) in_flight.insert(b);
    if (!in_flight.empty() && !journaled.empty()) some_journaled_some_in_flight = true;
    // The journal's in-flight set (started, no outcome) is the branches called
    // and not journaled, less those whose start no write had carried yet.
    for (const auto& b : pending) {
      if (journaled.count(b)) continue;
      CHECK(in_flight.count(b) == 1);
      if (!journaled.empty()) some_pending_in_flight = true;
    }

    {  // The restarted process resumes it.
      asio::io_context io;
      wf::runtime rt(io.get_executor(), open(), runner_options());
      register_loop_workflow(rt, p);
      auto recover_then_execute = [](wf::runtime& r, std::string g) -> asio::awaitable<wf::outcome> {
        co_await r.recover();
        co_return co_await r.execute("par_loop", g, "");
      };
      const auto out = run_bounded(io, recover_then_execute(rt, gid));
      REQUIRE(out.succeeded());
      CHECK(out.result == expected_result);
    }
    const auto all_calls = log.calls();
    std::multiset<std::string> called_again;
    std::set<std::string> called_again_of_first;
    for (std::size_t i = first_calls.size(); i < all_calls.size(); ++i) {
      const auto& c = all_calls[i];
      if (c.op != "action") continue;
      called_again.insert(c.branch_id);
      if (called.count(c.branch_id)) called_again_of_first.insert(c.branch_id);
      CHECK_FALSE(journaled.count(c.branch_id));  // a journaled outcome is never asked again
    }
    CHECK(called_again_of_first == in_flight);  // every branch in flight is asked again
    for (const auto& b : called_again) CHECK(called_again.count(b) == 1);
    // Every branch applied exactly once in the end.
    std::vector<std::string> effects_done;
    for (const auto& e : log.effects())
      if (e.op == "action") effects_done.push_back(e.branch_id);
    CHECK(effects_done.size() == 5);
  }
  CHECK(some_journaled_some_in_flight);
  CHECK(some_pending_in_flight);  // some crash left a branch journaled as started, without its outcome
}


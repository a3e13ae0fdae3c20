// Parallel branches (wf::when_all): operation and branch ids in argument
// order whatever the completion order; outcomes journaled in completion
// order and replayed each to its own operation; a failure while others are
// in flight; compensation, commit and finish handlers in reverse completion
// order; crashes with branches in flight; misuse.
//
// Completion order is the test's, never the scheduler's: actions wait on
// gates that open once every action expected in flight has been called, and
// then one after the other, each once the outcome before it is durable (seen
// through a store wrapper).
#include "support.hpp"

#include <wf/when_all.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <numeric>
#include <set>
#include <tuple>

using namespace wf_test;

namespace {

/// Coroutines of one io_context wait on it until it opens; then it stays open.
class gate {
 public:
  explicit gate(asio::any_io_executor ex) : timer_(std::move(ex), asio::steady_timer::time_point::max()) {}
  bool is_open() const noexcept { return open_; }
  void open() {
    open_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (!open_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  bool open_ = false;
};

bool is_operation(wf::record_kind k) {
  return k == wf::record_kind::branch || k == wf::record_kind::step || k == wf::record_kind::value;
}

/// Sees the records of every journal write the store accepted, and counts
/// the commit() calls.
class observed_store final : public wf::store_wrapper {
 public:
  using wf::store_wrapper::store_wrapper;

  /// Called, on the writer's executor, for each record of each accepted write, in order.
  std::function<void(const wf::journal_record&)> on_record;
  std::size_t commits = 0;          ///< commit() calls
  std::size_t outcome_commits = 0;  ///< those that carried an operation's outcome

  asio::awaitable<std::vector<wf::write_status>> commit(std::vector<wf::write> writes) override {
    ++commits;
    bool outcome = false;
    for (const auto& w : writes)
      for (const auto& r : w.records) outcome = outcome || is_operation(r.kind);
    if (outcome) ++outcome_commits;
    const auto copy = writes;
    auto statuses = co_await wf::store_wrapper::commit(std::move(writes));
    for (std::size_t i = 0; i < copy.size() && i < statuses.size(); ++i)
      if (statuses[i] == wf::write_status::ok && on_record)
        for (const auto& r : copy[i].records) on_record(r);
    co_return statuses;
  }
};

/// A participant whose actions are held by gates. Each action waits until
/// `together` actions have been called (so they were all in flight at once;
/// 0: no such wait), then for its turn in `order`: the first of `order` goes
/// at once, each next one once the outcome of the one before it is journaled
/// (`journaled`). An action not in `order` ends after one asynchronous hop.
/// Result: "r:<name>"; a name in `refuse` fails with wf::failure.
struct gated_participant {
  gated_participant(asio::any_io_executor ex, std::size_t together, std::vector<std::string> order)
      : executor(ex), together_(together), all_called_(ex), order_(std::move(order)) {
    if (together_ == 0) all_called_.open();
    if (!order_.empty()) turn(order_.front()).open();
  }

  asio::any_io_executor executor;
  std::set<std::string> refuse;
  std::set<std::string> unavailable;              ///< actions that fail transiently, every time
  std::map<std::string, int> flaky;               ///< actions that fail transiently the first n times
  std::vector<std::string> calls;                 ///< "A/action", "A/rollback"... in call order
  std::map<std::string, std::string> branch_ids;  ///< name -> the branch id its action was called with
  std::vector<std::string> finished;              ///< actions that ended (returned or refused), in order

  asio::awaitable<std::string> action(const wf::branch_context& c) {
    const std::string name(c.name);
    calls.push_back(name + "/action");
    branch_ids[name] = std::string(c.branch_id);
    if (++actions_called_ == together_) all_called_.open();
    co_await all_called_.wait();
    if (std::find(order_.begin(), order_.end(), name) != order_.end())
      co_await turn(name).wait();
    else
      co_await asio::post(executor, asio::use_awaitable);
    finished.push_back(name);
    if (refuse.count(name)) throw wf::failure(name + " refused");
    if (unavailable.count(name)) throw std::runtime_error(name + " unavailable");
    if (auto f = flaky.find(name); f != flaky.end() && f->second > 0) {
      --f->second;
      throw std::runtime_error(name + " unavailable for now");
    }
    co_return "r:" + name;
  }

  asio::awaitable<void> handler(const wf::branch_context& c) {
    calls.push_back(std::string(c.name) + "/" + std::string(c.op));
    co_await asio::post(executor, asio::use_awaitable);
  }

  /// A record became durable: the next in `order` may go once its predecessor's outcome is.
  void journaled(const wf::journal_record& r) {
    if (!is_operation(r.kind) || next_ >= order_.size() || r.name != order_[next_]) return;
    if (++next_ < order_.size()) turn(order_[next_]).open();
  }

  /// The calls of `op` ("rollback", "commit", "finish"), as branch names, in order.
  std::vector<std::string> handler_calls(const std::string& op) const {
    std::vector<std::string> out;
    const std::string suffix = "/" + op;
    for (const auto& c : calls)
      if (c.size() > suffix.size() && c.compare(c.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(c.substr(0, c.size() - suffix.size()));
    return out;
  }

 private:
  gate& turn(const std::string& name) {
    auto& g = turns_[name];
    if (!g) g = std::make_unique<gate>(executor);
    return *g;
  }

  std::size_t together_;
  std::size_t actions_called_ = 0;
  gate all_called_;
  std::vector<std::string> order_;
  std::size_t next_ = 0;
  std::map<std::string, std::unique_ptr<gate>> turns_;
};

/// Runs `a` on `io` until it completes (at most 20 s: a gate that never
/// opens fails the test instead of hanging it) and returns its value.
template <class T>
T run_bounded(asio::io_context& io, asio::awaitable<T> a) {
  struct result {
    std::optional<T> value;
    std::exception_ptr error;
    bool done = false;
  };
  auto r = std::make_shared<result>();
  asio::co_spawn(io, std::move(a), [r, &io](std::exception_ptr e, T v) {
    if (e)
      r->error = e;
    else
      r->value = std::move(v);
    r->done = true;
    io.stop();
  });
  io.restart();
  io.run_for(std::chrono::seconds(20));
  io.restart();
  if (!r->done) FAIL("did not finish within 20 s (an action waits on a gate that never opens?)");
  if (r->error) std::rethrow_exception(r->error);
  return std::move(*r->value);
}

const char* const runner_id = "parallel-test-runner";

wf::runtime_options runner_options() {
  wf::runtime_options o;
  o.executor_id = runner_id;
  return o;
}

/// One "process": an io_context, a gated participant and a runtime over
/// `data`, seen through an observed store (which drives the participant's
/// turns) and a crashing store that refuses write `crash_at` (0: never) and
/// every later operation, stopping the io_context there.
struct par_process {
  par_process(std::shared_ptr<wf::store> data, std::size_t together, std::vector<std::string> order,
              std::size_t crash_at = 0)
      : observed(std::make_shared<observed_store>(std::move(data))),
        crashing(std::make_shared<wf::testing::crashing_store>(observed, crash_at, [this] { io.stop(); })),
        p(std::make_shared<gated_participant>(io.get_executor(), together, std::move(order))),
        rt(io.get_executor(), crashing, runner_options()) {
    observed->on_record = [p = p](const wf::journal_record& r) { p->journaled(r); };
  }
  ~par_process() { crashing->detach(); }

  asio::io_context io;
  std::shared_ptr<observed_store> observed;
  std::shared_ptr<wf::testing::crashing_store> crashing;
  std::shared_ptr<gated_participant> p;
  wf::runtime rt;

  wf::outcome execute(const std::string& name, const std::string& gid, const std::string& input = "") {
    return run_bounded(io, rt.execute(name, gid, input));
  }
  std::vector<wf::journal_record> records(const std::string& gid) { return run(io, observed->journal(gid)); }
  std::optional<wf::workflow_state> state(const std::string& gid) { return run(io, observed->find(gid)); }
};

/// Which handlers a branch registers.
struct handlers {
  bool rollback = true;
  bool commit = false;
  bool finish = false;
  std::optional<bool> compensate_on_failure;
};

/// The operation of branch `name` calling `p` (started when awaited, or by when_all).
asio::awaitable<std::string> branch_op(wf::workflow& w, const std::shared_ptr<gated_participant>& p,
                                       const std::string& name, const handlers& h = {}) {
  auto b = w.new_branch(name);
  wf::handler handler = [p](const wf::branch_context& c) { return p->handler(c); };
  if (h.rollback) b.on_rollback(handler);
  if (h.commit) b.on_commit(handler);
  if (h.finish) b.on_finish(handler);
  if (h.compensate_on_failure) b.compensate_on_failure(*h.compensate_on_failure);
  wf::raw_action action = [p](const wf::branch_context& c) { return p->action(c); };
  return b.run(action);
}

asio::awaitable<std::string> refused_check(const wf::branch_context&) {
  throw wf::failure("check refused");
  co_return "";
}

/// "three": A, B and C through the variadic when_all. Result: their results in order.
void register_three(wf::runtime& rt, std::shared_ptr<gated_participant> p, handlers h = {}) {
  rt.register_workflow(
      "three",
      [p, h](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto a = branch_op(w, p, "A", h);
        auto b = branch_op(w, p, "B", h);
        auto c = branch_op(w, p, "C", h);
        auto r = co_await wf::when_all(std::move(a), std::move(b), std::move(c));
        co_return std::get<0>(r) + "," + std::get<1>(r) + "," + std::get<2>(r);
      },
      fast_retries());
}

/// "group": the branches of the input {"branches":[...], "compensate":{"B":true},
/// "check_fails":bool} through the vector when_all, then (if asked) a step that
/// fails. Result: their results in order.
void register_group(wf::runtime& rt, std::shared_ptr<gated_participant> p, handlers h = {},
                    wf::workflow_options options = fast_retries()) {
  rt.register_workflow(
      "group",
      [p, h](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        const auto& o = in.as_object();
        std::vector<asio::awaitable<std::string>> ops;
        for (const auto& b : o.at("branches").as_array()) {
          const std::string name(b.as_string());
          handlers mine = h;
          if (const auto* c = o.if_contains("compensate"))
            if (const auto* v = c->as_object().if_contains(name)) mine.compensate_on_failure = v->as_bool();
          ops.push_back(branch_op(w, p, name, mine));
        }
        auto results = co_await wf::when_all(std::move(ops));
        if (const auto* f = o.if_contains("check_fails"); f && f->as_bool()) co_await w.step("Check", refused_check);
        std::string out;
        for (const auto& r : results) out += (out.empty() ? "" : ",") + r;
        co_return out;
      },
      std::move(options));
}

std::string group_input(const std::vector<std::string>& branches, bool check_fails = false,
                        std::map<std::string, bool> compensate = {}) {
  json::object o;
  json::array a;
  for (const auto& b : branches) a.emplace_back(b);
  o["branches"] = std::move(a);
  o["check_fails"] = check_fails;
  json::object c;
  for (const auto& [name, yes] : compensate) c[name] = yes;
  o["compensate"] = std::move(c);
  return json::serialize(o);
}

/// The operation records of a journal, by name.
std::map<std::string, wf::journal_record> operations(const std::vector<wf::journal_record>& journal) {
  std::map<std::string, wf::journal_record> out;
  for (const auto& r : journal)
    if (is_operation(r.kind)) out[r.name] = r;
  return out;
}

/// The names of the operation records, in journal order.
std::vector<std::string> outcome_order(const std::vector<wf::journal_record>& journal) {
  std::vector<std::string> out;
  for (const auto& r : journal)
    if (is_operation(r.kind)) out.push_back(r.name);
  return out;
}

/// The `n`-th permutation (0-based, lexicographic) of {"A","B","C"}.
std::vector<std::string> permutation_of_abc(int n) {
  std::vector<std::string> v{"A", "B", "C"};
  for (int i = 0; i < n; ++i) std::next_permutation(v.begin(), v.end());
  return v;
}

std::string show(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

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
  // Each outcome was a write of its own, then the decision.
  REQUIRE(journal.size() == 4);
  CHECK(journal[3].kind == wf::record_kind::decision);
  CHECK(journal[3].in_flight.empty());
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
  CHECK(decision - journal.begin() == 4);  // after the four outcomes
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

asio::awaitable<int> seven(const wf::branch_context&) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return 7;
}

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

    // What survived: the branches whose outcome is journaled.
    std::set<std::string> journaled;
    {
      asio::io_context io;
      auto s = open();
      for (const auto& r : run(io, s->journal(gid)))
        if (r.kind == wf::record_kind::branch) journaled.insert(branch_text(r.branch));
    }
    std::set<std::string> called;
    for (const auto& c : first_calls)
      if (c.op == "action") called.insert(c.branch_id);
    std::set<std::string> in_flight;
    for (const auto& b : called)
      if (!journaled.count(b)) in_flight.insert(b);
    if (!in_flight.empty() && !journaled.empty()) some_journaled_some_in_flight = true;

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

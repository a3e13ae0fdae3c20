// Helpers of the parallel-branch tests (parallel_test.cpp, parallel_crash_test.cpp):
// gates, a store wrapper that sees the journal writes, a participant whose
// actions complete in the order a test chooses, and the workflows they run.
#ifndef WF_TESTS_RUNTIME_PARALLEL_SUPPORT_HPP
#define WF_TESTS_RUNTIME_PARALLEL_SUPPORT_HPP

#include "support.hpp"

#include <wf/when_all.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <set>
#include <tuple>

namespace wf_test::parallel {

inline bool is_operation(wf::record_kind k) {
  return k == wf::record_kind::branch || k == wf::record_kind::step || k == wf::record_kind::value;
}

/// A record that holds an operation's outcome: a complete operation record,
/// or the completion of a pending one (not a pending one: that is a command alone).
inline bool is_outcome(const wf::journal_record& r) {
  return (is_operation(r.kind) && !r.pending) || r.kind == wf::record_kind::completion;
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
      for (const auto& r : w.records) outcome = outcome || is_outcome(r);
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
    if (!is_outcome(r) || next_ >= order_.size() || r.name != order_[next_]) return;
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

const char* const runner_id = "parallel-test-runner";

inline wf::runtime_options runner_options() {
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
inline asio::awaitable<std::string> branch_op(wf::workflow& w, const std::shared_ptr<gated_participant>& p,
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

inline asio::awaitable<std::string> refused_check(const wf::branch_context&) {
  throw wf::failure("check refused");
  co_return "";
}

/// "three": A, B and C through the variadic when_all. Result: their results in order.
inline void register_three(wf::runtime& rt, std::shared_ptr<gated_participant> p, handlers h = {}) {
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
inline void register_group(wf::runtime& rt, std::shared_ptr<gated_participant> p, handlers h = {},
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

inline std::string group_input(const std::vector<std::string>& branches, bool check_fails = false,
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

/// The operations of a journal, by name: each one's operation record, with
/// the outcome (`failed`, `payload`, and `seq` of the record that holds it)
/// of its completion if it was pending; `pending` stays set if it has none.
inline std::map<std::string, wf::journal_record> operations(const std::vector<wf::journal_record>& journal) {
  std::map<std::string, wf::journal_record> out;
  for (const auto& r : journal) {
    if (is_operation(r.kind)) out[r.name] = r;
    if (r.kind != wf::record_kind::completion) continue;
    auto& o = out[r.name];
    o.failed = r.failed;
    o.payload = r.payload;
    o.seq = r.seq;
    o.pending = false;
  }
  return out;
}

/// The names of the operations whose outcome the journal holds, in the order of those outcomes.
inline std::vector<std::string> outcome_order(const std::vector<wf::journal_record>& journal) {
  std::vector<std::string> out;
  for (const auto& r : journal)
    if (is_outcome(r)) out.push_back(r.name);
  return out;
}

/// The names of the operations journaled as pending (their commands written
/// apart from their outcomes), in journal order.
inline std::vector<std::string> pending_commands(const std::vector<wf::journal_record>& journal) {
  std::vector<std::string> out;
  for (const auto& r : journal)
    if (is_operation(r.kind) && r.pending) out.push_back(r.name);
  return out;
}

/// The `n`-th permutation (0-based, lexicographic) of {"A","B","C"}.
inline std::vector<std::string> permutation_of_abc(int n) {
  std::vector<std::string> v{"A", "B", "C"};
  for (int i = 0; i < n; ++i) std::next_permutation(v.begin(), v.end());
  return v;
}

inline std::string show(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

inline asio::awaitable<int> seven(const wf::branch_context&) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return 7;
}

}  // namespace wf_test::parallel

#endif  // WF_TESTS_RUNTIME_PARALLEL_SUPPORT_HPP

#include <wf/memory_store.hpp>
#include <wf/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <sstream>

namespace asio = boost::asio;

namespace wf::testing {

// ---- effect_log

bool effect_log::apply(const branch_context& call, std::string what) {
  std::lock_guard lock(mutex_);
  std::string gid(call.gid), branch(call.branch_id), op(call.op);
  calls_.push_back({gid, branch, op, what});
  if (!seen_.emplace(gid, branch, op).second) return false;  // duplicate, or blocked by a null compensation
  if (op == "rollback" && seen_.emplace(gid, branch, "action").second) return false;  // null compensation
  effects_.push_back({std::move(gid), std::move(branch), std::move(op), std::move(what)});
  return true;
}

std::vector<effect_log::effect> effect_log::effects() const {
  std::lock_guard lock(mutex_);
  return effects_;
}

std::vector<effect_log::effect> effect_log::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

// ---- crashing_store

crashing_store::crashing_store(std::shared_ptr<store> inner, plan p, std::function<void()> on_crash)
    : store_wrapper(std::move(inner)), plan_(std::move(p)), on_crash_(std::move(on_crash)) {}

crashing_store::crashing_store(std::shared_ptr<store> inner, std::size_t crash_at, std::function<void()> on_crash)
    : crashing_store(std::move(inner), plan{fault::refuse, fault_point::write, crash_at, {}}, std::move(on_crash)) {}

void crashing_store::check_alive() const {
  if (crashed_) throw injected_crash("wf::testing: the process has crashed");
}

void crashing_store::refuse(const std::string& what) {
  crashed_ = true;
  if (on_crash_) on_crash_();
  throw injected_crash("wf::testing: crash injected at " + what);
}

crashing_store::action crashing_store::next(fault_point p) {
  check_alive();
  const auto n = p == fault_point::write ? ++writes_ : p == fault_point::claim ? ++claims_ : ++renewals_;
  if (plan_.at == 0 || p != plan_.point) return action::go;
  // during_write: the first renewal while the write is held, whatever its number.
  if (plan_.during_write ? !held_ || faulted_ : n != plan_.at) return action::go;
  faulted_ = true;
  const char* kind = p == fault_point::write ? "write " : p == fault_point::claim ? "claim " : "renewal ";
  std::string what = kind + std::to_string(n);
  if (plan_.during_write) what += " (during write " + std::to_string(plan_.at) + ")";
  switch (plan_.kind) {
    case fault::refuse: refuse(what);
    case fault::in_doubt: return action::in_doubt;
    case fault::takeover: return action::takeover;
  }
  return action::go;
}

namespace {
[[noreturn]] void report_in_doubt(const char* what) {
  throw injected_crash(std::string("wf::testing: ") + what + " applied, then reported as failed (in doubt)");
}
}  // namespace

asio::awaitable<void> crashing_store::take_over(const std::string& gid) {
  // The runner's lease is live (it is writing), so a plain claim by another
  // runner would be refused as busy: first the lease is made to lapse (a
  // renewal for no time, as if the runner had stalled past its lease), then
  // the taker claims it.
  const auto state = co_await forward().find(gid);
  if (!state || state->finished()) co_return;
  if (!state->owner.empty() && state->owner != plan_.taker) {
    std::vector<std::string> gids(1, gid);
    co_await forward().renew(state->owner, std::move(gids), std::chrono::milliseconds(0));
  }
  co_await forward().claim(gid, plan_.taker, std::chrono::seconds(30));
}

asio::awaitable<create_result> crashing_store::create(workflow_state initial) {
  const auto a = next(fault_point::write);
  auto r = co_await forward().create(std::move(initial));
  if (a == action::in_doubt) report_in_doubt("a creation");
  if (a == action::takeover) faulted_ = false;  // nothing to take over before it exists
  co_return r;
}

asio::awaitable<void> crashing_store::hold_until_renewal() {
  held_ = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, plan_.hold_limit);
  held_a_write_ = true;
  const auto held = held_;
  boost::system::error_code ec;
  co_await held->async_wait(asio::redirect_error(asio::use_awaitable, ec));  // cancelled by the renewal
  held_.reset();
  check_alive();  // the renewal was refused: the process died with this write
}

void crashing_store::end_hold() noexcept {
  // Dropped here, not only when the held write resumes: if the process dies
  // now, the write's frame (which owns the timer too) must not be kept alive
  // by this store through the timer's pending wait, a cycle that leaks the
  // whole "process".
  if (held_) held_->cancel();
  held_.reset();
}

asio::awaitable<std::vector<write_status>> crashing_store::commit(std::vector<write> writes) {
  const auto first = writes_ + 1;
  // One fault at most per call: the first write of it that reaches the point.
  std::vector<action> actions;
  for (std::size_t i = 0; i < writes.size(); ++i) actions.push_back(next(fault_point::write));
  if (plan_.during_write && plan_.point == fault_point::renewal && !faulted_ && first <= plan_.at &&
      plan_.at <= writes_)
    co_await hold_until_renewal();
  const bool doubt = std::find(actions.begin(), actions.end(), action::in_doubt) != actions.end();
  for (std::size_t i = 0; i < writes.size(); ++i)
    if (actions[i] == action::takeover) co_await take_over(writes[i].gid);
  auto statuses = co_await forward().commit(std::move(writes));
  if (doubt) report_in_doubt("a journal write");
  co_return statuses;
}

asio::awaitable<claim_result> crashing_store::claim(std::string gid, std::string owner,
                                                    std::chrono::milliseconds lease) {
  const auto a = next(fault_point::claim);
  auto r = co_await forward().claim(std::move(gid), std::move(owner), lease);
  if (a == action::in_doubt) report_in_doubt("a claim");
  co_return r;
}

asio::awaitable<std::vector<claim_result>> crashing_store::claim_due(claim_request request) {
  const auto a = next(fault_point::claim);
  auto r = co_await store_wrapper::claim_due(std::move(request));
  if (a == action::in_doubt) report_in_doubt("a claim");
  co_return r;
}

asio::awaitable<std::vector<claim_result>> crashing_store::claim_resumable(claim_request request) {
  const auto a = next(fault_point::claim);
  auto r = co_await store_wrapper::claim_resumable(std::move(request));
  if (a == action::in_doubt) report_in_doubt("a claim");
  co_return r;
}

asio::awaitable<std::optional<workflow_state>> crashing_store::find(std::string gid) {
  check_alive();
  co_return co_await forward().find(std::move(gid));
}

asio::awaitable<std::vector<journal_record>> crashing_store::journal(std::string gid) {
  check_alive();
  co_return co_await forward().journal(std::move(gid));
}

asio::awaitable<std::vector<std::string>> crashing_store::renew(std::string owner, std::vector<std::string> gids,
                                                                std::chrono::milliseconds lease) {
  action a = action::go;
  try {
    a = next(fault_point::renewal);
  } catch (...) {
    end_hold();  // refused: the held write learns that the process died
    throw;
  }
  if (a == action::takeover && !gids.empty()) co_await take_over(gids.front());
  std::vector<std::string> lost;
  try {
    lost = co_await forward().renew(std::move(owner), std::move(gids), lease);
  } catch (...) {
    if (a != action::go) end_hold();
    throw;
  }
  if (a != action::go) end_hold();
  if (a == action::in_doubt) report_in_doubt("a lease renewal");
  co_return lost;
}

asio::awaitable<void> crashing_store::release(std::string owner, std::vector<std::string> gids) {
  check_alive();
  co_await forward().release(std::move(owner), std::move(gids));
}

// ---- run_until_crash

bool run_until_crash(std::shared_ptr<store> data, std::size_t crash_at, const runtime_options& options,
                     const std::function<void(runtime&)>& start, std::chrono::milliseconds limit) {
  asio::io_context io;
  auto crashing = std::make_shared<crashing_store>(std::move(data), crash_at, [&io] { io.stop(); });
  {
    runtime rt(io.get_executor(), crashing, options);
    start(rt);
    io.run_for(limit);
  }
  const bool crashed = crashing->crashed();
  // The store goes with its process, before the io_context its operations
  // complete on; the coroutine frames still holding it go with the io_context.
  crashing->detach();
  return crashed;
}

// ---- check_crash_recovery

namespace {

constexpr const char* default_runner = "crash-test-runner";

struct run_report {
  bool finished = false;
  bool lost = false;  // the process lost the workflow to another runner
  bool taken_over = false;  // the first process did
  outcome out;
  std::string error;  // what execute threw, if it did
  std::vector<effect_log::effect> effects;
  std::size_t writes = 0;
  bool crashed = false;
  bool faulted = false;
  bool held = false;  // a write was held for a renewal
};

// One "process": a runtime on a fresh io_context over `base`, seen through a
// store that injects `plan`. Returns once execute completes, the process
// dies, or the time limit passes; then the runtime, the io_context and every
// coroutine frame are destroyed, as in a killed process. `resume` calls
// recover() first, as a restarted service does. Store errors in doubt are
// retried as a caller would.
void one_process(const crash_test& test, const std::function<void(runtime&)>& registrar, std::shared_ptr<store> base,
                 crashing_store::plan plan, const std::string& executor_id, bool resume, run_report& report,
                 std::optional<std::chrono::milliseconds> lease = std::nullopt) {
  asio::io_context io;
  auto s = std::make_shared<crashing_store>(std::move(base), plan, [&io] { io.stop(); });
  runtime_options options = test.options;
  options.executor_id = executor_id;
  if (lease) options.lease_duration = *lease;
  {
    runtime rt(io.get_executor(), s, options);
    registrar(rt);
    auto process = [&]() -> asio::awaitable<void> {
      for (int tries = 0; resume && tries < 3; ++tries) {
        try {
          co_await rt.recover();
          break;
        } catch (const injected_crash&) {
          if (s->crashed()) co_return;
        }
      }
      for (int tries = 0; tries < 3; ++tries) {
        try {
          report.out = co_await rt.execute(test.workflow, test.gid, test.input);
          report.error.clear();
          break;
        } catch (const injected_crash& e) {
          if (s->crashed()) co_return;
          report.error = e.what();  // in doubt: ask again, as a caller would
        } catch (const lease_lost_error&) {
          report.lost = true;
          co_return;
        } catch (const std::exception& e) {
          report.error = e.what();
          break;
        }
      }
      report.finished = true;
      io.stop();
    };
    asio::co_spawn(io, process, asio::detached);
    io.run_for(test.run_limit);
  }
  if (!resume) {
    report.writes = s->writes();
    report.crashed = s->crashed();
    report.faulted = s->faulted();
    report.held = s->held_a_write();
  }
  if (s->crashed()) report.finished = false;
  // The store goes with its process, before the io_context its operations
  // complete on; the coroutine frames still holding `s` go with the io_context.
  s->detach();
}

// The recorded values of `gid` in `st` long enough to be told apart from
// other text (8 bytes or more), each with the operation that recorded it.
std::vector<std::pair<std::string, std::string>> recorded_values(const std::shared_ptr<store>& st,
                                                                 const std::string& gid) {
  asio::io_context io;
  std::vector<journal_record> journal;
  auto read = [&]() -> asio::awaitable<void> { journal = co_await st->journal(gid); };
  asio::co_spawn(io, read, asio::detached);
  io.run();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : journal)
    if (r.kind == record_kind::value && r.payload.size() >= 8)
      out.emplace_back(r.payload, "<value of operation " + std::to_string(r.op) + ">");
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return out;
}

std::string normalized(std::string text, const std::vector<std::pair<std::string, std::string>>& values,
                       const crash_test& test) {
  for (const auto& [value, name] : values)
    for (auto pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos + name.size()))
      text.replace(pos, value.size(), name);
  return test.normalize ? test.normalize(std::move(text)) : text;
}

struct scenario {
  std::string label;
  crashing_store::plan first;
  bool resume_as_taker = false;
  std::optional<std::chrono::milliseconds> lease{};  // the first process's, if not the test's
};

run_report run(const crash_test& test, std::size_t number, const scenario& sc) {
  run_report report;
  std::function<std::shared_ptr<store>()> open = [&test, number] { return test.make_store(number); };
  if (!test.make_store) open = [memory = std::make_shared<memory_store>()] { return memory; };
  effect_log log;
  auto registrar = test.setup(log);
  one_process(test, registrar, open(), sc.first, default_runner, false, report, sc.lease);
  report.taken_over = report.lost;
  if (report.crashed || report.lost) {
    // The resumed process: after a crash, the same runner restarting (its
    // first claim in doubt); after a takeover, the runner that took over.
    crashing_store::plan second{fault::in_doubt, fault_point::claim, sc.resume_as_taker ? 0u : 1u, {}};
    one_process(test, registrar, open(), second, sc.resume_as_taker ? sc.first.taker : default_runner, true, report);
  }
  auto values = recorded_values(open(), test.gid);
  for (auto e : log.effects()) {
    e.what = normalized(std::move(e.what), values, test);
    report.effects.push_back(std::move(e));
  }
  report.out.result = normalized(std::move(report.out.result), values, test);
  report.out.reason = normalized(std::move(report.out.reason), values, test);
  return report;
}

std::string show(const effect_log::effect& e) { return e.branch_id + "/" + e.op + " " + e.what; }

std::string show(const run_report& r) {
  if (!r.finished) return "did not finish";
  if (!r.error.empty()) return "error: " + r.error;
  return std::string(to_string(r.out.status)) + (r.out.succeeded() ? "" : " (" + r.out.reason + ")");
}

const char* fault_name(fault f) {
  switch (f) {
    case fault::refuse: return "refused";
    case fault::in_doubt: return "in doubt";
    case fault::takeover: return "fenced by a takeover";
  }
  return "";
}

}  // namespace

std::string crash_test_result::describe() const {
  std::ostringstream os;
  os << "crash test: " << journal_writes << " journal writes, " << crash_points << " fault points checked";
  if (journal_writes == 0) os << "; the uninterrupted run made no write";
  for (const auto& m : mismatches) os << "\n  " << m;
  return os.str();
}

crash_test_result check_crash_recovery(const crash_test& test) {
  crash_test_result result;
  auto reference = run(test, 0, scenario{"uninterrupted", {}, false});
  result.journal_writes = reference.writes;
  result.reference = reference.out;
  result.reference_effects = reference.effects;
  if (!reference.finished || !reference.error.empty()) {
    result.mismatches.push_back("uninterrupted run: " + show(reference));
    return result;
  }
  std::vector<scenario> scenarios;
  for (const auto kind : test.faults)
    for (std::size_t n = 1; n <= reference.writes; ++n)
      scenarios.push_back({"write " + std::to_string(n) + " " + fault_name(kind),
                           {kind, fault_point::write, n, "crash-test-taker"},
                           kind == fault::takeover});
  // Renewals while each write but the creation (nothing is held before it) is in flight.
  if (test.renewal_faults)
    for (const auto kind : test.faults)
      for (std::size_t n = 2; n <= reference.writes; ++n) {
        scenario sc{"a lease renewal during write " + std::to_string(n) + " " + fault_name(kind),
                    {kind, fault_point::renewal, n, "crash-test-taker"},
                    kind == fault::takeover,
                    test.renewal_lease};
        sc.first.during_write = true;
        scenarios.push_back(std::move(sc));
      }
  std::size_t number = 0;
  for (const auto& sc : scenarios) {
    const auto kind = sc.first.kind;
    auto r = run(test, ++number, sc);
    const std::string at = sc.label + ": ";
    if (!r.faulted) {
      // Nothing faulted: a takeover of the creation (nothing to take over
      // yet), or a run that made fewer writes than the uninterrupted one
      // (timing: a deadline). But a write held must see a renewal: the
      // runner renews what it holds.
      if (r.held) result.mismatches.push_back(at + "no lease renewal came while the write was held");
      continue;
    }
    ++result.crash_points;
    if (kind == fault::takeover && !r.taken_over) {
      result.mismatches.push_back(at + "the runner went on as if nothing had happened: its write was not fenced");
      continue;
    }
    if (!r.finished || !r.error.empty() || r.out.status != reference.out.status ||
        r.out.reason != reference.out.reason) {
      result.mismatches.push_back(at + show(r) + ", expected " + show(reference));
      continue;
    }
    if (test.compare_results && r.out.result != reference.out.result)
      result.mismatches.push_back(at + "result '" + r.out.result + "', expected '" + reference.out.result + "'");
    if (r.effects != reference.effects) {
      std::string got, want;
      for (const auto& e : r.effects) got += " [" + show(e) + "]";
      for (const auto& e : reference.effects) want += " [" + show(e) + "]";
      result.mismatches.push_back(at + "effects" + got + ", expected" + want);
    }
  }
  return result;
}

}  // namespace wf::testing

#include <wf/memory_store.hpp>
#include <wf/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <sstream>

namespace asio = boost::asio;

namespace wf::testing {

// ---- effect_log

bool effect_log::apply(const branch_context& call, std::string what) {
  std::lock_guard lock(mutex_);
  std::string gid(call.gid), branch(call.branch_id), op(call.op);
  if (!seen_.emplace(gid, branch, op).second) return false;  // duplicate, or blocked by a null compensation
  if (op == "rollback" && seen_.emplace(gid, branch, "action").second) return false;  // null compensation
  effects_.push_back({std::move(gid), std::move(branch), std::move(op), std::move(what)});
  return true;
}

std::vector<effect_log::effect> effect_log::effects() const {
  std::lock_guard lock(mutex_);
  return effects_;
}

// ---- crashing_store

namespace {
void throw_if_crashed(bool crashed) {
  if (crashed) throw injected_crash("wf::testing: the process has crashed");
}
}  // namespace

crashing_store::crashing_store(std::shared_ptr<store> inner, std::size_t crash_at, std::function<void()> on_crash)
    : inner_(std::move(inner)), crash_at_(crash_at), on_crash_(std::move(on_crash)) {}

void crashing_store::count_write() {
  throw_if_crashed(crashed_);
  ++writes_;
  if (writes_ == crash_at_) {
    crashed_ = true;
    if (on_crash_) on_crash_();
    throw injected_crash("wf::testing: crash injected at write " + std::to_string(writes_));
  }
}

asio::awaitable<create_result> crashing_store::create(workflow_state initial) {
  count_write();
  co_return co_await inner_->create(std::move(initial));
}

asio::awaitable<claim_result> crashing_store::claim(std::string gid, std::string owner,
                                                    std::chrono::milliseconds lease) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->claim(std::move(gid), std::move(owner), lease);
}

asio::awaitable<std::vector<write_status>> crashing_store::commit(std::vector<write> writes) {
  for (std::size_t i = 0; i < writes.size(); ++i) count_write();
  co_return co_await inner_->commit(std::move(writes));
}

asio::awaitable<std::vector<std::string>> crashing_store::renew(std::string owner, std::vector<std::string> gids,
                                                                std::chrono::milliseconds lease) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->renew(std::move(owner), std::move(gids), lease);
}

asio::awaitable<std::optional<workflow_state>> crashing_store::find(std::string gid) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->find(std::move(gid));
}

asio::awaitable<std::vector<journal_record>> crashing_store::journal(std::string gid) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->journal(std::move(gid));
}

asio::awaitable<std::vector<workflow_state>> crashing_store::runnable(std::string owner, std::size_t limit) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->runnable(std::move(owner), limit);
}

asio::awaitable<std::size_t> crashing_store::purge(wall_clock::time_point before) {
  throw_if_crashed(crashed_);
  co_return co_await inner_->purge(before);
}

// ---- check_crash_recovery

namespace {

struct run_report {
  bool finished = false;
  outcome out;
  std::string error;  // what execute threw, if it did
  std::vector<effect_log::effect> effects;
  std::size_t writes = 0;
  bool crashed = false;
};

// One "process": a runtime on a fresh io_context over `base`, seen through a
// store that crashes at write `crash_at` (0: never). Returns once execute
// completes, the store crashes, or the time limit passes; then the runtime,
// the io_context and every coroutine frame are destroyed, as in a killed
// process. `resume` calls recover() first, as a restarted service does.
void one_process(const crash_test& test, const std::function<void(runtime&)>& registrar,
                 std::shared_ptr<store> base, std::size_t crash_at, bool resume, run_report& report) {
  asio::io_context io;
  auto s = std::make_shared<crashing_store>(std::move(base), crash_at, [&io] { io.stop(); });
  runtime_options options = test.options;
  if (options.executor_id.empty()) options.executor_id = "crash-test-runner";
  {
    runtime rt(io.get_executor(), s, options);
    registrar(rt);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          try {
            if (resume) co_await rt.recover();
            report.out = co_await rt.execute(test.workflow, test.gid, test.input);
          } catch (const injected_crash&) {
            co_return;
          } catch (const std::exception& e) {
            report.error = e.what();
          }
          report.finished = true;
          io.stop();
        },
        asio::detached);
    io.run_for(test.run_limit);
  }
  const bool crashed = s->crashed();
  if (!resume) {
    report.writes = s->writes();
    report.crashed = crashed;
  }
  if (crashed) report.finished = false;
  // The store goes with its process, before the io_context its operations
  // complete on; the coroutine frames still holding `s` go with the io_context.
  s->detach();
}

run_report run(const crash_test& test, std::size_t crash_at) {
  run_report report;
  std::function<std::shared_ptr<store>()> open = [&test, crash_at] { return test.make_store(crash_at); };
  if (!test.make_store) open = [memory = std::make_shared<memory_store>()] { return memory; };
  effect_log log;
  auto registrar = test.setup(log);
  one_process(test, registrar, open(), crash_at, false, report);
  if (report.crashed) one_process(test, registrar, open(), 0, true, report);
  report.effects = log.effects();
  return report;
}

std::string show(const effect_log::effect& e) {
  return e.branch_id + "/" + e.op + " " + e.what;
}

std::string show(const run_report& r) {
  if (!r.finished) return "did not finish";
  if (!r.error.empty()) return "error: " + r.error;
  return std::string(to_string(r.out.status)) + (r.out.succeeded() ? "" : " (" + r.out.reason + ")");
}

}  // namespace

std::string crash_test_result::describe() const {
  std::ostringstream os;
  os << "crash test: " << journal_writes << " journal writes, " << crash_points << " crash points checked";
  if (journal_writes == 0) os << "; the uninterrupted run made no write";
  for (const auto& m : mismatches) os << "\n  " << m;
  return os.str();
}

crash_test_result check_crash_recovery(const crash_test& test) {
  crash_test_result result;
  auto reference = run(test, 0);
  result.journal_writes = reference.writes;
  result.reference = reference.out;
  result.reference_effects = reference.effects;
  if (!reference.finished || !reference.error.empty()) {
    result.mismatches.push_back("uninterrupted run: " + show(reference));
    return result;
  }
  for (std::size_t n = 1; n <= reference.writes; ++n) {
    auto r = run(test, n);
    ++result.crash_points;
    const std::string at = "crash at write " + std::to_string(n) + ": ";
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

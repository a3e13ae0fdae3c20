#include "scenarios.hpp"

#include "fake_bank.hpp"
#include "transfer_workflow.hpp"

#include <wf/memory_store.hpp>
#include <wf/runtime.hpp>
#include <wf/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

namespace asio = boost::asio;

namespace transfer {

namespace {

// The same id in every runtime of the example: a restarted process that keeps
// its executor id takes its own unfinished workflows back at once, instead of
// waiting for the dead process's leases (30 s by default) to expire.
const char* const executor_id = "transfer-example-runner";

// A bound on each run, so that a bug shows as a failed check, not a hang.
constexpr std::chrono::seconds run_limit{10};

// Journal writes of a transfer, as counted by crashing_store (create, and each
// write of a commit; see src/runtime/runtime.cpp and src/runtime/attempt.cpp):
//   1  execute() creates the workflow
//   2  TransOut's outcome              - after bank A applied TransOut
//   3  TransIn's outcome               - after bank B applied TransIn
//   4  the commit decision and final status (no handler runs on commit)
// Crashing at 3 leaves TransOut journaled and the workflow unfinished, with
// TransIn done at bank B but not journaled: the resumed run must send TransIn
// again (bank B's barrier ignores it) and must not send TransOut again.
constexpr std::size_t crash_at_write = 3;

// Two banks and a store: everything that outlives a "process".
struct world {
  std::shared_ptr<fake_bank> bank_a =
      std::make_shared<fake_bank>("bank A", std::map<std::string, std::int64_t>{{"alice", 100}});
  std::shared_ptr<fake_bank> bank_b =
      std::make_shared<fake_bank>("bank B", std::map<std::string, std::int64_t>{{"bob", 0}});
  std::shared_ptr<wf::memory_store> store = std::make_shared<wf::memory_store>();
};

struct process_report {
  std::optional<wf::outcome> outcome;
  std::string error;  // what execute or recover threw
  std::optional<std::size_t> recovered;
};

asio::awaitable<void> execute_transfer(wf::runtime& rt, std::string gid, boost::json::value input, bool recover_first,
                                       process_report& report) {
  try {
    if (recover_first) report.recovered = co_await rt.recover();
    report.outcome = co_await rt.execute(workflow_name, gid, input);
  } catch (const std::exception& e) {
    report.error = e.what();
  }
}

// One "process": a fresh io_context and runtime over the store `make_store`
// returns. Returns once the transfer finished, the io_context was stopped
// (a crash), or the time limit passed. The runtime and then the io_context,
// with every coroutine frame still waiting in it, are destroyed, as a killed
// process's would be; only the banks and the store remain.
process_report run_process(const world& w, const std::function<std::shared_ptr<wf::store>(asio::io_context&)>& make_store,
                           const std::string& gid, const boost::json::value& input, bool recover_first) {
  process_report report;
  asio::io_context io;
  {
    wf::runtime_options options;
    options.executor_id = executor_id;
    wf::runtime rt(io.get_executor(), make_store(io), options);
    register_transfer(rt, w.bank_a, w.bank_b);
    asio::co_spawn(io, execute_transfer(rt, gid, input, recover_first, report), asio::detached);
    io.run_for(run_limit);
  }
  return report;
}

// The store of a process that does not crash: the world's memory store itself.
auto plain_store(const world& w) {
  return [s = w.store](asio::io_context&) -> std::shared_ptr<wf::store> { return s; };
}

void print_balances(const world& w, const char* when) {
  std::printf("  balances %-9s alice %3lld (bank A)   bob %3lld (bank B)\n", when,
              static_cast<long long>(w.bank_a->balance("alice")), static_cast<long long>(w.bank_b->balance("bob")));
}

void print_journal(const world& w, const std::string& gid) {
  std::printf("  journal of %s:\n", gid.c_str());
  for (const auto& r : w.store->records(gid)) {
    std::string line = "    #" + std::to_string(r.seq) + " " + std::string(wf::to_string(r.kind)) + " " + r.name;
    if (r.branch != 0) line += " (branch " + std::string(r.branch < 10 ? "0" : "") + std::to_string(r.branch) + ")";
    if (r.failed) line += " failed: " + r.payload;
    std::printf("%s\n", line.c_str());
  }
}

std::string describe(const process_report& p) {
  if (!p.error.empty()) return "error: " + p.error;
  if (!p.outcome) return "did not finish";
  if (p.outcome->succeeded()) return "succeeded: " + p.outcome->result_as<std::string>();
  return "failed: " + p.outcome->reason;
}

// Records one expectation and prints it.
class checks {
 public:
  explicit checks(scenario_result& r) : result_(r) {}
  void expect(bool ok, const std::string& what) {
    std::printf("  check: %-64s %s\n", what.c_str(), ok ? "ok" : "FAILED");
    if (!ok) result_.failures.push_back(what);
  }
  void balances(const world& w, std::int64_t alice, std::int64_t bob) {
    expect(w.bank_a->balance("alice") == alice && w.bank_b->balance("bob") == bob,
           "alice has " + std::to_string(alice) + ", bob has " + std::to_string(bob));
  }

 private:
  scenario_result& result_;
};

scenario_result finish(scenario_result r, const std::string& summary) {
  r.passed = r.failures.empty();
  r.summary = summary;
  return r;
}

}  // namespace

scenario_result run_success_scenario() {
  scenario_result result{"success", false, {}, {}};
  checks check(result);
  std::printf("\n=== scenario 1: success - alice pays bob 30 ===\n");
  world w;
  const std::string gid = "transfer-success";
  const auto input = to_json({"alice", "bob", 30, false});
  print_balances(w, "before");
  const auto p = run_process(w, plain_store(w), gid, input, false);
  std::printf("  outcome: %s\n", describe(p).c_str());
  print_balances(w, "after");
  print_journal(w, gid);

  check.expect(p.outcome && p.outcome->succeeded(), "the workflow succeeded");
  check.balances(w, 70, 30);
  check.expect(w.bank_a->calls().size() == 1 && w.bank_b->calls().size() == 1, "each bank was called once");
  return finish(std::move(result), describe(p));
}

scenario_result run_rollback_scenario() {
  scenario_result result{"rollback", false, {}, {}};
  checks check(result);
  std::printf("\n=== scenario 2: rollback - the same transfer, told to fail at TransIn ===\n");
  world w;
  const std::string gid = "transfer-rollback";
  const auto input = to_json({"alice", "bob", 30, true});
  print_balances(w, "before");
  const auto p = run_process(w, plain_store(w), gid, input, false);
  std::printf("  outcome: %s\n", describe(p).c_str());
  print_balances(w, "after");
  print_journal(w, gid);

  check.expect(p.outcome && !p.outcome->succeeded() && p.outcome->reason.find("TransIn refused") != std::string::npos,
               "the workflow failed with TransIn's reason");
  check.balances(w, 100, 0);
  check.expect(w.bank_a->count(gid, "TransOutRevert", fake_bank::verdict::applied) == 1,
               "TransOutRevert gave the money back once");
  check.expect(w.bank_b->count(gid, "TransInRevert", fake_bank::verdict::applied) == 0,
               "TransIn, which changed nothing, was not compensated");
  return finish(std::move(result), describe(p));
}

scenario_result run_crash_scenario() {
  scenario_result result{"crash", false, {}, {}};
  checks check(result);
  std::printf("\n=== scenario 3: crash - the process dies after TransOut is journaled ===\n");
  world w;
  const std::string gid = "transfer-crash";
  const auto input = to_json({"alice", "bob", 30, false});
  print_balances(w, "before");

  std::printf("  -- process 1: execute, with the store refusing journal write %zu and all later ones\n",
              crash_at_write);
  std::shared_ptr<wf::testing::crashing_store> crashing;
  auto crash_store = [&](asio::io_context& io) -> std::shared_ptr<wf::store> {
    crashing = std::make_shared<wf::testing::crashing_store>(w.store, crash_at_write, [&io] {
      std::printf("  !! crash at journal write %zu: the process dies here\n", crash_at_write);
      io.stop();
    });
    return crashing;
  };
  const auto first = run_process(w, crash_store, gid, input, false);
  const auto journal_at_crash = w.store->records(gid);
  std::printf("  process 1 ended: %s, %zu journal write(s) attempted\n", describe(first).c_str(), crashing->writes());
  print_balances(w, "at crash");
  print_journal(w, gid);

  std::printf("  -- process 2: a fresh io_context and runtime, same executor id, recover() then execute()\n");
  const auto second = run_process(w, plain_store(w), gid, input, true);
  std::printf("  recover() resumed %zu workflow(s); outcome: %s\n", second.recovered.value_or(0),
              describe(second).c_str());
  print_balances(w, "after");
  print_journal(w, gid);

  check.expect(crashing->crashed() && crashing->writes() == crash_at_write && !first.outcome && first.error.empty(),
               "process 1 crashed at write " + std::to_string(crash_at_write) + " before finishing");
  check.expect(journal_at_crash.size() == 1 && journal_at_crash[0].name == "TransOut",
               "at the crash the journal held TransOut only");
  check.expect(second.recovered == std::size_t{1}, "recover() resumed the workflow");
  check.expect(second.outcome && second.outcome->succeeded(), "the resumed workflow succeeded");
  check.balances(w, 70, 30);
  check.expect(w.bank_a->count(gid, "TransOut", fake_bank::verdict::applied) == 1 && w.bank_a->calls().size() == 1,
               "TransOut was sent once and applied once");
  check.expect(w.bank_b->count(gid, "TransIn", fake_bank::verdict::applied) == 1,
               "TransIn was applied once (a re-sent copy has no effect)");
  return finish(std::move(result), "crashed at write " + std::to_string(crash_at_write) + ", recovered, " +
                                       describe(second));
}

}  // namespace transfer

// The behaviours of DTM's concurrent saga tests (dtm/test/saga_concurrent_test.go,
// and the concurrent cases of saga_grpc_test.go), ported to wf's parallel
// branches (wf::when_all) against real participants on loopback: the banks
// of examples/transfer (accounts in PostgreSQL, guarded by the barrier),
// over HTTP and gRPC, with the orchestrator's journal in either store.
//
// DTM's concurrent saga declares branch orders (AddBranchOrder); in wf the
// order is the code's: groups started with when_all, one after the other.
// Where DTM compensates every branch it started, the failed one included, wf
// (workflow mode) compensates the branches that completed, latest first; the
// failed one only when asked.
//
// The order in which the banks see the calls is imposed by gates on the
// orchestrator's side (a call waits for a gate before it is sent, or opens
// one once answered), never by timing.
//
// Needs PostgreSQL (WF_TEST_PG_URL, set by scripts/test); skipped without it.
#include "support.hpp"

#include "bank_world.hpp"

#include <wf/http.hpp>
#include <wf/when_all.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <mutex>

namespace {

using namespace wf_test;
using transfer::call_record;
using transfer::scripted;

const char* const runner_id = "dtm-saga-port-runner";

/// Who waits for whom, on the orchestrator's side. Calls are named
/// "<Method>:<account>", e.g. "TransOut:alice"; each makes the events
/// "<call> called", "<call> sent" (past its wait, to the bank), then
/// "<call> answered" or "<call> failed".
struct stage {
  explicit stage(asio::any_io_executor ex) : executor(std::move(ex)) {}

  asio::any_io_executor executor;
  /// Gate -> the events that open it once they have all happened.
  std::map<std::string, std::set<std::string>> meet;
  /// A call waits for this gate before it is sent.
  std::map<std::string, std::string> wait_before;
  /// A call waits for this gate after it was answered, before it returns.
  std::map<std::string, std::string> wait_after;
  /// Every event, in order.
  std::vector<std::string> events;

  gate& g(const std::string& name) {
    auto& p = gates_[name];
    if (!p) p = std::make_unique<gate>(executor);
    return *p;
  }

  void event(const std::string& e) {
    events.push_back(e);
    for (auto& [name, waiting] : meet)
      if (waiting.erase(e) && waiting.empty()) g(name).open();
  }

  /// Where `e` happened first (-1: never).
  std::ptrdiff_t position(const std::string& e) const {
    const auto it = std::find(events.begin(), events.end(), e);
    return it == events.end() ? -1 : it - events.begin();
  }

 private:
  std::map<std::string, std::unique_ptr<gate>> gates_;
};

/// A real bank, its calls held and released as `stage` says.
class staged_bank final : public transfer::bank {
 public:
  staged_bank(std::shared_ptr<transfer::bank> inner, std::shared_ptr<stage> s)
      : inner_(std::move(inner)), stage_(std::move(s)) {}

  asio::awaitable<void> trans_out(const wf::branch_context& c, transfer::bank_request r) override {
    co_await call("TransOut", c, std::move(r));
  }
  asio::awaitable<void> trans_out_revert(const wf::branch_context& c, transfer::bank_request r) override {
    co_await call("TransOutRevert", c, std::move(r));
  }
  asio::awaitable<void> trans_in(const wf::branch_context& c, transfer::bank_request r) override {
    co_await call("TransIn", c, std::move(r));
  }
  asio::awaitable<void> trans_in_revert(const wf::branch_context& c, transfer::bank_request r) override {
    co_await call("TransInRevert", c, std::move(r));
  }

 private:
  asio::awaitable<void> call(std::string method, const wf::branch_context& c, transfer::bank_request r) {
    const std::string key = method + ":" + r.account;
    stage_->event(key + " called");
    if (const auto it = stage_->wait_before.find(key); it != stage_->wait_before.end())
      co_await stage_->g(it->second).wait();
    stage_->event(key + " sent");
    std::exception_ptr error;
    try {
      if (method == "TransOut")
        co_await inner_->trans_out(c, r);
      else if (method == "TransOutRevert")
        co_await inner_->trans_out_revert(c, r);
      else if (method == "TransIn")
        co_await inner_->trans_in(c, r);
      else
        co_await inner_->trans_in_revert(c, r);
    } catch (...) {
      error = std::current_exception();
    }
    stage_->event(key + (error ? " failed" : " answered"));
    if (const auto it = stage_->wait_after.find(key); it != stage_->wait_after.end())
      co_await stage_->g(it->second).wait();
    if (error) std::rethrow_exception(error);
  }

  std::shared_ptr<transfer::bank> inner_;
  std::shared_ptr<stage> stage_;
};

/// The banks - bank-a holds alice (100) and carol (50), bank-b holds bob (0) -
/// and what these tests ask of their timeline.
struct banks_seen : bank_world {
  banks_seen() : bank_world({{"alice", 100}, {"carol", 50}}, {{"bob", 0}}) {}

  /// How many calls of `method` for `account` in `gid` had an outcome starting with `outcome`.
  int count(const std::string& gid, const std::string& method, const std::string& account,
            const std::string& outcome = "") {
    int n = 0;
    for (const auto& r : calls(gid))
      if (r.method == method && r.account == account && r.outcome.rfind(outcome, 0) == 0) ++n;
    return n;
  }
  /// Position in the timeline of `gid` of the first call of `method` for `account` whose outcome starts with `outcome`.
  std::ptrdiff_t at(const std::string& gid, const std::string& method, const std::string& account,
                    const std::string& outcome) {
    const auto c = calls(gid);
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i].method == method && c[i].account == account && c[i].outcome.rfind(outcome, 0) == 0)
        return static_cast<std::ptrdiff_t>(i);
    return -1;
  }
  /// The branch id the first call of `method` for `account` in `gid` carried.
  std::string branch_of(const std::string& gid, const std::string& method, const std::string& account) {
    for (const auto& r : calls(gid))
      if (r.method == method && r.account == account) return r.branch_id;
    return "";
  }
};

/// One "process" of the orchestrator: an io_context, an HTTP client, a stage
/// and a runtime. Destroyed with whatever still waits in it, as a killed process.
struct process {
  explicit process(std::shared_ptr<wf::store> s) : rt(io.get_executor(), std::move(s), options()) {}
  /// A process whose store is made by `make(io)` (e.g. one that stops `io` when it crashes).
  explicit process(const std::function<std::shared_ptr<wf::store>(asio::io_context&)>& make)
      : rt(io.get_executor(), make(io), options()) {}

  static wf::runtime_options options() {
    wf::runtime_options o;
    o.executor_id = runner_id;
    return o;
  }

  asio::io_context io;
  std::shared_ptr<wf::http::client> http = std::make_shared<wf::http::client>(io.get_executor());
  std::shared_ptr<stage> st = std::make_shared<stage>(io.get_executor());
  wf::runtime rt;
};


/// One branch moving `amount` on `account`: TransOut (a debit) or TransIn (a
/// credit) with its revert as compensation. Started when awaited, or by when_all.
asio::awaitable<void> money_branch(wf::workflow& w, const std::shared_ptr<transfer::bank>& bank, bool debit,
                                   const std::string& account, std::int64_t amount, bool fail = false,
                                   std::optional<bool> compensate_on_failure = std::nullopt) {
  const transfer::bank_request req{account, amount, fail};
  auto b = w.new_branch(debit ? "TransOut" : "TransIn");
  if (debit) {
    auto act = [bank, req](const wf::branch_context& c) { return bank->trans_out(c, req); };
    auto rev = [bank, req](const wf::branch_context& c) { return bank->trans_out_revert(c, req); };
    b.on_rollback(rev);
    if (compensate_on_failure) b.compensate_on_failure(*compensate_on_failure);
    return b.run(act);
  }
  auto act = [bank, req](const wf::branch_context& c) { return bank->trans_in(c, req); };
  auto rev = [bank, req](const wf::branch_context& c) { return bank->trans_in_revert(c, req); };
  b.on_rollback(rev);
  if (compensate_on_failure) b.compensate_on_failure(*compensate_on_failure);
  return b.run(act);
}

/// What the saga workflows are told: which calls the banks refuse, as told.
struct saga_flags {
  bool fail_alice = false;  ///< alice's TransOut
  bool fail_carol = false;  ///< carol's TransOut
  bool fail_bob = false;    ///< bob's TransIn
};

std::string flags_input(saga_flags f) {
  json::object o;
  o["fail_alice"] = f.fail_alice;
  o["fail_carol"] = f.fail_carol;
  o["fail_bob"] = f.fail_bob;
  return json::serialize(o);
}

saga_flags parse_flags(const json::value& v) {
  const auto& o = v.as_object();
  return {o.at("fail_alice").as_bool(), o.at("fail_carol").as_bool(), o.at("fail_bob").as_bool()};
}

/// Registers, on `p`, over banks staged by `p.st`:
///  "concurrent": TransOut alice 30 and TransIn bob 30 in parallel (DTM's concurrent saga of two branches);
///  "ordered": TransOut alice 30 and TransOut carol 30 in parallel, then (only
///    once both succeeded) TransIn bob 60 (DTM's AddBranchOrder(1, [0])).
void register_sagas(process& p, banks_seen& banks, const std::string& via) {
  auto a = std::make_shared<staged_bank>(banks.bank_a(via, p.http), p.st);
  auto b = std::make_shared<staged_bank>(banks.bank_b(via, p.http), p.st);
  std::shared_ptr<transfer::bank> bank_a = a, bank_b = b;
  p.rt.register_workflow(
      "concurrent",
      [bank_a, bank_b](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        const auto f = parse_flags(in);
        auto out = money_branch(w, bank_a, true, "alice", 30, f.fail_alice);
        auto into = money_branch(w, bank_b, false, "bob", 30, f.fail_bob);
        co_await wf::when_all(std::move(out), std::move(into));
        co_return "moved 30 from alice to bob";
      },
      fast_retries());
  p.rt.register_workflow(
      "ordered",
      [bank_a, bank_b](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        const auto f = parse_flags(in);
        auto alice = money_branch(w, bank_a, true, "alice", 30, f.fail_alice);
        auto carol = money_branch(w, bank_a, true, "carol", 30, f.fail_carol);
        co_await wf::when_all(std::move(alice), std::move(carol));
        auto bob = money_branch(w, bank_b, false, "bob", 60, f.fail_bob);
        co_await wf::when_all(std::move(bob));
        co_return "moved 60 from alice and carol to bob";
      },
      fast_retries());
}

#define WF_EACH_TRANSPORT GENERATE(as<std::string>{}, "http", "grpc")

}  // namespace

// DTM: TestSagaConNormal, TestSagaGrpcConcurrent
TEST_CASE("dtm saga port: concurrent TransOut and TransIn are both in flight, then both applied once", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  process p(make_store(kind));
  // Neither call is sent before both were made: one at a time, they would never end.
  p.st->meet["both called"] = {"TransOut:alice called", "TransIn:bob called"};
  p.st->wait_before = {{"TransOut:alice", "both called"}, {"TransIn:bob", "both called"}};
  register_sagas(p, banks, via);

  const std::string gid = "con-normal-" + via;
  const auto out = run_bounded(p.io, p.rt.execute("concurrent", gid, flags_input({})));
  REQUIRE(out.succeeded());
  CHECK(banks.balance("alice") == 70);
  CHECK(banks.balance("bob") == 30);
  CHECK(banks.count(gid, "TransOut", "alice", "applied") == 1);
  CHECK(banks.count(gid, "TransIn", "bob", "applied") == 1);
  CHECK(banks.calls(gid).size() == 2);
  // Branch ids in the order the code started them, whatever order the banks served them in.
  CHECK(banks.branch_of(gid, "TransOut", "alice") == "01");
  CHECK(banks.branch_of(gid, "TransIn", "bob") == "02");
}

// DTM: TestSagaConRollbackNormal (a concurrent branch fails; the others are compensated)
TEST_CASE("dtm saga port: a branch refused while another is in flight: the other is awaited, then compensated", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  process p(make_store(kind));
  // TransIn is sent only once TransOut's refusal has come back: it is in flight when the failure is known.
  p.st->meet["alice answered"] = {"TransOut:alice failed"};
  p.st->wait_before["TransIn:bob"] = "alice answered";
  // As in DTM's test, the compensation answers "not yet" once: it is asked again until done.
  banks.b.script("TransInRevert", scripted::ongoing, 1);
  register_sagas(p, banks, via);

  const std::string gid = "con-rollback-" + via;
  const auto out = run_bounded(p.io, p.rt.execute("concurrent", gid, flags_input({.fail_alice = true})));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "bank-a: TransOut refused as told");
  // TransIn was sent after the refusal, applied, then compensated.
  CHECK(p.st->position("TransIn:bob called") < p.st->position("TransOut:alice failed"));  // in flight
  CHECK(p.st->position("TransIn:bob sent") > p.st->position("TransOut:alice failed"));
  CHECK(p.st->position("TransIn:bob answered") > p.st->position("TransIn:bob sent"));
  CHECK(banks.at(gid, "TransIn", "bob", "applied") > banks.at(gid, "TransOut", "alice", "refused"));
  CHECK(banks.at(gid, "TransInRevert", "bob", "applied") > banks.at(gid, "TransIn", "bob", "applied"));
  CHECK(banks.count(gid, "TransInRevert", "bob", "ongoing") == 1);
  CHECK(banks.count(gid, "TransInRevert", "bob", "applied") == 1);
  // The refused branch changed nothing and is not compensated (wf's default).
  CHECK(banks.count(gid, "TransOutRevert", "alice") == 0);
  CHECK(banks.balance("alice") == 100);
  CHECK(banks.balance("bob") == 0);
}

// DTM: TestSagaConRollbackOrder (TransIn ordered after a TransOut that fails)
TEST_CASE("dtm saga port: a branch ordered after a refused group is never started, and completed branches alone are compensated", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  process p(make_store(kind));
  // Both debits in flight together; alice's is refused, carol's applied.
  p.st->meet["both called"] = {"TransOut:alice called", "TransOut:carol called"};
  p.st->wait_before = {{"TransOut:alice", "both called"}, {"TransOut:carol", "both called"}};
  register_sagas(p, banks, via);

  const std::string gid = "con-order-" + via;
  const auto out = run_bounded(p.io, p.rt.execute("ordered", gid, flags_input({.fail_alice = true})));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "bank-a: TransOut refused as told");
  CHECK(banks.count(gid, "TransIn", "bob") == 0);  // its predecessors did not all succeed
  CHECK(banks.count(gid, "TransOut", "carol", "applied") == 1);
  CHECK(banks.count(gid, "TransOutRevert", "carol", "applied") == 1);
  CHECK(banks.count(gid, "TransOutRevert", "alice") == 0);
  CHECK(banks.count(gid, "TransInRevert", "bob") == 0);
  CHECK(banks.balance("alice") == 100);
  CHECK(banks.balance("carol") == 50);
  CHECK(banks.balance("bob") == 0);
}

// DTM: TestSagaConRollbackOrder2 (the ordered TransIn fails after its predecessors succeeded)
TEST_CASE("dtm saga port: a later group's refusal compensates the earlier group, latest completion first", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  process p(make_store(kind));
  // carol's debit completes first: alice's is sent once carol's has been answered.
  p.st->meet["carol answered"] = {"TransOut:carol answered"};
  p.st->wait_before["TransOut:alice"] = "carol answered";
  register_sagas(p, banks, via);

  const std::string gid = "con-order2-" + via;
  const auto out = run_bounded(p.io, p.rt.execute("ordered", gid, flags_input({.fail_bob = true})));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "bank-b: TransIn refused as told");
  CHECK(banks.at(gid, "TransIn", "bob", "refused") > banks.at(gid, "TransOut", "alice", "applied"));
  CHECK(banks.at(gid, "TransIn", "bob", "refused") > banks.at(gid, "TransOut", "carol", "applied"));
  const auto alice_revert = banks.at(gid, "TransOutRevert", "alice", "applied");
  const auto carol_revert = banks.at(gid, "TransOutRevert", "carol", "applied");
  CHECK(alice_revert >= 0);
  CHECK(carol_revert > alice_revert);  // alice's debit completed last: compensated first
  CHECK(banks.count(gid, "TransInRevert", "bob") == 0);
  CHECK(banks.balance("alice") == 100);
  CHECK(banks.balance("carol") == 50);
  CHECK(banks.balance("bob") == 0);
}

// DTM: TestSagaConCommittedOngoing, TestSagaGrpcCommittedOngoing
TEST_CASE("dtm saga port: a concurrent branch answering ongoing is asked again; its journaled sibling is not", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  banks.a.script("TransOut", scripted::ongoing, 1);
  process p(make_store(kind));
  p.st->meet["both called"] = {"TransOut:alice called", "TransIn:bob called"};
  p.st->wait_before = {{"TransOut:alice", "both called"}, {"TransIn:bob", "both called"}};
  register_sagas(p, banks, via);

  const std::string gid = "con-ongoing-" + via;
  const auto out = run_bounded(p.io, p.rt.execute("concurrent", gid, flags_input({})));
  REQUIRE(out.succeeded());
  CHECK(banks.count(gid, "TransOut", "alice", "ongoing") == 1);
  CHECK(banks.count(gid, "TransOut", "alice", "applied") == 1);
  CHECK(banks.count(gid, "TransIn", "bob") == 1);  // journaled in the first attempt: replayed, not sent again
  CHECK(banks.balance("alice") == 70);
  CHECK(banks.balance("bob") == 30);
  const auto state = run(p.io, p.rt.status(gid));
  REQUIRE(state);
  CHECK(state->attempts == 1);
}

// DTM: a crash of the server while branches are in flight (the barrier tests' duplicate requests)
TEST_CASE("dtm saga port: a crash with both branches in flight resends them; the barrier applies each once", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  const std::string kind = WF_EACH_STORE;
  banks_seen banks;
  auto open = shared_data(kind);
  const std::string gid = "con-crash-" + via;
  // Both are called together, and neither returns before both banks have
  // answered: the outcomes reach the journal after both calls took effect.
  auto both_together = [](process& p) {
    p.st->meet["both called"] = {"TransOut:alice called", "TransIn:bob called"};
    p.st->wait_before = {{"TransOut:alice", "both called"}, {"TransIn:bob", "both called"}};
    p.st->meet["both answered"] = {"TransOut:alice answered", "TransIn:bob answered"};
    p.st->wait_after = {{"TransOut:alice", "both answered"}, {"TransIn:bob", "both answered"}};
  };
  {
    // Writes: 1 the creation, 2 the first outcomes: refused, the process dies
    // with both calls applied by the banks and neither outcome journaled.
    std::shared_ptr<wf::testing::crashing_store> crashing;
    process first([&](asio::io_context& io) {
      crashing = std::make_shared<wf::testing::crashing_store>(open(), 2, [&io] { io.stop(); });
      return crashing;
    });
    both_together(first);
    register_sagas(first, banks, via);
    asio::co_spawn(first.io, first.rt.execute("concurrent", gid, flags_input({})), asio::detached);
    first.io.run_for(std::chrono::seconds(30));
    REQUIRE(crashing->crashed());
    crashing->detach();
  }
  {
    asio::io_context io;
    auto s = open();
    CHECK(run(io, s->journal(gid)).empty());
  }
  CHECK(banks.count(gid, "TransOut", "alice", "applied") == 1);
  CHECK(banks.count(gid, "TransIn", "bob", "applied") == 1);

  process second(open());
  both_together(second);
  register_sagas(second, banks, via);
  auto recover_then_execute = [](wf::runtime& rt, std::string g) -> asio::awaitable<wf::outcome> {
    co_await rt.recover();
    co_return co_await rt.execute("concurrent", g, flags_input({}));
  };
  const auto out = run_bounded(second.io, recover_then_execute(second.rt, gid));
  REQUIRE(out.succeeded());
  // Both were in flight: both sent again, the barrier absorbed them.
  CHECK(banks.count(gid, "TransOut", "alice", "absorbed") == 1);
  CHECK(banks.count(gid, "TransIn", "bob", "absorbed") == 1);
  CHECK(banks.count(gid, "TransOut", "alice", "applied") == 1);
  CHECK(banks.count(gid, "TransIn", "bob", "applied") == 1);
  CHECK(banks.balance("alice") == 70);
  CHECK(banks.balance("bob") == 30);
}

// The behaviours of DTM's own workflow tests (dtm/test/workflow_*_test.go),
// ported to wf against real participants on loopback: the banks of
// examples/transfer (accounts in PostgreSQL, guarded by the barrier), served
// over HTTP (Beast) and gRPC, called with wf::http and wf::grpc.
//
// Needs PostgreSQL (WF_TEST_PG_URL, set by scripts/test); skipped without it.
#include "support.hpp"

#include "bank.grpc.pb.h"
#include "bank_world.hpp"
#include "transfer_workflow.hpp"

#include <wf/barrier.hpp>
#include <wf/grpc.hpp>
#include <wf/http.hpp>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <pqxx/connection>
#include <pqxx/transaction>

#include <atomic>
#include <concepts>
#include <mutex>

namespace {

using namespace wf_test;
namespace v1 = transfer::v1;
using transfer::scripted;

const char* const runner_id = "dtm-port-runner";

/// The banks, and what these tests ask of their timeline.
struct banks_seen : bank_world {
  /// How many calls of `method` for `gid` had an outcome starting with `outcome`.
  int count(const std::string& gid, const std::string& method, const std::string& outcome = "") {
    int n = 0;
    for (const auto& r : calls(gid))
      if (r.method == method && r.outcome.rfind(outcome, 0) == 0) ++n;
    return n;
  }
  /// Position in the timeline of the first call of `method` for `gid` that was applied.
  std::ptrdiff_t applied_at(const std::string& gid, const std::string& method) {
    const auto c = calls(gid);
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i].method == method && c[i].outcome == "applied") return static_cast<std::ptrdiff_t>(i);
    return -1;
  }
};

/// What a workflow registration needs of a process: its runtime and its HTTP client.
struct actor {
  wf::runtime& rt;
  std::shared_ptr<wf::http::client> http;
};

/// One "process" of the orchestrator: an io_context, an HTTP client and a
/// runtime. Destroyed with whatever still waits in it, as a killed process.
struct process {
  explicit process(std::shared_ptr<wf::store> s) : rt(io.get_executor(), std::move(s), options()) {}
  // io() named although io, declared first, is constructed first anyway:
  // clang 14 warns that it is used uninitialized in a constructor template
  // otherwise (-Wuninitialized, a false positive the non-template one escapes).
  template <class MakeStore>
    requires std::invocable<MakeStore&, asio::io_context&>
  explicit process(MakeStore make) : io(), rt(io.get_executor(), make(io), options()) {}

  static wf::runtime_options options() {
    wf::runtime_options o;
    o.executor_id = runner_id;
    return o;
  }

  asio::io_context io;
  std::shared_ptr<wf::http::client> http = std::make_shared<wf::http::client>(io.get_executor());
  wf::runtime rt;
  operator actor() { return {rt, http}; }
};

std::string transfer_input(std::int64_t amount = 30, bool fail_at_trans_in = false) {
  return json::serialize(transfer::to_json({"alice", "bob", amount, fail_at_trans_in}));
}

void register_transfer(actor p, banks_seen& banks, const std::string& via) {
  transfer::register_transfer(p.rt, banks.bank_a(via, p.http), banks.bank_b(via, p.http), {}, fast_retries());
}

asio::awaitable<wf::outcome> recover_then_execute(wf::runtime& rt, std::string name, std::string gid, std::string input) {
  co_await rt.recover();
  co_return co_await rt.execute(std::move(name), std::move(gid), std::move(input));
}

/// Runs `name` in a process whose store refuses journal write `crash_at` and
/// every later one (the process dies there), then in a fresh process over
/// the same data that recovers and executes it again. Returns the second
/// process's outcome. `setup` registers the workflows on each process.
wf::outcome crash_then_resume(const std::shared_ptr<wf::store>& data, std::size_t crash_at,
                              const std::function<void(actor)>& setup, const std::string& name,
                              const std::string& gid, const std::string& input) {
  auto start = [&](wf::runtime& rt) {
    // The first process's own HTTP client and registrations, on its io_context.
    setup(actor{rt, std::make_shared<wf::http::client>(rt.get_executor())});
    asio::co_spawn(rt.get_executor(), rt.execute(name, gid, input), asio::detached);
  };
  REQUIRE(wf::testing::run_until_crash(data, crash_at, process::options(), start));
  process second(data);
  setup(second);
  return run(second.io, recover_then_execute(second.rt, name, gid, input));
}

#define WF_EACH_TRANSPORT GENERATE(as<std::string>{}, "http", "grpc")

}  // namespace

// DTM: TestWorkflowNormal
TEST_CASE("dtm port: a normal transfer moves the money, each call once", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  process p(std::make_shared<wf::memory_store>());
  register_transfer(p, banks, via);

  const auto out = run(p.io, p.rt.execute(transfer::workflow_name, "normal-" + via, transfer_input()));
  REQUIRE(out.succeeded());
  CHECK(banks.alice() == 70);
  CHECK(banks.bob() == 30);
  const auto calls = banks.calls("normal-" + via);
  REQUIRE(calls.size() == 2);
  // The ids arrive as DTM sends them (query parameters / dtm-* metadata).
  CHECK(calls[0].method == "TransOut");
  CHECK(calls[0].branch_id == "01");
  CHECK(calls[0].op == "action");
  CHECK(calls[0].outcome == "applied");
  CHECK(calls[1].method == "TransIn");
  CHECK(calls[1].branch_id == "02");
  CHECK(calls[1].outcome == "applied");
}

// DTM: TestWorkflowRollback
TEST_CASE("dtm port: a refused TransIn rolls back and leaves the balances unchanged", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  process p(std::make_shared<wf::memory_store>());
  register_transfer(p, banks, via);

  const std::string gid = "rollback-" + via;
  const auto out = run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input(30, true)));
  REQUIRE_FALSE(out.succeeded());
  CHECK(out.reason == "bank-b: TransIn refused as told");
  CHECK(banks.alice() == 100);
  CHECK(banks.bob() == 0);
  CHECK(banks.count(gid, "TransOutRevert", "applied") == 1);
  CHECK(banks.count(gid, "TransInRevert") == 0);  // its action failed: nothing to compensate
  const auto calls = banks.calls(gid);
  REQUIRE(calls.size() == 3);
  CHECK(calls[2].op == "rollback");
  CHECK(calls[2].branch_id == "01");
}

// DTM: TestWorkflowError (an error, then the workflow is resumed)
TEST_CASE("dtm port: transient errors are retried until the branch succeeds", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  banks.b.script("TransIn", scripted::error, 2);  // 500 / INTERNAL, twice
  process p(std::make_shared<wf::memory_store>());
  register_transfer(p, banks, via);

  const std::string gid = "error-" + via;
  const auto out = run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input()));
  REQUIRE(out.succeeded());
  CHECK(banks.alice() == 70);
  CHECK(banks.bob() == 30);
  CHECK(banks.count(gid, "TransIn", "error") == 2);
  CHECK(banks.count(gid, "TransIn", "applied") == 1);
  CHECK(banks.count(gid, "TransOut") == 1);  // the journaled branch is not called again
  const auto state = run(p.io, p.rt.status(gid));
  REQUIRE(state);
  CHECK(state->attempts == 2);  // the runs that ended in a transient error
}

// DTM: TestWorkflowOngoing
TEST_CASE("dtm port: an ongoing answer is asked again until done", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  banks.b.script("TransIn", scripted::ongoing, 2);  // 425 / FAILED_PRECONDITION, twice
  process p(std::make_shared<wf::memory_store>());
  register_transfer(p, banks, via);

  const std::string gid = "ongoing-" + via;
  const auto out = run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input()));
  REQUIRE(out.succeeded());
  CHECK(banks.count(gid, "TransIn", "ongoing") == 2);
  CHECK(banks.count(gid, "TransIn", "applied") == 1);
  CHECK(banks.count(gid, "TransOut") == 1);
  CHECK(banks.bob() == 30);
}

// DTM: TestWorkflowResume... (a resumed workflow skips its finished branches)
TEST_CASE("dtm port: a workflow resumed after a crash does not re-run a finished branch", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  auto data = std::make_shared<wf::memory_store>();
  // Write 3 is TransIn's outcome: the process dies after bank-b applied
  // TransIn and before that was journaled; TransOut is journaled.
  const std::string gid = "resume-" + via;
  auto setup = [&](actor p) { register_transfer(p, banks, via); };
  const auto out = crash_then_resume(data, 3, setup, transfer::workflow_name, gid, transfer_input());
  REQUIRE(out.succeeded());
  CHECK(banks.count(gid, "TransOut") == 1);
  CHECK(banks.count(gid, "TransIn", "applied") == 1);
  CHECK(banks.count(gid, "TransIn", "absorbed") == 1);  // sent again; the barrier kept it from a second effect
  CHECK(banks.alice() == 70);
  CHECK(banks.bob() == 30);
}

// DTM: TestWorkflowResult / re-executing a finished gid
TEST_CASE("dtm port: the workflow's result, and executing a finished gid again", "[participants]") {
  WF_REQUIRE_DATABASE();
  const std::string via = WF_EACH_TRANSPORT;
  banks_seen banks;
  process p(std::make_shared<wf::memory_store>());
  register_transfer(p, banks, via);

  const std::string gid = "result-" + via;
  const auto first = run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input()));
  REQUIRE(first.succeeded());
  CHECK(first.result_as<std::string>() == "transferred 30 from alice to bob");
  const auto again = run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input()));
  CHECK(again.succeeded());
  CHECK(again.result == first.result);
  CHECK(banks.calls(gid).size() == 2);  // nothing was sent again
  CHECK(banks.bob() == 30);
  // The same gid with another input is a conflict, not a second transfer.
  CHECK_THROWS_AS(run(p.io, p.rt.execute(transfer::workflow_name, gid, transfer_input(31))), wf::conflict_error);
}

namespace {

// TCC over gRPC: Try reserves, on_commit confirms, on_rollback cancels.
asio::awaitable<std::string> tcc_transfer(wf::workflow& w, json::value input, std::shared_ptr<v1::Bank::Stub> a,
                                          std::shared_ptr<v1::Bank::Stub> b) {
  const auto req = transfer::parse_transfer(input);
  v1::BankRequest out;
  out.set_account(req.from);
  out.set_amount(req.amount);
  v1::BankRequest in;
  in.set_account(req.to);
  in.set_amount(req.amount);
  in.set_fail(req.fail_at_trans_in);

  auto out_try = wf::grpc::action(a, &v1::Bank::Stub::async::TransOutTry, out);
  auto out_confirm = wf::grpc::handler(a, &v1::Bank::Stub::async::TransOutConfirm, out);
  auto out_cancel = wf::grpc::handler(a, &v1::Bank::Stub::async::TransOutCancel, out);
  const v1::BankReply r1 = co_await w.new_branch("TransOut").on_commit(out_confirm).on_rollback(out_cancel).run(out_try);

  auto in_try = wf::grpc::action(b, &v1::Bank::Stub::async::TransInTry, in);
  auto in_confirm = wf::grpc::handler(b, &v1::Bank::Stub::async::TransInConfirm, in);
  auto in_cancel = wf::grpc::handler(b, &v1::Bank::Stub::async::TransInCancel, in);
  const v1::BankReply r2 = co_await w.new_branch("TransIn").on_commit(in_confirm).on_rollback(in_cancel).run(in_try);
  co_return "tried: " + r1.outcome() + ", " + r2.outcome();
}

std::shared_ptr<v1::Bank::Stub> stub_for(const std::string& target) {
  return v1::Bank::NewStub(::grpc::CreateChannel(target, ::grpc::InsecureChannelCredentials()));
}

}  // namespace

// DTM: TestWorkflowTcc / TestWorkflowTccRollback
TEST_CASE("dtm port: TCC through on_commit confirms on success and cancels on failure", "[participants]") {
  WF_REQUIRE_DATABASE();
  banks_seen banks;
  process p(std::make_shared<wf::memory_store>());
  auto a = stub_for(banks.grpc_a->target());
  auto b = stub_for(banks.grpc_b->target());
  p.rt.register_workflow(
      "tcc", [a, b](wf::workflow& w, json::value input) { return tcc_transfer(w, std::move(input), a, b); },
      fast_retries());

  SECTION("success: both tries, then both confirms") {
    const auto out = run(p.io, p.rt.execute("tcc", "tcc-ok", transfer_input()));
    REQUIRE(out.succeeded());
    CHECK(out.result_as<std::string>() == "tried: applied, applied");
    CHECK(banks.count("tcc-ok", "TransOutConfirm", "applied") == 1);
    CHECK(banks.count("tcc-ok", "TransInConfirm", "applied") == 1);
    CHECK(banks.count("tcc-ok", "TransOutCancel") == 0);
    const auto alice = banks.a.balances().at("alice");
    CHECK(alice.balance == 70);
    CHECK(alice.frozen == 0);
    CHECK(banks.bob() == 30);
    for (const auto& r : banks.calls("tcc-ok"))
      if (r.method.find("Confirm") != std::string::npos) CHECK(r.op == "commit");
  }
  SECTION("failure: TransIn's try is refused, TransOut's reservation is cancelled") {
    const auto out = run(p.io, p.rt.execute("tcc", "tcc-fail", transfer_input(30, true)));
    REQUIRE_FALSE(out.succeeded());
    CHECK(banks.count("tcc-fail", "TransOutTry", "applied") == 1);
    CHECK(banks.count("tcc-fail", "TransOutCancel", "applied") == 1);
    CHECK(banks.count("tcc-fail", "TransOutConfirm") == 0);
    CHECK(banks.count("tcc-fail", "TransInConfirm") == 0);
    const auto alice = banks.a.balances().at("alice");
    CHECK(alice.balance == 100);
    CHECK(alice.frozen == 0);
    CHECK(banks.bob() == 0);
  }
}

namespace {

// A local database step (guarded by the barrier, as a participant would),
// then TransOut over HTTP, then TransIn over gRPC.
struct local_db {
  std::string schema = fresh_schema();
  local_db() {
    pqxx::connection c(pg_url());
    wf::create_barrier_table(c, schema + ".barrier");
    pqxx::work tx(c);
    tx.exec("CREATE TABLE " + schema + ".audit (gid text NOT NULL, note text NOT NULL)");
    tx.commit();
  }
  int rows(const std::string& gid) {
    pqxx::connection c(pg_url());
    pqxx::read_transaction tx(c);
    return tx.exec_params("SELECT count(*) FROM " + schema + ".audit WHERE gid = $1", gid)[0][0].as<int>();
  }
};

std::atomic<int> audit_runs{0};

asio::awaitable<std::string> audit_step(const wf::branch_context& c, std::string schema) {
  ++audit_runs;
  pqxx::connection conn(pg_url());
  wf::barrier guard({"workflow", std::string(c.gid), std::string(c.branch_id), std::string(c.op)},
                    schema + ".barrier");
  const std::string gid(c.gid);
  guard.call(conn, [&](pqxx::work& tx) {
    tx.exec_params("INSERT INTO " + schema + ".audit (gid, note) VALUES ($1, 'transfer requested')", gid);
  });
  co_return "audited";
}

asio::awaitable<std::string> mixed_transfer(wf::workflow& w, json::value input, std::string schema,
                                            std::shared_ptr<wf::http::client> http, std::string bank_a_url,
                                            std::shared_ptr<v1::Bank::Stub> bank_b) {
  const auto req = transfer::parse_transfer(input);
  auto audit = [schema](const wf::branch_context& c) { return audit_step(c, schema); };
  const std::string audited = co_await w.step("audit", audit);

  json::object body;
  body["account"] = req.from;
  body["amount"] = req.amount;
  const std::string text = json::serialize(body);
  auto trans_out = http->action(bank_a_url + "/api/TransOut", text);
  auto trans_out_revert = http->handler(bank_a_url + "/api/TransOutRevert", text);
  co_await w.new_branch("TransOut").on_rollback(trans_out_revert).run(trans_out);

  v1::BankRequest in;
  in.set_account(req.to);
  in.set_amount(req.amount);
  in.set_fail(req.fail_at_trans_in);
  auto trans_in = wf::grpc::action(bank_b, &v1::Bank::Stub::async::TransIn, in);
  auto trans_in_revert = wf::grpc::handler(bank_b, &v1::Bank::Stub::async::TransInRevert, in);
  const v1::BankReply reply = co_await w.new_branch("TransIn").on_rollback(trans_in_revert).run(trans_in);
  co_return audited + ", TransIn " + reply.outcome();
}

}  // namespace

// DTM: TestWorkflowMixed
TEST_CASE("dtm port: a workflow mixing a local step, an HTTP branch and a gRPC branch", "[participants]") {
  WF_REQUIRE_DATABASE();
  banks_seen banks;
  local_db db;
  const std::string kind = WF_EACH_STORE;
  auto data = make_store(kind);
  auto setup = [&](actor p) {
    p.rt.register_workflow(
        "mixed",
        [schema = db.schema, http = p.http, url = banks.http_a->base_url(), b = stub_for(banks.grpc_b->target())](
            wf::workflow& w, json::value input) { return mixed_transfer(w, std::move(input), schema, http, url, b); },
        fast_retries());
  };

  SECTION("uninterrupted") {
    process p(data);
    setup(p);
    const auto out = run(p.io, p.rt.execute("mixed", "mixed-" + kind, transfer_input()));
    REQUIRE(out.succeeded());
    CHECK(out.result_as<std::string>() == "audited, TransIn applied");
    CHECK(db.rows("mixed-" + kind) == 1);
    const auto calls = banks.calls("mixed-" + kind);
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].branch_id == "02");  // the local step took branch id 01
    CHECK(calls[1].branch_id == "03");
    CHECK(banks.alice() == 70);
    CHECK(banks.bob() == 30);
  }
  SECTION("crashed after the local step, then resumed: the step is not run again") {
    // Writes: 1 create, 2 the step's outcome, 3 TransOut's outcome.
    audit_runs = 0;
    const auto out = crash_then_resume(data, 3, setup, "mixed", "mixed-crash-" + kind, transfer_input());
    REQUIRE(out.succeeded());
    CHECK(audit_runs == 1);  // replayed from the journal, not run again
    CHECK(db.rows("mixed-crash-" + kind) == 1);
    CHECK(banks.count("mixed-crash-" + kind, "TransOut", "applied") == 1);
    CHECK(banks.alice() == 70);
    CHECK(banks.bob() == 30);
  }
}

namespace {

// Three branches; the third fails, so the first two are compensated, the
// later one first.
asio::awaitable<std::string> three_branches(wf::workflow& w, json::value input, std::shared_ptr<transfer::bank> a,
                                            std::shared_ptr<transfer::bank> b) {
  const auto req = transfer::parse_transfer(input);
  const transfer::bank_request out{req.from, req.amount, false};
  auto trans_out = [a, out](const wf::branch_context& c) { return a->trans_out(c, out); };
  auto trans_out_revert = [a, out](const wf::branch_context& c) { return a->trans_out_revert(c, out); };
  co_await w.new_branch("TransOut").on_rollback(trans_out_revert).run(trans_out);

  const transfer::bank_request in{req.to, req.amount, false};
  auto trans_in = [b, in](const wf::branch_context& c) { return b->trans_in(c, in); };
  auto trans_in_revert = [b, in](const wf::branch_context& c) { return b->trans_in_revert(c, in); };
  co_await w.new_branch("TransIn").on_rollback(trans_in_revert).run(trans_in);

  auto check = [](const wf::branch_context&) -> asio::awaitable<std::string> {
    throw wf::failure("limit exceeded");
  };
  co_await w.step("Check", check);
  co_return "unreachable";
}

}  // namespace

// DTM: TestWorkflowRollbackInterrupted (each point of the rollback)
TEST_CASE("dtm port: a rollback interrupted at each point resumes and compensates in reverse order",
          "[participants]") {
  WF_REQUIRE_DATABASE();
  banks_seen banks;
  auto setup_for = [&](const std::string& via) {
    return [&banks, via](actor p) {
      auto a = banks.bank_a(via, p.http);
      auto b = banks.bank_b(via, p.http);
      p.rt.register_workflow(
          "three", [a, b](wf::workflow& w, json::value input) { return three_branches(w, std::move(input), a, b); },
          fast_retries());
    };
  };

  // The uninterrupted run, to count its journal writes.
  std::size_t writes = 0;
  {
    auto data = std::make_shared<wf::memory_store>();
    auto counting = std::make_shared<wf::testing::crashing_store>(data);
    process p(counting);
    setup_for("http")(p);
    const auto out = run(p.io, p.rt.execute("three", "three-reference", transfer_input()));
    REQUIRE_FALSE(out.succeeded());
    CHECK(out.reason == "limit exceeded");
    writes = counting->writes();
    CHECK(banks.applied_at("three-reference", "TransInRevert") <
          banks.applied_at("three-reference", "TransOutRevert"));
  }
  REQUIRE(writes >= 5);

  for (std::size_t crash_at = 1; crash_at <= writes; ++crash_at) {
    const std::string via = crash_at % 2 ? "http" : "grpc";
    const std::string gid = "three-crash-" + std::to_string(crash_at);
    INFO("crash at journal write " << crash_at << " of " << writes << ", via " << via);
    auto data = std::make_shared<wf::memory_store>();
    const auto out = crash_then_resume(data, crash_at, setup_for(via), "three", gid, transfer_input());
    REQUIRE_FALSE(out.succeeded());
    CHECK(out.reason == "limit exceeded");
    CHECK(banks.count(gid, "TransOut", "applied") == 1);
    CHECK(banks.count(gid, "TransIn", "applied") == 1);
    CHECK(banks.count(gid, "TransInRevert", "applied") == 1);
    CHECK(banks.count(gid, "TransOutRevert", "applied") == 1);
    const auto in_revert = banks.applied_at(gid, "TransInRevert");
    const auto out_revert = banks.applied_at(gid, "TransOutRevert");
    CHECK(in_revert >= 0);
    CHECK(in_revert < out_revert);
    CHECK(banks.alice() == 100);
    CHECK(banks.bob() == 0);
  }
}

// wf::grpc on its own: what the conventions above do not reach.
TEST_CASE("wf::grpc: an unreachable server is a transient status_error", "[participants][grpc]") {
  asio::io_context io;
  auto stub = stub_for("127.0.0.1:1");
  v1::BankRequest request;
  request.set_account("alice");
  request.set_amount(1);
  wf::grpc::call_options options;
  options.timeout = std::chrono::milliseconds(500);
  const wf::branch_context ctx{"g", "01", "action", "TransOut"};
  try {
    run(io, wf::grpc::call(ctx, stub, &v1::Bank::Stub::async::TransOut, request, options));
    FAIL("the call succeeded");
  } catch (const wf::grpc::status_error& e) {
    CHECK((e.code() == ::grpc::StatusCode::UNAVAILABLE || e.code() == ::grpc::StatusCode::DEADLINE_EXCEEDED));
    CHECK(std::string(e.what()).rfind("wf::grpc: ", 0) == 0);
  }
}

TEST_CASE("wf::grpc: a participant reads the ids from the metadata and answers with the helpers",
          "[participants][grpc]") {
  WF_REQUIRE_DATABASE();
  banks_seen banks;
  asio::io_context io;
  auto stub = stub_for(banks.grpc_a->target());
  v1::BankRequest request;
  request.set_account("alice");
  request.set_amount(10);
  const wf::branch_context ctx{"meta-1", "07", "action", "TransOut"};

  const v1::BankReply reply = run(io, wf::grpc::call(ctx, stub, &v1::Bank::Stub::async::TransOut, request));
  CHECK(reply.outcome() == "applied");
  // The same call again: the barrier (keyed by the metadata) absorbs it.
  const v1::BankReply again = run(io, wf::grpc::call(ctx, stub, &v1::Bank::Stub::async::TransOut, request));
  CHECK(again.outcome() == "absorbed");
  const auto calls = banks.calls("meta-1");
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].branch_id == "07");
  CHECK(calls[0].op == "action");
  CHECK(banks.alice() == 90);

  banks.a.script("TransOut", scripted::failure);
  CHECK_THROWS_AS(run(io, wf::grpc::call(ctx, stub, &v1::Bank::Stub::async::TransOut, request)), wf::failure);
  banks.a.script("TransOut", scripted::ongoing);
  CHECK_THROWS_AS(run(io, wf::grpc::call(ctx, stub, &v1::Bank::Stub::async::TransOut, request)), wf::ongoing);
  // A wrong op for the method is the participant's INVALID_ARGUMENT: transient to wf.
  const wf::branch_context wrong{"meta-1", "07", "commit", "TransOut"};
  try {
    run(io, wf::grpc::call(wrong, stub, &v1::Bank::Stub::async::TransOut, request));
    FAIL("the call succeeded");
  } catch (const wf::grpc::status_error& e) {
    CHECK(e.code() == ::grpc::StatusCode::INVALID_ARGUMENT);
  }
}

// Journals written by earlier releases keep working after the upgrade. Each
// fixture holds journals an earlier release wrote, in every phase:
// - tests/store/fixtures/journal_v1.sql: the first journal format (schema
//   version 1, before operation ids);
// - tests/store/fixtures/journal_v2.sql: schema version 2 (operation ids,
//   parallel branches, before commands were journaled apart from completions);
// - tests/store/fixtures/journal_v3.sql: schema version 3 (pending commands
//   and completion records, before commands were packed into one row).
// The new runtime resumes each and ends it as the old one would have.
// PostgreSQL only.
#include "store/pg_support.hpp"

#include "runtime/engine.hpp"
#include "store/postgres/schema.hpp"

#include <wf/when_all.hpp>

#include <pqxx/pqxx>

#include <fstream>
#include <sstream>

using namespace wf_test;

namespace {

// The workflow the fixture's journals were written by, with the same shape:
// now(), TransOut (01, on_rollback + on_commit), uuid(), step Audit (02),
// TransIn (03, on_rollback + on_commit). Every call is recorded.
struct v1_world {
  std::vector<std::string> calls;  // "gid branch op name"
  wf::handler record(std::string name) {
    return [this, name](const wf::branch_context& c) -> asio::awaitable<void> {
      calls.push_back(std::string(c.gid) + " " + std::string(c.branch_id) + " " + std::string(c.op) + " " + name);
      co_return;
    };
  }
  bool called(const std::string& gid, const std::string& what) const {
    for (const auto& c : calls)
      if (c.rfind(gid + " ", 0) == 0 && c.find(what) != std::string::npos) return true;
    return false;
  }
  std::size_t calls_of(const std::string& gid) const {
    std::size_t n = 0;
    for (const auto& c : calls) n += c.rfind(gid + " ", 0) == 0;
    return n;
  }
};

void register_v1(wf::runtime& rt, v1_world& world) {
  rt.register_workflow(
      "v1.transfer",
      [&world](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        const auto amount = in.as_object().at("amount").as_int64();
        co_await w.now();
        auto out = [&world, amount](const wf::branch_context& c) -> asio::awaitable<std::string> {
          world.calls.push_back(std::string(c.gid) + " 01 action TransOut");
          co_return "out:" + std::to_string(amount);
        };
        auto out_revert = world.record("out_revert");
        auto out_confirm = world.record("out_confirm");
        co_await w.new_branch("TransOut").on_rollback(out_revert).on_commit(out_confirm).run(out);
        co_await w.uuid();
        auto audit = [](const wf::branch_context&) -> asio::awaitable<int> { co_return 7; };
        co_await w.step("Audit", audit);
        auto in_ = [&world](const wf::branch_context& c) -> asio::awaitable<std::string> {
          world.calls.push_back(std::string(c.gid) + " 03 action TransIn");
          co_return "in";
        };
        auto in_revert = world.record("in_revert");
        auto in_confirm = world.record("in_confirm");
        co_await w.new_branch("TransIn").on_rollback(in_revert).on_commit(in_confirm).run(in_);
        co_return "done";
      },
      fast_retries());
}

std::string fixture_sql(const std::string& schema, const std::string& file) {
  std::ifstream f(std::string(WF_SOURCE_DIR) + "/tests/store/fixtures/" + file);
  std::stringstream all;
  all << f.rdbuf();
  std::string sql = all.str();
  for (auto pos = sql.find("{s}"); pos != std::string::npos; pos = sql.find("{s}", pos))
    sql.replace(pos, 3, "\"" + schema + "\"");
  return sql;
}

// A schema at `version` holding the fixture's journals, as the old release left it.
std::string old_schema(int version = 1, const std::string& file = "journal_v1.sql") {
  const auto schema = fresh_schema();
  pqxx::connection c(pg_url());
  wf::detail::pg::migrate(c, schema, version);
  pqxx::work tx(c);
  tx.exec(fixture_sql(schema, file));
  tx.commit();
  return schema;
}

// The workflow of the second and third fixtures ("v2.parallel",
// "v3.parallel"), with the same shape: now() (op 1); DebitA (op 2, branch 01)
// and DebitB (op 3, 02) in parallel, each with on_rollback and on_commit; step
// Audit (op 4, 03); Credit (op 5, 04), with both handlers. Every call is
// recorded as "<gid> <branch> <op> <name>".
void register_parallel(wf::runtime& rt, std::vector<std::string>& calls, const std::string& name) {
  auto o = fast_retries();
  o.retry.max_attempts = 1;
  rt.register_workflow(
      name,
      [&calls](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        const auto amount = in.as_object().at("amount").as_int64();
        co_await w.now();
        auto record = [&calls](std::string what) -> wf::handler {
          return [&calls, what](const wf::branch_context& c) -> asio::awaitable<void> {
            calls.push_back(std::string(c.gid) + " " + std::string(c.branch_id) + " " + std::string(c.op) + " " + what);
            co_return;
          };
        };
        auto debit = [&calls, amount](std::string prefix) {
          return [&calls, amount, prefix](const wf::branch_context& c) -> asio::awaitable<std::string> {
            calls.push_back(std::string(c.gid) + " " + std::string(c.branch_id) + " action " + std::string(c.name));
            co_return prefix + std::to_string(amount);
          };
        };
        // (Handlers and actions named first: see docs/concepts.md, "GCC 12".)
        const auto a_revert = record("a_revert"), a_confirm = record("a_confirm");
        const auto b_revert = record("b_revert"), b_confirm = record("b_confirm");
        const auto c_revert = record("c_revert"), c_confirm = record("c_confirm");
        auto debit_a = debit("a:");
        auto debit_b = debit("b:");
        auto a = w.new_branch("DebitA").on_rollback(a_revert).on_commit(a_confirm).run(debit_a);
        auto b = w.new_branch("DebitB").on_rollback(b_revert).on_commit(b_confirm).run(debit_b);
        co_await wf::when_all(std::move(a), std::move(b));
        auto audit = [](const wf::branch_context&) -> asio::awaitable<int> { co_return 7; };
        co_await w.step("Audit", audit);
        auto credit = [&calls](const wf::branch_context& c) -> asio::awaitable<std::string> {
          calls.push_back(std::string(c.gid) + " 04 action Credit");
          co_return "c";
        };
        co_await w.new_branch("Credit").on_rollback(c_revert).on_commit(c_confirm).run(credit);
        co_return "done";
      },
      o);
}

// The calls made for `gid`, without the gid.
std::vector<std::string> calls_of(const std::vector<std::string>& calls, const std::string& gid) {
  std::vector<std::string> out;
  for (const auto& c : calls)
    if (c.rfind(gid + " ", 0) == 0) out.push_back(c.substr(gid.size() + 1));
  return out;
}

}  // namespace

TEST_CASE("journals of the first format are upgraded in place and every phase resumes as before") {
  WF_REQUIRE_DATABASE();
  const auto schema = old_schema();
  REQUIRE(schema_version(schema) == 1);

  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  CHECK(schema_version(schema) == wf::postgres_schema_version);
  v1_world world;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "v1-runner"});
  register_v1(rt, world);
  CHECK(run(io, rt.recover()) == 4);  // the four unfinished ones

  const std::string input = R"({"amount":30})";
  auto mid = run(io, rt.execute("v1.transfer", "v1-mid-forward", input));
  auto in_flight = run(io, rt.execute("v1.transfer", "v1-in-flight-rollback", input));
  auto commit_phase = run(io, rt.execute("v1.transfer", "v1-commit-phase", input));
  auto business = run(io, rt.execute("v1.transfer", "v1-business-rollback", input));
  auto succeeded = run(io, rt.execute("v1.transfer", "v1-succeeded", input));
  auto failed = run(io, rt.execute("v1.transfer", "v1-failed", input));

  // Mid-forward (now and TransOut journaled): TransOut is not called again;
  // TransIn runs, then the confirms in reverse.
  REQUIRE(mid.succeeded());
  CHECK(mid.result == "done");
  CHECK_FALSE(world.called("v1-mid-forward", "action TransOut"));
  CHECK(world.called("v1-mid-forward", "03 action TransIn"));
  CHECK(world.calls_of("v1-mid-forward") == 3);
  std::vector<std::string> mid_calls;
  for (const auto& c : world.calls)
    if (c.rfind("v1-mid-forward ", 0) == 0) mid_calls.push_back(c.substr(std::string("v1-mid-forward ").size()));
  CHECK(mid_calls == std::vector<std::string>{"03 action TransIn", "03 commit in_confirm", "01 commit out_confirm"});

  // A rollback decided with TransIn (branch 03) in flight, its compensation
  // done: only TransOut's remains.
  REQUIRE_FALSE(in_flight.succeeded());
  CHECK(in_flight.reason == "retries exhausted after 1 attempt(s); last error: bank B down");
  CHECK(world.calls_of("v1-in-flight-rollback") == 1);
  CHECK(world.called("v1-in-flight-rollback", "01 rollback out_revert"));

  // The commit phase with TransIn's confirm done: only TransOut's remains.
  REQUIRE(commit_phase.succeeded());
  CHECK(world.calls_of("v1-commit-phase") == 1);
  CHECK(world.called("v1-commit-phase", "01 commit out_confirm"));

  // A business rollback decided, nothing compensated yet: TransOut is; the
  // refused TransIn is not.
  REQUIRE_FALSE(business.succeeded());
  CHECK(business.reason == "account frozen");
  CHECK(world.calls_of("v1-business-rollback") == 1);
  CHECK(world.called("v1-business-rollback", "01 rollback out_revert"));

  // Finished ones keep their outcome, and nothing is called for them.
  CHECK(succeeded.succeeded());
  CHECK(succeeded.result == "done");
  CHECK_FALSE(failed.succeeded());
  CHECK(failed.reason == "account frozen");
  CHECK(world.calls_of("v1-succeeded") == 0);
  CHECK(world.calls_of("v1-failed") == 0);

  // The resumed journals go on in the new format: the records appended carry operation ids.
  auto j = run(io, store->journal("v1-mid-forward"));
  REQUIRE(j.size() == 8);  // now, TransOut (first format); uuid, Audit, TransIn, decision, 2 commits
  CHECK(j[0].op == 0);
  CHECK(j[1].op == 0);
  CHECK(j[2].op == 3);
  CHECK(j[2].name == "uuid");
  CHECK(j[4].op == 5);
  CHECK(j[4].branch == 3);
  CHECK(j[5].kind == wf::record_kind::decision);
}

TEST_CASE("an upgraded journal is read back the same by a second upgrade-aware runner") {
  WF_REQUIRE_DATABASE();
  const auto schema = old_schema();
  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  // The first format's rollback decision names TransIn's branch, not an operation:
  // read as operation 5 in flight, with its compensation journaled as done.
  auto j = run(io, store->journal("v1-in-flight-rollback"));
  auto up = wf::detail::upgrade_journal("v1-in-flight-rollback", j);
  REQUIRE(up.size() == 6);
  CHECK(up[4].kind == wf::record_kind::decision);
  CHECK(up[4].in_flight == std::vector<std::uint32_t>{5});
  CHECK(up[5].kind == wf::record_kind::rollback);
  CHECK(up[5].op == 5);
  // Migrating again changes nothing.
  CHECK(wf::migrate_postgres_schema(pg_options(schema)) == wf::postgres_schema_version);
}

TEST_CASE("journals of schema version 2 (parallel branches, no pending commands) are upgraded and every phase resumes as before") {
  WF_REQUIRE_DATABASE();
  const auto schema = old_schema(2, "journal_v2.sql");
  REQUIRE(schema_version(schema) == 2);

  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  CHECK(schema_version(schema) == wf::postgres_schema_version);
  // The old rows are complete operation records.
  for (const auto& r : run(io, store->journal("v2-commit-phase"))) CHECK_FALSE(r.pending);

  std::vector<std::string> calls;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "v2-runner"});
  register_parallel(rt, calls, "v2.parallel");
  CHECK(run(io, rt.recover()) == 4);  // the four unfinished ones

  const std::string input = R"({"amount":30})";
  auto mid = run(io, rt.execute("v2.parallel", "v2-mid-forward", input));
  auto in_flight = run(io, rt.execute("v2.parallel", "v2-in-flight-rollback", input));
  auto commit_phase = run(io, rt.execute("v2.parallel", "v2-commit-phase", input));
  auto business = run(io, rt.execute("v2.parallel", "v2-business-rollback", input));
  auto succeeded = run(io, rt.execute("v2.parallel", "v2-succeeded", input));
  auto failed = run(io, rt.execute("v2.parallel", "v2-failed", input));

  // Mid-forward (now and DebitB journaled, DebitA in flight): DebitA is asked
  // again, DebitB is not; then Audit and Credit, and the confirms in reverse
  // completion order (DebitA completed after DebitB).
  REQUIRE(mid.succeeded());
  CHECK(mid.result == "done");
  CHECK(calls_of(calls, "v2-mid-forward") == std::vector<std::string>{"01 action DebitA", "04 action Credit",
                                                                      "04 commit c_confirm", "01 commit a_confirm",
                                                                      "02 commit b_confirm"});

  // A rollback decided with DebitA (operation 2) in flight, its compensation
  // done: only DebitB's remains.
  REQUIRE_FALSE(in_flight.succeeded());
  CHECK(in_flight.reason == "retries exhausted after 1 attempt(s); last error: bank A down");
  CHECK(calls_of(calls, "v2-in-flight-rollback") == std::vector<std::string>{"02 rollback b_revert"});

  // The commit phase with Credit's confirm done: DebitA's, then DebitB's.
  REQUIRE(commit_phase.succeeded());
  CHECK(commit_phase.result == "done");
  CHECK(calls_of(calls, "v2-commit-phase") == std::vector<std::string>{"01 commit a_confirm", "02 commit b_confirm"});

  // A business rollback decided (DebitA refused), nothing compensated yet:
  // DebitB is; the refused DebitA is not.
  REQUIRE_FALSE(business.succeeded());
  CHECK(business.reason == "account frozen");
  CHECK(calls_of(calls, "v2-business-rollback") == std::vector<std::string>{"02 rollback b_revert"});

  // Finished ones keep their outcome, and nothing is called for them.
  CHECK(succeeded.succeeded());
  CHECK(succeeded.result == "done");
  CHECK_FALSE(failed.succeeded());
  CHECK(failed.reason == "account frozen");
  CHECK(calls_of(calls, "v2-succeeded").empty());
  CHECK(calls_of(calls, "v2-failed").empty());

  // The resumed journal goes on after the old records.
  auto j = run(io, store->journal("v2-mid-forward"));
  REQUIRE(j.size() == 9);  // now, DebitB (old); DebitA, Audit, Credit, decision, 3 commits
  CHECK(j[1].name == "DebitB");
  CHECK(j[1].op == 3);
  CHECK(j[2].name == "DebitA");
  CHECK(j[2].op == 2);
  CHECK(j[2].kind == wf::record_kind::branch);
  CHECK_FALSE(j[2].pending);
  CHECK(j[5].kind == wf::record_kind::decision);
  // Migrating again changes nothing.
  CHECK(wf::migrate_postgres_schema(pg_options(schema)) == wf::postgres_schema_version);
}

TEST_CASE("journals of schema version 3 (pending commands, completion records) are upgraded and every phase resumes as before") {
  WF_REQUIRE_DATABASE();
  const auto schema = old_schema(3, "journal_v3.sql");
  REQUIRE(schema_version(schema) == 3);

  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  CHECK(schema_version(schema) == wf::postgres_schema_version);
  // The old rows read back as the old release wrote them: DebitA's command
  // pending, its outcome a completion record.
  {
    const auto j = run(io, store->journal("v3-after-completion"));
    REQUIRE(j.size() == 4);
    CHECK(j[1].name == "DebitA");
    CHECK(j[1].op == 2);
    CHECK(j[1].pending);
    CHECK_FALSE(j[2].pending);
    CHECK(j[3].kind == wf::record_kind::completion);
    CHECK(j[3].op == 2);
  }

  std::vector<std::string> calls;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "v3-runner"});
  register_parallel(rt, calls, "v3.parallel");
  CHECK(run(io, rt.recover()) == 5);  // the five unfinished ones

  const std::string input = R"({"amount":30})";
  auto mid = run(io, rt.execute("v3.parallel", "v3-mid-forward", input));
  auto completed = run(io, rt.execute("v3.parallel", "v3-after-completion", input));
  auto in_flight = run(io, rt.execute("v3.parallel", "v3-in-flight-rollback", input));
  auto commit_phase = run(io, rt.execute("v3.parallel", "v3-commit-phase", input));
  auto business = run(io, rt.execute("v3.parallel", "v3-business-rollback", input));
  auto succeeded = run(io, rt.execute("v3.parallel", "v3-succeeded", input));
  auto failed = run(io, rt.execute("v3.parallel", "v3-failed", input));

  // Mid-forward (DebitA's command pending, DebitB done): DebitA is asked
  // again, DebitB is not; the confirms go in reverse completion order.
  REQUIRE(mid.succeeded());
  CHECK(mid.result == "done");
  CHECK(calls_of(calls, "v3-mid-forward") == std::vector<std::string>{"01 action DebitA", "04 action Credit",
                                                                      "04 commit c_confirm", "01 commit a_confirm",
                                                                      "02 commit b_confirm"});

  // DebitA's completion journaled: neither debit is asked again.
  REQUIRE(completed.succeeded());
  CHECK(calls_of(calls, "v3-after-completion") ==
        std::vector<std::string>{"04 action Credit", "04 commit c_confirm", "01 commit a_confirm", "02 commit b_confirm"});

  // A rollback decided with DebitA in flight (its command pending, no
  // completion), its compensation done: only DebitB's remains.
  REQUIRE_FALSE(in_flight.succeeded());
  CHECK(in_flight.reason == "retries exhausted after 1 attempt(s); last error: bank A down");
  CHECK(calls_of(calls, "v3-in-flight-rollback") == std::vector<std::string>{"02 rollback b_revert"});

  // The commit phase with Credit's confirm done: DebitA's, then DebitB's.
  REQUIRE(commit_phase.succeeded());
  CHECK(calls_of(calls, "v3-commit-phase") == std::vector<std::string>{"01 commit a_confirm", "02 commit b_confirm"});

  // A business rollback decided (DebitA's completion a refusal), nothing
  // compensated yet: DebitB is; the refused DebitA is not.
  REQUIRE_FALSE(business.succeeded());
  CHECK(business.reason == "account frozen");
  CHECK(calls_of(calls, "v3-business-rollback") == std::vector<std::string>{"02 rollback b_revert"});

  // Finished ones keep their outcome, and nothing is called for them.
  CHECK(succeeded.succeeded());
  CHECK(succeeded.result == "done");
  CHECK_FALSE(failed.succeeded());
  CHECK(failed.reason == "account frozen");
  CHECK(calls_of(calls, "v3-succeeded").empty());
  CHECK(calls_of(calls, "v3-failed").empty());

  // The resumed journal goes on after the old rows: now, DebitA (pending),
  // DebitB (old); DebitA, Audit, Credit, the decision, three commits.
  auto j = run(io, store->journal("v3-mid-forward"));
  REQUIRE(j.size() == 10);
  CHECK(j[1].pending);
  CHECK(j[3].name == "DebitA");
  CHECK(j[3].op == 2);
  CHECK(j[6].kind == wf::record_kind::decision);
  // Migrating again changes nothing.
  CHECK(wf::migrate_postgres_schema(pg_options(schema)) == wf::postgres_schema_version);
}

TEST_CASE("an upgraded schema journals pending commands and completions next to the old rows") {
  WF_REQUIRE_DATABASE();
  // New writes in an upgraded schema, next to the old rows: two steps in
  // parallel, Fast answering while Slow is in flight, so that Fast's write
  // carries Slow's command.
  const auto schema = old_schema(2, "journal_v2.sql");
  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  wf::runtime rt(io.get_executor(), store, {.executor_id = "another-runner"});
  rt.register_workflow("two_slow", [](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto slow = [](const wf::branch_context&) -> asio::awaitable<std::string> {
      for (int i = 0; i < 3; ++i) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      co_return "slow";
    };
    auto fast = [](const wf::branch_context&) -> asio::awaitable<std::string> { co_return "fast"; };
    auto [s, f] = co_await wf::when_all(w.step("Slow", slow), w.step("Fast", fast));
    co_return s + f;
  });
  auto out = run(io, rt.execute("two_slow", "after-upgrade", ""));
  REQUIRE(out.succeeded());
  CHECK(out.result == "slowfast");
  pqxx::connection c(pg_url());
  pqxx::nontransaction tx(c);
  const auto rows = tx.exec("SELECT kind, name, op, pending FROM \"" + schema +
                            "\".journal WHERE gid = 'after-upgrade' ORDER BY seq");
  REQUIRE(rows.size() == 4);  // Slow's command (pending), Fast, Slow's completion, the decision
  CHECK(rows[0][1].as<std::string>() == "Slow");
  CHECK(rows[0][3].as<bool>());
  CHECK(rows[1][1].as<std::string>() == "Fast");
  CHECK_FALSE(rows[1][3].as<bool>());
  CHECK(rows[2][0].as<int>() == static_cast<int>(wf::record_kind::completion));
  CHECK(rows[2][2].as<int>() == 1);
  CHECK(rows[3][0].as<int>() == static_cast<int>(wf::record_kind::decision));
}

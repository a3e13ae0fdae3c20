// Non-determinism: code that no longer matches its journal stops the workflow.
#include "support.hpp"

using namespace wf_test;

namespace {

// A workflow calling the branches named in `names`, each with a rollback.
void register_names(wf::runtime& rt, std::shared_ptr<fake_participant> p, std::vector<std::string> names) {
  rt.register_workflow(
      "w",
      [p, names](wf::workflow& w, std::string) -> asio::awaitable<void> {
        for (const auto& n : names)
          co_await w.new_branch(n).on_rollback(call_handler(p)).run(call_action(p));
      },
      fast_retries());
}

// Runs version 1 of the workflow until it crashes at write `crash_at`, then
// version 2 over the surviving journal; returns what version 2's execute threw.
struct two_versions {
  explicit two_versions(const std::string& kind) : open(shared_data(kind)), store(open()) {}
  std::function<std::shared_ptr<wf::store>()> open;
  std::shared_ptr<wf::store> store;  // for inspection
  std::vector<wf::journal_record> records(const std::string& gid) {
    asio::io_context io;
    return run(io, store->journal(gid));
  }
  std::optional<wf::workflow_state> state(const std::string& gid) {
    asio::io_context io;
    return run(io, store->find(gid));
  }
  wf::testing::effect_log log;
  std::shared_ptr<fake_participant> p = std::make_shared<fake_participant>(log);

  void run_v1(std::vector<std::string> names, std::size_t crash_at) {
    auto start = [this, &names](wf::runtime& rt) {
      register_names(rt, p, std::move(names));
      asio::co_spawn(rt.get_executor(), rt.execute("w", "g1", ""), asio::detached);
    };
    REQUIRE(wf::testing::run_until_crash(open(), crash_at, {.executor_id = "svc"}, start));
  }

  std::exception_ptr run_v2(std::vector<std::string> names) {
    asio::io_context io;
    wf::runtime rt(io.get_executor(), open(), {.executor_id = "svc"});
    register_names(rt, p, std::move(names));
    try {
      run(io, rt.execute("w", "g1", ""));
    } catch (...) {
      return std::current_exception();
    }
    return nullptr;
  }
};

void check_nondeterminism(std::exception_ptr e, const std::string& expected, const std::string& recorded) {
  REQUIRE(e);
  try {
    std::rethrow_exception(e);
  } catch (const wf::nondeterminism_error& n) {
    CHECK(n.expected() == expected);
    CHECK(n.recorded() == recorded);
    return;
  } catch (const std::exception& other) {
    FAIL("unexpected error: " << other.what());
  }
}

}  // namespace

TEST_CASE("a renamed branch is reported with what was expected and what was recorded") {
  two_versions t{WF_EACH_STORE};
  t.run_v1({"A", "B"}, 3);  // write 1 creates, 2 journals A, 3 (B) crashes
  const auto before = t.records("g1");
  REQUIRE(before.size() == 1);
  check_nondeterminism(t.run_v2({"A-renamed", "B"}), "branch 'A-renamed' (operation 1)", "branch 'A' (operation 1)");
  // Not rolled back, nothing overwritten: the journal is as it was, the workflow stuck.
  CHECK(t.records("g1") == before);
  auto s = t.state("g1");
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK_THAT(s->result, Catch::Contains("branch 'A-renamed' (operation 1)"));
  CHECK(effects(t.log) == std::vector<std::string>{"A/action", "B/action"});
}

TEST_CASE("an extra branch inserted before journaled ones is non-determinism") {
  two_versions t{WF_EACH_STORE};
  t.run_v1({"A", "B"}, 4);  // A and B journaled, the decision crashes
  check_nondeterminism(t.run_v2({"A", "X", "B"}), "branch 'X' (operation 2)", "branch 'B' (operation 2)");
  CHECK(t.records("g1").size() == 2);
}

TEST_CASE("a workflow that ends while its journal holds more branches is non-determinism") {
  two_versions t{WF_EACH_STORE};
  t.run_v1({"A", "B"}, 4);
  check_nondeterminism(t.run_v2({"A"}), "the end of the workflow", "branch 'B' (operation 2)");
  CHECK(t.records("g1").size() == 2);
}

TEST_CASE("a stuck workflow stays stuck when executed again") {
  two_versions t{WF_EACH_STORE};
  t.run_v1({"A", "B"}, 3);
  t.run_v2({"Z"});
  auto e = t.run_v2({"A", "B"});
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), wf::workflow_stuck_error);
}

TEST_CASE("non-determinism caught by the workflow code still stops the workflow") {
  two_versions t{WF_EACH_STORE};
  t.run_v1({"A", "B"}, 3);
  asio::io_context io;
  wf::runtime rt(io.get_executor(), t.store, {.executor_id = "svc"});
  rt.register_workflow("w", [p = t.p](wf::workflow& w, std::string) -> asio::awaitable<void> {
    try {
      co_await w.new_branch("other").run(call_action(p));
    } catch (const std::exception&) {
    }
  });
  CHECK_THROWS_AS(run(io, rt.execute("w", "g1", "")), wf::nondeterminism_error);
  CHECK(t.state("g1")->status == wf::workflow_status::stuck);
}

TEST_CASE("a corrupt journal marks the workflow stuck and leaves others running") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  wf::workflow_state s;
  s.gid = "bad";
  s.name = "chain";
  s.input = chain_input({"A"});
  run(f.io, f.store->create(s));
  std::vector<wf::write> writes;
  writes.push_back({"bad", 1, {wf::journal_record{1, static_cast<wf::record_kind>(99), "?", 0, false, ""}}, {}});
  REQUIRE(run(f.io, f.store->commit(std::move(writes))).at(0) == wf::write_status::ok);
  CHECK_THROWS_AS(f.execute("chain", "bad", chain_input({"A"})), wf::workflow_stuck_error);
  CHECK(f.state("bad")->status == wf::workflow_status::stuck);
  CHECK(f.execute("chain", "good", chain_input({"A"})).succeeded());
}

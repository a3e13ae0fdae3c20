// The forward phase: branches, steps and recorded values, success and rollback.
#include "support.hpp"

#include <google/protobuf/wrappers.pb.h>
#include <wf/protobuf.hpp>

using namespace wf_test;

TEST_CASE("a workflow whose branches all succeed commits and returns its result") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  auto o = f.execute("chain", "g1", chain_input({"A", "B", "C"}));
  REQUIRE(o.succeeded());
  CHECK(o.result == "done:A/action,done:B/action,done:C/action");
  CHECK(effects(f.log) == std::vector<std::string>{"A/action", "B/action", "C/action"});
  auto s = f.state("g1");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::succeeded);

  auto r = crash_check_chain(f.kind, chain_input({"A", "B", "C"}));
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.crash_points == crash_points_for(r.journal_writes, renewal_faults_on(f.kind)));
}

TEST_CASE("a business failure at branch k of n compensates the branches before k in reverse") {
  const int k = GENERATE(1, 2, 3);
  const std::string failing = std::string(1, static_cast<char>('A' + k - 1));
  auto script = [failing](fake_participant& p) { p.answer(failing + "/action", "f"); };
  fixture f{WF_EACH_STORE};
  script(*f.participant);
  register_chain(f.rt, f.participant);
  auto o = f.execute("chain", "g1", chain_input({"A", "B", "C"}));
  REQUIRE_FALSE(o.succeeded());
  CHECK(o.reason == failing + "/action refused");
  std::vector<std::string> expected;
  for (int i = 0; i < k - 1; ++i) expected.push_back(std::string(1, static_cast<char>('A' + i)) + "/action");
  for (int i = k - 2; i >= 0; --i) expected.push_back(std::string(1, static_cast<char>('A' + i)) + "/rollback");
  CHECK(effects(f.log) == expected);
  // The failed branch itself is not compensated (not even called), nor are the later ones.
  for (const auto& c : f.participant->calls) CHECK(c != failing + "/rollback");
  CHECK(f.state("g1")->status == wf::workflow_status::failed);

  auto r = crash_check_chain(f.kind, chain_input({"A", "B", "C"}), script);
  INFO(r.describe());
  CHECK(r.ok());
}

TEST_CASE("a branch may ask to be compensated when its own action fails") {
  fixture f{WF_EACH_STORE};
  f.participant->answer("B/action", "f");
  f.rt.register_workflow(
      "w",
      [p = f.participant](wf::workflow& w, std::string) -> asio::awaitable<void> {
        co_await w.new_branch("A").on_rollback(call_handler(p)).run(call_action(p));
        co_await w.new_branch("B")
            .on_rollback(call_handler(p))
            .compensate_on_failure()
            .run(call_action(p));
      },
      fast_retries());
  auto o = f.execute("w", "g1", "");
  CHECK_FALSE(o.succeeded());
  // B's rollback runs, but as B's action never applied, the barrier makes it a no-op.
  CHECK(f.participant->calls == std::vector<std::string>{"A/action", "B/action", "B/rollback", "A/rollback"});
  CHECK(effects(f.log) == std::vector<std::string>{"A/action", "A/rollback"});
}

TEST_CASE("workflow code that throws wf::failure itself rolls back what it did") {
  fixture f{WF_EACH_STORE};
  f.rt.register_workflow("w", [p = f.participant](wf::workflow& w, int amount) -> asio::awaitable<int> {
    co_await w.new_branch("A").on_rollback(call_handler(p)).run(call_action(p));
    if (amount > 10) throw wf::failure("amount too large");
    co_return amount;
  });
  auto o = f.execute("w", "g1", wf::encode(42));
  CHECK(o.reason == "amount too large");
  CHECK(effects(f.log) == std::vector<std::string>{"A/action", "A/rollback"});
  CHECK(f.execute("w", "g2", wf::encode(7)).result_as<int>() == 7);
}

TEST_CASE("typed inputs and results travel as JSON and Protobuf") {
  fixture f{WF_EACH_STORE};
  f.rt.register_workflow("json", [](wf::workflow& w, json::value in) -> asio::awaitable<json::value> {
    auto twice = [in](const wf::branch_context&) -> asio::awaitable<std::int64_t> {
      co_return in.at("n").as_int64() * 2;
    };
    auto doubled = co_await w.step("double", twice);
    co_return json::value{{"doubled", doubled}};
  });
  f.rt.register_workflow("proto", [](wf::workflow&, google::protobuf::StringValue in)
                                      -> asio::awaitable<google::protobuf::StringValue> {
    google::protobuf::StringValue out;
    out.set_value(in.value() + "!");
    co_return out;
  });
  auto j = f.execute("json", "j1", wf::encode(json::value{{"n", 21}}));
  CHECK(j.result_as<json::value>().at("doubled").as_int64() == 42);
  google::protobuf::StringValue in;
  in.set_value("hi");
  auto o = run(f.io, f.rt.execute("proto", "p1", in));
  CHECK(o.result_as<google::protobuf::StringValue>().value() == "hi!");
}

TEST_CASE("recorded values come back unchanged when the workflow is replayed") {
  fixture f{WF_EACH_STORE};
  f.participant->answer("use/action", "tt");  // two transient errors: the code runs three times
  std::vector<std::string> seen;
  f.rt.register_workflow(
      "w",
      [p = f.participant, &seen](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto id = co_await w.uuid();
        auto n = co_await w.random();
        auto t = co_await w.now();
        auto mine = co_await w.record("mine", [] { return std::string("computed once"); });
        const auto all = id + "|" + std::to_string(n) + "|" +
                         std::to_string(t.time_since_epoch().count()) + "|" + mine;
        seen.push_back(all);
        co_await w.new_branch("use").run(call_action(p, all));
        co_return all;
      },
      fast_retries());
  auto o = f.execute("w", "g1", "");
  REQUIRE(o.succeeded());
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == seen[1]);
  CHECK(seen[1] == seen[2]);
  CHECK(o.result == seen[0]);
  CHECK(effects(f.log) == std::vector<std::string>{"use/action " + seen[0]});
}

TEST_CASE("a local step is journaled once and gets a branch id") {
  fixture f{WF_EACH_STORE};
  int runs = 0;
  f.participant->answer("after/action", "t");
  f.rt.register_workflow(
      "w",
      [p = f.participant, &runs](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto id = co_await w.step("local", [&runs](const wf::branch_context& c) -> asio::awaitable<std::string> {
          ++runs;
          co_return std::string(c.branch_id);
        });
        co_await w.new_branch("after").run(call_action(p));
        co_return id;
      },
      fast_retries());
  auto o = f.execute("w", "g1", "");
  CHECK(o.result == "01");
  CHECK(runs == 1);
  auto journal = f.records("g1");
  REQUIRE(journal.size() >= 2);
  CHECK(journal[0].kind == wf::record_kind::step);
  CHECK(journal[1].branch == 2);
}

TEST_CASE("an input that does not decode fails the workflow instead of retrying it") {
  fixture f{WF_EACH_STORE};
  f.rt.register_workflow("w", [](wf::workflow&, int n) -> asio::awaitable<int> { co_return n; });
  auto o = f.execute("w", "g1", "not a number");
  CHECK_FALSE(o.succeeded());
  CHECK_THAT(o.reason, Catch::Contains("invalid input"));
}

TEST_CASE("a branch context carries the gid, the branch id and the op") {
  fixture f{WF_EACH_STORE};
  std::vector<std::string> got;
  auto note = [&got](const wf::branch_context& c) {
    got.push_back(std::string(c.gid) + " " + std::string(c.branch_id) + " " + std::string(c.op) + " " +
                  std::string(c.name));
  };
  f.rt.register_workflow("w", [note](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto noting = [note](const wf::branch_context& c) -> asio::awaitable<void> {
      note(c);
      co_return;
    };
    co_await w.new_branch("first").run(noting);
    co_await w.new_branch("second").on_commit(noting).run(noting);
  });
  f.execute("w", "gid-7", "");
  CHECK(got == std::vector<std::string>{"gid-7 01 action first", "gid-7 02 action second", "gid-7 02 commit second"});
}

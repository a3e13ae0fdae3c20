// Bad input gets a clear error, leaves other workflows alone and loses
// nothing (docs/errors.md lists every case; the others are tested next to
// the feature they concern: execute_test, determinism_test, postgres_test,
// http_client_test).
#include "support.hpp"

using namespace wf_test;

namespace {

// A workflow of one branch whose action returns `size` bytes.
void register_sized(wf::runtime& rt, std::size_t size) {
  rt.register_workflow("sized", [size](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto big = [size](const wf::branch_context&) -> asio::awaitable<std::string> { co_return std::string(size, 'x'); };
    const std::string r = co_await w.new_branch("Big").run(big);
    co_return std::to_string(r.size());
  });
}

}  // namespace

TEST_CASE("an input over the payload limit is refused, and nothing is stored") {
  fixture f{WF_EACH_STORE};
  register_chain(f.rt, f.participant);
  const std::string input(wf::max_payload_bytes + 1, 'x');
  try {
    f.execute("chain", "huge", input);
    FAIL("executed");
  } catch (const wf::payload_too_large_error& e) {
    CHECK(std::string(e.what()).find("over the limit of 67108864 bytes") != std::string::npos);
  }
  CHECK_FALSE(f.state("huge"));
  CHECK(f.execute("chain", "fine", chain_input({"A"})).succeeded());
}

TEST_CASE("a branch result over the payload limit marks its workflow stuck, and others carry on") {
  fixture f{WF_EACH_STORE};
  register_sized(f.rt, wf::max_payload_bytes + 1);
  register_chain(f.rt, f.participant);
  // The run that finds it throws the error itself; the workflow is stuck from then on.
  CHECK_THROWS_AS(f.execute("sized", "too-big", ""), wf::payload_too_large_error);
  CHECK_THROWS_AS(f.execute("sized", "too-big", ""), wf::workflow_stuck_error);
  const auto s = f.state("too-big");
  REQUIRE(s);
  CHECK(s->status == wf::workflow_status::stuck);
  CHECK(s->result.find("the outcome of branch 'Big' (operation 1) of 67108865 bytes is over the limit") != std::string::npos);
  CHECK(f.records("too-big").empty());
  CHECK(f.execute("chain", "other", chain_input({"A"})).succeeded());
}

TEST_CASE("names that cannot be stored are refused: NUL bytes, invalid UTF-8, over 1024 bytes") {
  fixture f{WF_EACH_STORE};
  auto noop = [](wf::workflow&, std::string) -> asio::awaitable<std::string> { co_return ""; };
  CHECK_THROWS_AS(f.rt.register_workflow(std::string("a\0b", 3), noop), std::invalid_argument);
  CHECK_THROWS_AS(f.rt.register_workflow("bad\xff", noop), std::invalid_argument);
  CHECK_THROWS_AS(f.rt.register_workflow(std::string(1025, 'n'), noop), std::invalid_argument);
  f.rt.register_workflow("caf\xc3\xa9", noop);  // UTF-8 is fine

  // A branch name is checked when the code reaches it: a bug in the code, so
  // the workflow is stuck with the reason, before anything is called.
  f.rt.register_workflow("bad-branch", [](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    auto ok = [](const wf::branch_context&) -> asio::awaitable<std::string> { co_return "called"; };
    co_return co_await w.new_branch(std::string("Trans\0Out", 9)).run(ok);
  });
  CHECK_THROWS_AS(f.execute("bad-branch", "b1", ""), std::invalid_argument);
  CHECK_THROWS_AS(f.execute("bad-branch", "b1", ""), wf::workflow_stuck_error);
  CHECK(f.state("b1")->result == "wf: the name of a branch contains a NUL byte");
  CHECK(f.records("b1").empty());

  wf::runtime_options bad_id;
  bad_id.executor_id = "runner\n\xfe";
  CHECK_THROWS_AS(wf::runtime(f.io.get_executor(), f.store, bad_id), std::invalid_argument);
}

TEST_CASE("a transient error whose message is not valid UTF-8 (or holds a NUL) is retried as usual") {
  fixture f{WF_EACH_STORE};
  auto tries = std::make_shared<int>(0);
  f.rt.register_workflow(
      "flaky",
      [tries](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
        auto call = [tries](const wf::branch_context&) -> asio::awaitable<std::string> {
          if (++*tries <= 2) throw std::runtime_error(std::string("garbage \xff\x00 from a participant", 30));
          co_return "done";
        };
        co_return co_await w.new_branch("Flaky").run(call);
      },
      fast_retries());
  const auto out = f.execute("flaky", "f1", "");
  REQUIRE(out.succeeded());
  CHECK(*tries == 3);
  CHECK(f.state("f1")->attempts == 2);
}

#include "text.hpp"

TEST_CASE("text checks: what PostgreSQL's text columns refuse is found, and made storable for messages") {
  using wf::detail::name_problem;
  using wf::detail::storable_text;
  CHECK(name_problem("TransOut").empty());
  CHECK(name_problem("\xe2\x82\xac \xf0\x9f\x8f\xa6").empty());       // euro sign, bank emoji
  CHECK_FALSE(name_problem("\xc0\x80").empty());                      // overlong NUL
  CHECK_FALSE(name_problem("\xed\xa0\x80").empty());                  // a UTF-16 surrogate
  CHECK_FALSE(name_problem("\xf4\x90\x80\x80").empty());              // past U+10FFFF
  CHECK_FALSE(name_problem("\xe2\x82").empty());                      // cut short
  CHECK(storable_text(std::string("a\0b\xff\xc3\xa9", 6)) == "a\\0b\\xff\xc3\xa9");
  CHECK(storable_text("plain") == "plain");
}

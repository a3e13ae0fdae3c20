// wfctl, end to end: the command line run as a process against a schema
// that a runtime filled, its output read back (JSON parsed, text searched).
#include "processes.hpp"
#include "support.hpp"

#include "store/postgres/schema.hpp"

#include <wf/postgres_store.hpp>

#include <boost/json.hpp>

#include <pqxx/pqxx>

#include <fstream>
#include <sstream>

using namespace wf_test;

namespace {

struct ran {
  int status = 0;
  std::string output;  // stdout and stderr
};

// Runs wfctl with `args` after --db URL --schema SCHEMA.
ran wfctl(const std::string& schema, std::vector<std::string> args) {
  static int n = 0;
  const std::string log = "/tmp/wfctl_test_" + std::to_string(::getpid()) + "_" + std::to_string(++n) + ".out";
  std::vector<std::string> cmd{WF_TEST_WFCTL, "--db", pg_url(), "--schema", schema};
  cmd.insert(cmd.end(), args.begin(), args.end());
  ran r;
  r.status = wait_for(start_process(cmd, log));
  std::ifstream f(log);
  std::stringstream all;
  all << f.rdbuf();
  r.output = all.str();
  std::remove(log.c_str());
  return r;
}

json::value parsed(const ran& r) {
  INFO(r.output);
  REQUIRE(r.status == 0);
  return json::parse(r.output);
}

// A schema with two finished workflows of "transfer": "t-ok" succeeded;
// "t-refused" had Debit done, then Credit refused, so Debit was compensated.
std::string filled_schema() {
  const auto schema = fresh_schema();
  asio::io_context io;
  auto store = wf::postgres_store::open(pg_options(schema));
  wf::runtime rt(io.get_executor(), store, {.executor_id = "svc-1"});
  rt.register_workflow("transfer", [](wf::workflow& w, std::string in) -> asio::awaitable<std::string> {
    auto debit = [](const wf::branch_context&) -> asio::awaitable<std::string> { co_return "debited"; };
    auto undo = [](const wf::branch_context&) -> asio::awaitable<void> { co_return; };
    auto credit = [in](const wf::branch_context&) -> asio::awaitable<std::string> {
      if (in == "refuse") throw wf::failure("account closed");
      co_return "credited";
    };
    co_await w.new_branch("Debit").on_rollback(undo).run(debit);
    co_await w.new_branch("Credit").run(credit);
    co_return "done";
  });
  REQUIRE(run(io, rt.execute("transfer", "t-ok", "go")).succeeded());
  REQUIRE_FALSE(run(io, rt.execute("transfer", "t-refused", "refuse")).succeeded());
  return schema;
}

std::vector<std::string> gids(const json::value& list) {
  std::vector<std::string> out;
  for (const auto& w : list.at("workflows").as_array()) out.emplace_back(w.at("gid").as_string());
  return out;
}

}  // namespace

TEST_CASE("wfctl lists workflows with filters and a count, and pages with --after") {
  WF_REQUIRE_DATABASE();
  const auto schema = filled_schema();
  auto all = parsed(wfctl(schema, {"list", "--count", "--json"}));
  CHECK(gids(all) == std::vector<std::string>{"t-ok", "t-refused"});
  CHECK(all.at("total").as_int64() == 2);
  CHECK(all.at("next").as_string() == "");
  const auto& refused = all.at("workflows").as_array()[1];
  CHECK(refused.at("status").as_string() == "failed");
  CHECK(refused.at("result").as_string() == "account closed");
  CHECK(refused.at("owner").as_string() == "svc-1");

  auto failed = parsed(wfctl(schema, {"list", "--status", "failed", "--name", "transfer", "--json"}));
  CHECK(gids(failed) == std::vector<std::string>{"t-refused"});

  auto first = parsed(wfctl(schema, {"list", "--limit", "1", "--json"}));
  CHECK(gids(first) == std::vector<std::string>{"t-ok"});
  REQUIRE(first.at("next").as_string() == "t-ok");
  auto second = parsed(wfctl(schema, {"list", "--limit", "1", "--after", "t-ok", "--json"}));
  CHECK(gids(second) == std::vector<std::string>{"t-refused"});

  auto recent = parsed(wfctl(schema, {"list", "--created-from", "2020-01-01T00:00:00Z", "--created-until",
                                      "2199-01-01T00:00:00.5Z", "--json"}));
  CHECK(gids(recent).size() == 2);

  // Text: a table, a line per workflow.
  const auto text = wfctl(schema, {"list", "--count"});
  REQUIRE(text.status == 0);
  CHECK(text.output.find("t-refused") != std::string::npos);
  CHECK(text.output.find("account closed") != std::string::npos);
  CHECK(text.output.find("2 matching") != std::string::npos);

  // A filter is a value, never SQL.
  auto injected = parsed(wfctl(schema, {"list", "--name", "x' OR '1'='1", "--json"}));
  CHECK(gids(injected).empty());
  CHECK(gids(parsed(wfctl(schema, {"list", "--json"}))).size() == 2);
}

TEST_CASE("wfctl show prints a rolled-back workflow's journal: the refusal, the decision, the compensation") {
  WF_REQUIRE_DATABASE();
  const auto schema = filled_schema();
  auto shown = parsed(wfctl(schema, {"show", "t-refused", "--json"}));
  CHECK(shown.at("workflow").at("status").as_string() == "failed");
  std::vector<std::string> timeline;
  for (const auto& r : shown.at("journal").as_array())
    timeline.push_back(std::string(r.at("kind").as_string()) + " " + std::string(r.at("name").as_string()) + " " +
                       std::string(r.at("outcome").as_string()));
  CHECK(timeline == std::vector<std::string>{"branch Debit ok", "branch Credit failed", "decision rollback rollback",
                                             "rollback Debit done"});
  CHECK(shown.at("journal").as_array()[0].at("payload").as_string() == "debited");
  CHECK(shown.at("journal").as_array()[1].at("branch").as_string() == "02");

  const auto text = wfctl(schema, {"show", "t-refused"});
  REQUIRE(text.status == 0);
  CHECK(text.output.find("reason: account closed") != std::string::npos);
  CHECK(text.output.find("Credit") != std::string::npos);
  CHECK(text.output.find("rollback") != std::string::npos);
}

TEST_CASE("wfctl's exit status: 3 for a missing workflow, 2 for a usage error, 1 for a schema it would have to migrate") {
  WF_REQUIRE_DATABASE();
  const auto schema = filled_schema();
  auto missing = wfctl(schema, {"show", "nope"});
  CHECK(missing.status == 3);
  CHECK(missing.output.find("no workflow 'nope'") != std::string::npos);
  CHECK(wfctl(schema, {"list", "--status", "sleeping"}).status == 2);
  CHECK(wfctl(schema, {"list", "--limit", "0"}).status == 2);
  CHECK(wfctl(schema, {"list", "--created-from", "yesterday"}).status == 2);
  CHECK(wfctl(schema, {"list", "--created-until", "2999-01-01T00:00:00Z"}).status == 2);
  CHECK(wfctl(schema, {"frobnicate"}).status == 2);
  CHECK(wfctl(schema, {"--help"}).status == 0);

  // An older schema is refused, and left at its version.
  const auto old = fresh_schema();
  {
    pqxx::connection c(pg_url());
    wf::detail::pg::migrate(c, old, 3);
  }
  auto refused = wfctl(old, {"list"});
  CHECK(refused.status == 1);
  CHECK(refused.output.find("is at version 3") != std::string::npos);
  pqxx::connection c(pg_url());
  CHECK(wf::detail::pg::current_version(c, old) == 3);
}

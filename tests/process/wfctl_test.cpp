// wfctl, end to end: the command line run as a process against a schema
// that a runtime filled (straight to the database, and through wf-server),
// its output read back (JSON parsed, text searched).
#include "processes.hpp"
#include "support.hpp"

#include "store/postgres/schema.hpp"

#include <wf/postgres_store.hpp>

#include <boost/json.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

using namespace wf_test;

namespace {

struct ran {
  int status = 0;
  std::string output;  // stdout and stderr
};

// Runs `cmd` to its end.
ran run_tool(const std::vector<std::string>& cmd) {
  static int n = 0;
  const std::string log = "/tmp/wfctl_test_" + std::to_string(::getpid()) + "_" + std::to_string(++n) + ".out";
  ran r;
  r.status = wait_for(start_process(cmd, log));
  std::ifstream f(log);
  std::stringstream all;
  all << f.rdbuf();
  r.output = all.str();
  std::remove(log.c_str());
  return r;
}

// Runs wfctl with `args` after --db URL --schema SCHEMA.
ran wfctl(const std::string& schema, std::vector<std::string> args) {
  std::vector<std::string> cmd{WF_TEST_WFCTL, "--db", pg_url(), "--schema", schema};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return run_tool(cmd);
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

// "kind name outcome" for each record of `show --json`'s journal.
std::vector<std::string> timeline(const json::value& shown) {
  std::vector<std::string> out;
  for (const auto& r : shown.at("journal").as_array())
    out.push_back(std::string(r.at("kind").as_string()) + " " + std::string(r.at("name").as_string()) + " " +
                  std::string(r.at("outcome").as_string()));
  return out;
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
  CHECK(timeline(shown) == std::vector<std::string>{"branch Debit ok", "branch Credit failed", "decision rollback rollback",
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

#ifdef WF_TEST_WF_SERVER
namespace {

const std::string read_token = "read-0123456789abcdef";
const std::string admin_token = "admin-0123456789abcdef";

// wf-server for `schema` on a free loopback port, with a read-only and an
// admin token; stopped (SIGTERM) by the destructor.
struct wf_server {
  explicit wf_server(const std::string& schema)
      : log("/tmp/wf_server_test_" + std::to_string(::getpid()) + ".out") {
    ::setenv("WF_ADMIN_TOKENS", admin_token.c_str(), 1);
    ::setenv("WF_READ_TOKENS", read_token.c_str(), 1);
    pid = start_process({WF_TEST_WF_SERVER, "--db", pg_url(), "--schema", schema, "--listen", "127.0.0.1:0"}, log);
    ::unsetenv("WF_ADMIN_TOKENS");
    ::unsetenv("WF_READ_TOKENS");
    // It says where it listens once it serves.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (address.empty() && std::chrono::steady_clock::now() < until) {
      std::ifstream f(log);
      std::string line;
      while (std::getline(f, line))
        if (line.rfind("listening on ", 0) == 0) address = line.substr(13);
      if (address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (address.empty()) {
      std::ifstream f(log);
      std::stringstream all;
      all << f.rdbuf();
      kill_now(pid);
      FAIL("wf-server did not start: " << all.str());
    }
  }
  ~wf_server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      wait_for(pid);
    }
    std::remove(log.c_str());
  }
  int stop() {
    ::kill(pid, SIGTERM);
    const int status = wait_for(pid);
    pid = 0;
    return status;
  }

  std::string log;
  pid_t pid = 0;
  std::string address;
};

ran wfctl_server(const wf_server& s, const std::string& token, std::vector<std::string> args) {
  std::vector<std::string> cmd{WF_TEST_WFCTL, "--server", s.address};
  if (!token.empty()) cmd.insert(cmd.end(), {"--token", token});
  cmd.insert(cmd.end(), args.begin(), args.end());
  return run_tool(cmd);
}

}  // namespace

TEST_CASE("wf-server serves a database's workflows: wfctl --server lists, shows, resumes, sends and purges with tokens") {
  WF_REQUIRE_DATABASE();
  const auto schema = filled_schema();
  wf_server server(schema);

  auto listed = parsed(wfctl_server(server, read_token, {"list", "--count", "--json"}));
  CHECK(gids(listed) == std::vector<std::string>{"t-ok", "t-refused"});
  CHECK(listed.at("total").as_int64() == 2);
  CHECK(parsed(wfctl_server(server, read_token, {"list", "--status", "failed", "--json"})).at("workflows").as_array().size() == 1);

  auto shown = parsed(wfctl_server(server, read_token, {"show", "t-refused", "--json"}));
  CHECK(timeline(shown) == std::vector<std::string>{"branch Debit ok", "branch Credit failed", "decision rollback rollback",
                                             "rollback Debit done"});
  const auto text = wfctl_server(server, read_token, {"show", "t-refused"});
  CHECK(text.output.find("reason: account closed") != std::string::npos);
  CHECK(wfctl_server(server, read_token, {"show", "nope"}).status == 3);

  // Refused: no token, a wrong one, a read-only one changing something.
  const auto anonymous = wfctl_server(server, "", {"list"});
  CHECK(anonymous.status == 4);
  CHECK(anonymous.output.find("token") != std::string::npos);
  CHECK(wfctl_server(server, "wrong-0123456789abcdef", {"list"}).status == 4);
  const auto read_only = wfctl_server(server, read_token, {"resume", "t-ok"});
  CHECK(read_only.status == 4);
  CHECK(read_only.output.find("read-only") != std::string::npos);

  auto resumed = parsed(wfctl_server(server, admin_token, {"resume", "t-ok", "--json"}));
  CHECK(resumed.at("resumed").as_bool() == false);  // it is not stuck
  auto sent = parsed(wfctl_server(server, admin_token, {"send", "t-ok", "note", "hi", "--key", "k1", "--json"}));
  CHECK(sent.at("outcome").as_string() == "finished");
  CHECK(wfctl_server(server, admin_token, {"send", "nope", "note", "hi", "--key", "k1"}).status == 3);
  CHECK(wfctl_server(server, admin_token, {"purge", "--before", "soon"}).status == 2);
  auto purged = parsed(wfctl_server(server, admin_token, {"purge", "--before", "2199-01-01T00:00:00Z", "--json"}));
  CHECK(purged.at("purged").as_int64() == 2);
  CHECK(gids(parsed(wfctl_server(server, read_token, {"list", "--json"}))).empty());

  // What changes a workflow needs a server.
  CHECK(wfctl(schema, {"resume", "t-ok"}).status == 2);
  CHECK(server.stop() == 0);
}

TEST_CASE("wf-server refuses to listen beyond loopback without tokens and TLS") {
  WF_REQUIRE_DATABASE();
  const auto schema = fresh_schema();
  {
    pqxx::connection c(pg_url());
    wf::detail::pg::migrate(c, schema, wf::postgres_schema_version);
  }
  const auto refused = run_tool({WF_TEST_WF_SERVER, "--db", pg_url(), "--schema", schema, "--listen", "0.0.0.0:0"});
  CHECK(refused.status == 2);
  CHECK(refused.output.find("not a loopback address") != std::string::npos);
}
#endif

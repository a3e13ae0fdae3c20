// Process-level tests against PostgreSQL: workers SIGKILLed at random
// moments, two workers on one database with one killed or frozen, and the
// database restarted under a running worker. Skipped without WF_TEST_PG_URL.
#include "processes.hpp"
#include "support.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int workflows = 1000;

using wf_test::kill_now;

// The schema of one test: wf's tables, the participant's effects, and a
// guard that records any attempt to change or delete a journal record (and
// prevents it).
std::string prepare_schema() {
  const auto schema = wf_test::fresh_schema();
  wf::postgres_options o;
  o.connection = wf_test::pg_url();
  o.schema = schema;
  wf::migrate_postgres_schema(o);
  pqxx::connection c(o.connection);
  pqxx::work tx(c);
  tx.exec("CREATE TABLE " + schema +
          ".effects (gid text, branch_id text, op text, applied boolean, PRIMARY KEY (gid, branch_id, op))");
  tx.commit();
  return schema;
}

void install_journal_guard(const std::string& schema) {
  pqxx::connection c(wf_test::pg_url());
  pqxx::work tx(c);
  tx.exec("CREATE TABLE " + schema + ".violations (what text, at timestamptz DEFAULT now())");
  tx.exec("CREATE FUNCTION " + schema + ".journal_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
          "INSERT INTO " + schema + ".violations (what) VALUES (TG_OP || ' ' || OLD.gid || ' #' || OLD.seq); " +
          "RETURN NULL; END $$");
  tx.exec("CREATE TRIGGER journal_guard BEFORE UPDATE OR DELETE ON " + schema +
          ".journal FOR EACH ROW EXECUTE FUNCTION " + schema + ".journal_guard()");
  tx.commit();
}

pid_t spawn_worker(const std::string& schema, const std::string& id, int lease_ms) {
  const std::string exe = WF_TEST_WORKER;
  return wf_test::start_process({exe, wf_test::pg_url(), schema, id, std::to_string(workflows),
                                 std::to_string(lease_ms)});
}

// Waits for `pid` to exit, at most `limit`; returns its exit code (-1: killed, timed out).
int wait_exit(pid_t pid, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (std::chrono::steady_clock::now() >= until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Kills the processes it holds when the test ends, however it ends.
struct children {
  std::vector<pid_t> pids;
  pid_t add(pid_t p) {
    pids.push_back(p);
    return p;
  }
  ~children() {
    for (pid_t p : pids) {
      kill(p, SIGCONT);
      kill(p, SIGKILL);
      int status = 0;
      waitpid(p, &status, 0);
    }
  }
};

int random_ms(int lo, int hi) {
  static std::mt19937 rng(std::random_device{}());
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// Every workflow finished once, with exactly the effects its outcome implies,
// and no journal record was ever changed.
void check_invariants(const std::string& schema) {
  pqxx::connection c(wf_test::pg_url());
  pqxx::work tx(c);
  const auto total = tx.exec("SELECT count(*) FROM " + schema + ".workflows")[0][0].as<int>();
  CHECK(total == workflows);
  const auto unfinished = tx.exec("SELECT count(*) FROM " + schema + ".workflows WHERE status NOT IN (1, 2)");
  CHECK(unfinished[0][0].as<int>() == 0);
  for (const auto& row : tx.exec("SELECT gid, status FROM " + schema + ".workflows ORDER BY gid")) {
    const auto gid = row[0].as<std::string>();
    const int index = std::stoi(gid.substr(2));
    const bool should_fail = index % 5 == 0;
    INFO(gid);
    CHECK(row[1].as<int>() == (should_fail ? 2 : 1));
    std::vector<std::string> applied;
    for (const auto& e : tx.exec_params("SELECT branch_id || '/' || op FROM " + schema +
                                            ".effects WHERE gid = $1 AND applied ORDER BY 1",
                                        gid))
      applied.push_back(e[0].as<std::string>());
    const std::vector<std::string> expected =
        should_fail ? std::vector<std::string>{"01/action", "01/rollback", "02/action", "02/rollback"}
                    : std::vector<std::string>{"01/action", "02/action", "03/action"};
    CHECK(applied == expected);
    // The journal has no gap.
    const auto j = tx.exec_params("SELECT count(*), coalesce(max(seq), 0) FROM " + schema + ".journal WHERE gid = $1", gid);
    CHECK(j[0][0].as<int>() == j[0][1].as<int>());
  }
  CHECK(tx.exec("SELECT count(*) FROM " + schema + ".violations")[0][0].as<int>() == 0);
}

}  // namespace

TEST_CASE("process: a worker SIGKILLed at random moments, again and again, finishes every workflow exactly once") {
  WF_REQUIRE_DATABASE();
  const auto schema = prepare_schema();
  install_journal_guard(schema);
  for (int i = 0; i < 8; ++i) {
    const pid_t pid = spawn_worker(schema, "solo", 2000);
    std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(50, 500)));  // the fault's moment
    kill_now(pid);
  }
  // Restarted with the same executor id, it resumes its own workflows at once.
  REQUIRE(wait_exit(spawn_worker(schema, "solo", 2000), std::chrono::seconds(120)) == 0);
  check_invariants(schema);
}

TEST_CASE("process: when one of two workers dies, the other takes its workflows over after the lease") {
  WF_REQUIRE_DATABASE();
  const auto schema = prepare_schema();
  install_journal_guard(schema);
  children guard;
  const pid_t a = guard.add(spawn_worker(schema, "a", 1000));
  const pid_t b = guard.add(spawn_worker(schema, "b", 1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(200, 600)));  // the fault's moment
  kill_now(a);
  REQUIRE(wait_exit(b, std::chrono::seconds(120)) == 0);
  guard.pids.clear();
  check_invariants(schema);
  pqxx::connection c(wf_test::pg_url());
  pqxx::work tx(c);
  // b could only exit once every workflow had an outcome, those a held when it died included.
  CHECK(tx.exec("SELECT count(*) FROM " + schema + ".workflows WHERE owner NOT IN ('a', 'b')")[0][0].as<int>() == 0);
}

TEST_CASE("process: a frozen worker that wakes after losing its leases cannot write") {
  WF_REQUIRE_DATABASE();
  const auto schema = prepare_schema();
  install_journal_guard(schema);
  children guard;
  const pid_t a = guard.add(spawn_worker(schema, "a", 1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(200, 500)));
  kill(a, SIGSTOP);  // a paused process: its leases run out (and its open transaction is ended by the server)
  REQUIRE(wait_exit(spawn_worker(schema, "b", 1000), std::chrono::seconds(120)) == 0);
  kill(a, SIGCONT);  // it wakes up believing it still owns its workflows
  CHECK(wait_exit(a, std::chrono::seconds(120)) == 0);
  guard.pids.clear();
  check_invariants(schema);
}

TEST_CASE("process: PostgreSQL restarted under a running worker loses nothing acknowledged") {
  WF_REQUIRE_DATABASE();
  if (!wf_test::can_restart_postgres()) {
    WARN("WF_TEST_PG_DATA is not set (not our own cluster): skipped");
    return;
  }
  const auto schema = prepare_schema();
  install_journal_guard(schema);
  {
    // The restart below is a crash of the server: this bounds the WAL its
    // start must replay to what is written from here on.
    pqxx::connection c(wf_test::pg_url());
    pqxx::nontransaction tx(c);
    tx.exec("CHECKPOINT");
  }
  const pid_t w = spawn_worker(schema, "solo", 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(random_ms(200, 600)));
  const int restarted = wf_test::restart_postgres("/dev/null");
  if (restarted != 0) {
    std::ifstream server_log(wf_test::postgres_server_log());
    std::deque<std::string> tail;
    for (std::string line; std::getline(server_log, line);) {
      tail.push_back(line);
      if (tail.size() > 40) tail.pop_front();
    }
    for (const auto& line : tail) UNSCOPED_INFO(line);
  }
  REQUIRE(restarted == 0);
  REQUIRE(wait_exit(w, std::chrono::seconds(120)) == 0);
  check_invariants(schema);
}

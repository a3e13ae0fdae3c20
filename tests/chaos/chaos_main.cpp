// wf_chaos: the bank test under faults (see tests/chaos/README.md).
//
// Runs the transfer example as real processes on loopback: two banks
// (wf_bank, accounts and barrier in PostgreSQL) and two orchestrators
// (wf_transfer --load, one over HTTP, one over gRPC, on one wf schema), with a
// steady load of random transfers. Meanwhile it injects faults at random
// moments: SIGKILL of an orchestrator or a bank (then a restart), PostgreSQL
// restarted with `pg_ctl restart -m immediate`, a bank answering 500, 425 or
// nothing for a while, an orchestrator frozen (SIGSTOP) past its leases and
// woken (SIGCONT). Then it waits for every workflow to finish and checks the
// money: see check() below. Prints its figures as one line; exits 0 only when
// every workflow finished in time and there is no anomaly.
//
// Needs WF_TEST_PG_URL (scripts/chaos and scripts/test start a throwaway
// server), and WF_TEST_PG_DATA / WF_TEST_PG_CTL [/ WF_TEST_PG_RUNAS] for the
// PostgreSQL restarts (without them, that fault is left out).
#include "processes.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using wf_test::env;
using wf_test::start_process;
using wf_test::wait_for;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct options {
  std::string bin;        // directory of wf_bank and wf_transfer
  std::string work;       // logs
  int seconds = 40;       // how long faults are injected (and the load lasts)
  double rate = 10;       // transfers per second, both orchestrators together
  int accounts = 6;       // per bank
  std::int64_t initial = 200;
  int concurrency = 8;    // per orchestrator
  std::uint64_t seed = 0;
  int quiesce_bound = 60;  // seconds after the last fault
  int lease_ms = 2000;
};

void log_line(const std::string& text) {
  std::printf("chaos: %s\n", text.c_str());
  std::fflush(stdout);
}

// ---- child processes

struct child {
  std::string name;
  std::vector<std::string> argv;
  pid_t pid = -1;
  bool finished = false;  // exited with status 0 (an orchestrator's load is done)
  int unexpected_exits = 0;
};

void spawn(child& c, const std::string& work) { c.pid = start_process(c.argv, work + "/" + c.name + ".log"); }

// Waits for `c` to end (after a SIGKILL or SIGTERM).
void wait_for(child& c) {
  if (c.pid <= 0) return;
  wait_for(c.pid);
  c.pid = -1;
}

// ---- loopback helpers

// A port of 127.0.0.1 nothing is bound to, below Linux's ephemeral range
// (32768-60999): a port the kernel hands out could be taken by an outgoing
// connection before the bank that is meant to listen on it (re)starts.
unsigned short free_port() {
  static std::mt19937 random(static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 500; ++attempt) {
    const auto port = static_cast<unsigned short>(10000 + random() % 22000);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return port;
  }
  throw std::runtime_error("no free port");
}

int connect_to(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.1 POST with an empty body; returns the status line, or "" when
// the server cannot be reached.
std::string post(unsigned short port, const std::string& target) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req =
      "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  std::string answer;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) answer.assign(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer.substr(0, answer.find("\r\n"));
}

// ---- the run

struct bank_proc {
  child proc;
  std::string schema;
  unsigned short http = 0, grpc = 0;
};

struct figures {
  std::map<std::string, int> faults;
  std::size_t transfers = 0, succeeded = 0, rolled_back = 0, unfinished = 0, balance_changes = 0;
  int anomalies = 0;
  double quiesce_s = -1;
  double run_s = 0;
};

class chaos {
 public:
  explicit chaos(options o) : o_(std::move(o)), random_(o_.seed) {
    pg_url_ = env("WF_TEST_PG_URL");
    transfers_ = static_cast<std::size_t>(o_.rate * o_.seconds);
  }

  int main() {
    const auto begun = clock_type::now();
    prepare();
    start_banks();
    install_audit();
    start_orchestrators();
    inject_faults();
    const auto last_fault = clock_type::now();
    log_line("faults done; waiting for every workflow to finish (bound " + std::to_string(o_.quiesce_bound) + " s)");
    const bool quiet = quiesce(last_fault);
    stop_all();
    {
      pqxx::connection c(pg_url_);
      pqxx::read_transaction tx(c);
      check(tx);
    }
    self_test();
    f_.run_s = std::chrono::duration<double>(clock_type::now() - begun).count();
    print_figures();
    const bool ok = quiet && f_.anomalies == 0;
    if (!ok) log_line("FAILED; the processes' logs are in " + o_.work);
    return ok ? 0 : 1;
  }

 private:
  // ---- setup

  void prepare() {
    pqxx::connection c(pg_url_);
    pqxx::work tx(c);
    tx.exec("DROP SCHEMA IF EXISTS chaos_wf, chaos_bank_a, chaos_bank_b, chaos_audit CASCADE");
    tx.commit();
  }

  void start_banks() {
    banks_[0].schema = "chaos_bank_a";
    banks_[1].schema = "chaos_bank_b";
    for (int b = 0; b < 2; ++b) {
      auto& bank = banks_[b];
      bank.http = free_port();
      bank.grpc = free_port();
      bank.proc.name = b == 0 ? "bank-a" : "bank-b";
      bank.proc.argv = {o_.bin + "/wf_bank", "--name", bank.proc.name, "--db", pg_url_, "--schema", bank.schema,
                        "--http", "127.0.0.1:" + std::to_string(bank.http), "--grpc",
                        "127.0.0.1:" + std::to_string(bank.grpc)};
      std::vector<std::string> first = bank.proc.argv;  // the opening balances, only at the first start
      for (int i = 0; i < o_.accounts; ++i)
        bank.proc.argv.push_back("--account"), bank.proc.argv.push_back(account(i) + "=" + std::to_string(o_.initial));
      spawn(bank.proc, o_.work);
      bank.proc.argv = first;
    }
    for (auto& bank : banks_) wait_ready(bank);
  }

  static std::string account(int i) { return "acct-" + std::to_string(i); }

  // Waits (bounded) until the bank's HTTP server accepts connections; restarts it if it died.
  void wait_ready(bank_proc& bank) {
    const auto give_up = clock_type::now() + 60s;
    while (clock_type::now() < give_up) {
      reap();
      if (bank.proc.pid <= 0) spawn(bank.proc, o_.work);
      if (const int fd = connect_to(bank.http); fd >= 0) {
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(50ms);  // polling another process's readiness, with a bound
    }
    throw std::runtime_error(bank.proc.name + " did not start; see " + o_.work + "/" + bank.proc.name + ".log");
  }

  // Every change of a balance, with the balance after it: "no balance ever
  // went negative" is checked against this history, not just the end state.
  void install_audit() {
    pqxx::connection c(pg_url_);
    pqxx::work tx(c);
    tx.exec(
        "CREATE SCHEMA chaos_audit;"
        "CREATE TABLE chaos_audit.balances (bank text NOT NULL, account text NOT NULL, balance bigint NOT NULL,"
        "  frozen bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());"
        "CREATE FUNCTION chaos_audit.record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "  INSERT INTO chaos_audit.balances (bank, account, balance, frozen)"
        "    VALUES (TG_TABLE_SCHEMA, NEW.account, NEW.balance, NEW.frozen);"
        "  RETURN NEW; END $$;"
        "CREATE TRIGGER audit AFTER INSERT OR UPDATE ON chaos_bank_a.accounts"
        "  FOR EACH ROW EXECUTE FUNCTION chaos_audit.record();"
        "CREATE TRIGGER audit AFTER INSERT OR UPDATE ON chaos_bank_b.accounts"
        "  FOR EACH ROW EXECUTE FUNCTION chaos_audit.record();");
    tx.commit();
  }

  void start_orchestrators() {
    const auto start_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() +
                          500;
    for (int k = 0; k < 2; ++k) {
      auto& o = orchestrators_[k];
      o.name = "orchestrator-" + std::to_string(k);
      o.argv = {o_.bin + "/wf_transfer", "--db", pg_url_, "--schema", "chaos_wf", "--via", k == 0 ? "http" : "grpc",
                "--bank-a", "http://127.0.0.1:" + std::to_string(banks_[0].http), "--bank-b",
                "http://127.0.0.1:" + std::to_string(banks_[1].http), "--bank-a-grpc",
                "127.0.0.1:" + std::to_string(banks_[0].grpc), "--bank-b-grpc",
                "127.0.0.1:" + std::to_string(banks_[1].grpc), "--gid", "chaos", "--load",
                std::to_string(transfers_), "--seed", std::to_string(o_.seed), "--accounts",
                std::to_string(o_.accounts), "--concurrency", std::to_string(o_.concurrency), "--rate",
                std::to_string(o_.rate), "--start-at", std::to_string(start_at), "--shard",
                std::to_string(k) + "/2", "--fail-percent", "10", "--max-amount", "60", "--executor-id", o.name,
                "--lease-ms", std::to_string(o_.lease_ms), "--poll-ms", "200", "--call-timeout-ms", "1000"};
      spawn(o, o_.work);
    }
  }

  // ---- faults

  // Collects children that ended on their own: an orchestrator that exits 0
  // has finished its load; anything else is restarted.
  void reap() {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (child* c : all_children()) {
        if (c->pid != pid) continue;
        c->pid = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && c->name.rfind("orchestrator", 0) == 0) {
          c->finished = true;
          log_line(c->name + " finished its transfers");
        } else {
          ++c->unexpected_exits;
          log_line(c->name + " ended unexpectedly (" +
                   (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                      : std::string("signal ") + strsignal(WTERMSIG(status))) +
                   "); restarting it");
          spawn(*c, o_.work);
        }
      }
    }
  }

  std::vector<child*> all_children() {
    return {&banks_[0].proc, &banks_[1].proc, &orchestrators_[0], &orchestrators_[1]};
  }

  template <class Rep, class Period>
  void pause(std::chrono::duration<Rep, Period> d) {
    // The time between faults, or a fault's length: reaping meanwhile.
    const auto until = clock_type::now() + d;
    while (clock_type::now() < until) {
      reap();
      std::this_thread::sleep_for(std::min<clock_type::duration>(until - clock_type::now(), 50ms));
    }
  }

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random_); }

  void inject_faults() {
    const auto end = clock_type::now() + std::chrono::seconds(o_.seconds);
    // Each kind at most this many times: bounded in count, and each bounded in time.
    const int per_ten_seconds = std::max(1, o_.seconds / 10);
    std::map<std::string, int> limit = {{"orchestrator_kills", 2 * per_ten_seconds},
                                        {"bank_kills", 2 * per_ten_seconds},
                                        {"pg_restarts", per_ten_seconds},
                                        {"answers_500", per_ten_seconds},
                                        {"answers_425", per_ten_seconds},
                                        {"silences", per_ten_seconds},
                                        {"freezes", std::max(1, per_ten_seconds / 2)}};
    if (!wf_test::can_restart_postgres()) {
      limit.erase("pg_restarts");
      log_line("WF_TEST_PG_DATA / WF_TEST_PG_CTL not set: PostgreSQL will not be restarted");
    }
    for (auto& [kind, n] : limit) f_.faults[kind] = 0;
    pause(1500ms);
    while (clock_type::now() < end && !all_finished()) {
      std::vector<std::string> open;
      for (const auto& [kind, n] : limit)
        if (f_.faults[kind] < n) open.push_back(kind);
      if (open.empty()) break;
      const std::string kind = open[static_cast<std::size_t>(uniform(0, static_cast<int>(open.size()) - 1))];
      if (inject(kind)) ++f_.faults[kind];
      pause(std::chrono::milliseconds(uniform(300, 1500)));
    }
  }

  bool all_finished() { return orchestrators_[0].finished && orchestrators_[1].finished; }

  bool inject(const std::string& kind) {
    if (kind == "orchestrator_kills") {
      child& o = orchestrators_[uniform(0, 1)];
      if (o.finished || o.pid <= 0) return false;
      log_line("SIGKILL " + o.name + ", then restart it");
      ::kill(o.pid, SIGKILL);
      wait_for(o);
      spawn(o, o_.work);
      return true;
    }
    if (kind == "bank_kills") {
      bank_proc& b = banks_[uniform(0, 1)];
      if (b.proc.pid <= 0) return false;  // never kill(-1, ...)
      log_line("SIGKILL " + b.proc.name + ", then restart it");
      ::kill(b.proc.pid, SIGKILL);
      wait_for(b.proc);
      pause(std::chrono::milliseconds(uniform(0, 800)));  // down for a while
      wait_ready(b);
      return true;
    }
    if (kind == "pg_restarts") {
      log_line("pg_ctl restart -m immediate");
      const int status = wf_test::restart_postgres(o_.work + "/pg_ctl.log");
      if (status != 0)
        throw std::runtime_error("pg_ctl restart failed with status " + std::to_string(status) + "; see " + o_.work +
                                 "/pg_ctl.log");
      return true;
    }
    if (kind == "answers_500" || kind == "answers_425" || kind == "silences") {
      bank_proc& b = banks_[uniform(0, 1)];
      const char* mode = kind == "answers_500" ? "error" : kind == "answers_425" ? "ongoing" : "silent";
      const int ms = uniform(500, 2500);
      log_line(b.proc.name + " answers " + mode + " for " + std::to_string(ms) + " ms");
      const std::string answer = post(b.http, "/admin/disturb?mode=" + std::string(mode) + "&ms=" + std::to_string(ms));
      if (answer.find(" 200 ") == std::string::npos) {
        log_line(b.proc.name + " did not take it: '" + answer + "'");
        return false;
      }
      pause(std::chrono::milliseconds(ms));
      return true;
    }
    if (kind == "freezes") {
      child& o = orchestrators_[uniform(0, 1)];
      if (o.finished || o.pid <= 0) return false;
      const auto frozen = std::chrono::milliseconds(o_.lease_ms * 2 + 500);
      log_line("SIGSTOP " + o.name + " for " + std::to_string(frozen.count()) + " ms (its leases expire), then SIGCONT");
      ::kill(o.pid, SIGSTOP);
      pause(frozen);
      ::kill(o.pid, SIGCONT);
      return true;
    }
    return false;
  }

  // ---- the end

  std::size_t finished_workflows() {
    try {
      pqxx::connection c(pg_url_);
      pqxx::nontransaction tx(c);
      const auto r = tx.exec("SELECT count(*) FROM chaos_wf.workflows WHERE status IN (1, 2)");
      return r[0][0].as<std::size_t>();
    } catch (const std::exception&) {
      return 0;  // not created yet, or the server is still starting
    }
  }

  bool quiesce(clock_type::time_point last_fault) {
    const auto give_up = last_fault + std::chrono::seconds(o_.quiesce_bound);
    bool all_done = false;
    while (clock_type::now() < give_up) {
      reap();
      if (!all_done && finished_workflows() == transfers_) {
        all_done = true;
        f_.quiesce_s = std::chrono::duration<double>(clock_type::now() - last_fault).count();
      }
      if (all_done && all_finished()) return true;
      std::this_thread::sleep_for(100ms);  // polling other processes' progress, with a bound
    }
    log_line(all_done ? "the orchestrators did not exit in time" : "not every workflow finished in time");
    return false;
  }

  void stop_all() {
    for (child* c : all_children()) {
      if (c->pid <= 0) continue;
      ::kill(c->pid, SIGCONT);
      ::kill(c->pid, c->name.rfind("bank", 0) == 0 ? SIGTERM : SIGKILL);
      wait_for(*c);
    }
  }

  void anomaly(const std::string& what) {
    ++f_.anomalies;
    if (f_.anomalies <= 20) log_line(std::string(self_testing_ ? "(self-test) found: " : "ANOMALY: ") + what);
  }

  // The checks are no use if they pass whatever the data: each of these
  // damages, in a transaction rolled back afterwards, must be found.
  void self_test() {
    const std::vector<std::pair<std::string, std::string>> damages = {
        {"one unit of money created", "UPDATE chaos_bank_a.accounts SET balance = balance + 1 WHERE account = 'acct-0'"},
        {"a TransIn lost", "DELETE FROM chaos_bank_b.barrier WHERE id = (SELECT min(b.id) FROM chaos_bank_b.barrier b"
                           " JOIN chaos_wf.workflows w ON w.gid = b.gid WHERE w.status = 1 AND b.op = 'action'"
                           " AND b.reason = 'action')"},
        {"a compensation applied to a success",
         "INSERT INTO chaos_bank_a.barrier (gid, branch_id, op, barrier_id, reason) SELECT gid, '01', 'rollback', '01',"
         " 'rollback' FROM chaos_wf.workflows WHERE status = 1 AND name = 'transfer' LIMIT 1"},
        {"a workflow left unfinished", "UPDATE chaos_wf.workflows SET status = 0 WHERE gid = 'chaos-0'"},
    };
    const figures real = f_;
    self_testing_ = true;
    for (const auto& [what, sql] : damages) {
      pqxx::connection c(pg_url_);
      pqxx::work tx(c);
      if (tx.exec(sql).affected_rows() == 0) {
        log_line("self-test: nothing to damage for '" + what + "'; skipped");
        continue;
      }
      f_ = figures{};
      check(tx);
      if (f_.anomalies == 0) {
        ++real_anomalies_missed_;
        log_line("self-test FAILED: the checks did not notice " + what);
      }
      tx.abort();
    }
    self_testing_ = false;
    f_ = real;
    f_.anomalies += real_anomalies_missed_;
  }

  // The checks:
  //  * every workflow finished (succeeded or rolled back); none is stuck;
  //  * the sum of all balances is unchanged, nothing is left frozen;
  //  * each account's balance is its opening balance plus the transfers that
  //    succeeded according to the journal;
  //  * the barrier tables show no operation applied twice, and agree with the
  //    journal: a succeeded transfer applied TransOut and TransIn and no
  //    compensation; a rolled-back one did not keep a TransIn, and reverted
  //    its TransOut exactly when it had applied it;
  //  * no balance ever went negative (the audit history of every change).
  // self_test() shows that each kind of damage is noticed.
  void check(pqxx::transaction_base& tx) {
    f_.transfers = transfers_;

    // Workflows and their inputs.
    struct wf_row {
      std::string gid, name, from, to;
      std::int64_t amount = 0;
      int status = 0;
    };
    std::vector<wf_row> rows;
    for (const auto& r : tx.exec(
             "SELECT gid, name, status, convert_from(input, 'UTF8')::jsonb->>'from',"
             " convert_from(input, 'UTF8')::jsonb->>'to', (convert_from(input, 'UTF8')::jsonb->>'amount')::bigint"
             " FROM chaos_wf.workflows"))
      rows.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[3].as<std::string>(), r[4].as<std::string>(),
                      r[5].as<std::int64_t>(), r[2].as<int>()});
    if (rows.size() != transfers_)
      anomaly(std::to_string(rows.size()) + " workflows stored, " + std::to_string(transfers_) + " transfers planned");
    for (const auto& w : rows) {
      if (w.status == 1) ++f_.succeeded;
      else if (w.status == 2) ++f_.rolled_back;
      else {
        ++f_.unfinished;
        anomaly(w.gid + " is not finished (status " + std::to_string(w.status) + ")");
      }
    }

    // Balances against the journal.
    std::map<std::string, std::int64_t> expected[2], actual[2];
    std::int64_t total = 0;
    for (int b = 0; b < 2; ++b) {
      for (int i = 0; i < o_.accounts; ++i) expected[b][account(i)] = o_.initial;
      for (const auto& r : tx.exec("SELECT account, balance, frozen FROM " + banks_[b].schema + ".accounts")) {
        actual[b][r[0].as<std::string>()] = r[1].as<std::int64_t>();
        total += r[1].as<std::int64_t>();
        if (r[2].as<std::int64_t>() != 0) anomaly(banks_[b].proc.name + " " + r[0].as<std::string>() + " has money frozen");
      }
    }
    for (const auto& w : rows) {
      if (w.status != 1) continue;
      const int from = w.name == "transfer" ? 0 : 1;
      expected[from][w.from] -= w.amount;
      expected[1 - from][w.to] += w.amount;
    }
    const std::int64_t opening = 2 * o_.accounts * o_.initial;
    if (total != opening) anomaly("the balances sum to " + std::to_string(total) + ", not " + std::to_string(opening));
    for (int b = 0; b < 2; ++b)
      if (expected[b] != actual[b])
        for (const auto& [account, balance] : expected[b])
          if (actual[b][account] != balance)
            anomaly(banks_[b].proc.name + " " + account + " holds " + std::to_string(actual[b][account]) +
                    ", the journal says " + std::to_string(balance));

    // The barriers.
    std::set<std::string> applied[2];  // "gid/branch/op" applied on each bank
    for (int b = 0; b < 2; ++b) {
      for (const auto& r : tx.exec("SELECT gid, branch_id, op, count(*) FROM " + banks_[b].schema +
                                   ".barrier WHERE reason = op GROUP BY gid, branch_id, op")) {
        const std::string key = r[0].as<std::string>() + "/" + r[1].as<std::string>() + "/" + r[2].as<std::string>();
        if (r[3].as<int>() != 1) anomaly(banks_[b].proc.name + " applied " + key + " " + r[3].as<std::string>() + " times");
        applied[b].insert(key);
      }
    }
    for (const auto& w : rows) {
      const int from = w.name == "transfer" ? 0 : 1, to = 1 - from;
      const bool out = applied[from].count(w.gid + "/01/action") > 0;
      const bool out_reverted = applied[from].count(w.gid + "/01/rollback") > 0;
      const bool in = applied[to].count(w.gid + "/02/action") > 0;
      const bool in_reverted = applied[to].count(w.gid + "/02/rollback") > 0;
      if (w.status == 1 && !(out && in && !out_reverted && !in_reverted))
        anomaly(w.gid + " succeeded, but its barriers say TransOut " + (out ? "applied" : "not applied") +
                ", TransIn " + (in ? "applied" : "not applied") + (out_reverted || in_reverted ? ", reverted" : ""));
      if (w.status == 2 && (out != out_reverted || (in && !in_reverted)))
        anomaly(w.gid + " rolled back, but its barriers disagree (TransOut " + std::to_string(out) + "/" +
                std::to_string(out_reverted) + ", TransIn " + std::to_string(in) + "/" + std::to_string(in_reverted) +
                ")");
    }

    // Never negative, at any moment.
    const auto negative = tx.exec("SELECT count(*) FROM chaos_audit.balances WHERE balance < 0 OR frozen < 0");
    if (negative[0][0].as<int>() != 0) anomaly(negative[0][0].as<std::string>() + " negative balances in the history");
    f_.balance_changes = tx.exec("SELECT count(*) FROM chaos_audit.balances")[0][0].as<std::size_t>();
  }

  void print_figures() {
    std::string faults;
    for (const auto& [kind, n] : f_.faults) faults += " " + kind + "=" + std::to_string(n);
    int restarts = 0;
    for (child* c : all_children()) restarts += c->unexpected_exits;
    char quiesce[32];
    std::snprintf(quiesce, sizeof quiesce, "%.1fs", f_.quiesce_s);
    char run_s[32];
    std::snprintf(run_s, sizeof run_s, "%.0fs", f_.run_s);
    std::printf(
        "chaos figures: seed=%llu transfers=%zu succeeded=%zu rolled_back=%zu unfinished=%zu faults:%s "
        "unexpected_exits=%d balance_changes=%zu anomalies=%d checks_self_test=%s quiesce=%s run=%s\n",
        static_cast<unsigned long long>(o_.seed), f_.transfers, f_.succeeded, f_.rolled_back, f_.unfinished,
        faults.c_str(), restarts, f_.balance_changes, f_.anomalies, real_anomalies_missed_ == 0 ? "passed" : "FAILED", f_.quiesce_s < 0 ? "never" : quiesce, run_s);
    std::fflush(stdout);
  }

  options o_;
  std::mt19937_64 random_;
  std::string pg_url_;
  std::size_t transfers_ = 0;
  bank_proc banks_[2];
  child orchestrators_[2];
  figures f_;
  bool self_testing_ = false;
  int real_anomalies_missed_ = 0;
};

int usage() {
  std::fprintf(stderr,
               "usage: wf_chaos --bin DIR [--seconds S] [--rate R] [--accounts M] [--initial B]\n"
               "                [--concurrency C] [--seed N] [--work DIR] [--quiesce-bound S] [--lease-ms L]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  o.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (i + 1 >= argc) return usage();
      const std::string v = argv[++i];
      if (arg == "--bin") o.bin = v;
      else if (arg == "--work") o.work = v;
      else if (arg == "--seconds") o.seconds = std::stoi(v);
      else if (arg == "--rate") o.rate = std::stod(v);
      else if (arg == "--accounts") o.accounts = std::stoi(v);
      else if (arg == "--initial") o.initial = std::stoll(v);
      else if (arg == "--concurrency") o.concurrency = std::stoi(v);
      else if (arg == "--seed") o.seed = std::stoull(v);
      else if (arg == "--quiesce-bound") o.quiesce_bound = std::stoi(v);
      else if (arg == "--lease-ms") o.lease_ms = std::stoi(v);
      else return usage();
    }
  } catch (const std::exception&) {
    return usage();
  }
  if (o.bin.empty() || o.seconds < 1 || o.rate <= 0 || o.accounts < 1 || o.initial < 1) return usage();
  if (env("WF_TEST_PG_URL").empty()) {
    std::fprintf(stderr, "wf_chaos: WF_TEST_PG_URL is not set (scripts/chaos starts a throwaway PostgreSQL)\n");
    return 2;
  }
  if (o.work.empty()) {
    char dir[] = "/tmp/wf-chaos.XXXXXX";
    if (!::mkdtemp(dir)) return 1;
    o.work = dir;
  } else if (::mkdir(o.work.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "wf_chaos: cannot create %s: %s\n", o.work.c_str(), std::strerror(errno));
    return 1;
  }
  for (const char* name : {"bank-a", "bank-b", "orchestrator-0", "orchestrator-1", "pg_ctl"})
    ::unlink((o.work + "/" + name + ".log").c_str());  // the logs of an earlier run
  std::signal(SIGPIPE, SIG_IGN);
  log_line("seed " + std::to_string(o.seed) + ", " + std::to_string(o.seconds) + " s of faults, logs in " + o.work);
  try {
    return chaos(o).main();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wf_chaos: %s (logs in %s)\n", e.what(), o.work.c_str());
    return 1;
  }
}

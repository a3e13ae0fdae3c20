// wf_bench: end-to-end benchmarks of wf. Prints one JSON line per scenario.
//
// usage: wf_bench [--pg URL] [--scenario NAME] [--short] [--smoke] [--reference-tps N]
//   scenarios: memory_steps, memory_parked, pg_2branch, pg_10branch, pg_10parallel, recovery, listing
//   (pgbench and pg_test_fsync, the physical reference, are run by scripts/bench)
//
// Postgres scenarios report, per workflow: transactions committed, rows
// written and WAL bytes (pg_stat_database / pg_stat_wal deltas), and client
// and server CPU seconds (getrusage / the server processes' /proc stat).
#include <wf/memory_store.hpp>
#include <wf/postgres_store.hpp>
#include <wf/runtime.hpp>
#include <wf/when_all.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <random>
#include <iostream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

struct settings {
  std::string pg;
  std::string scenario;
  bool short_run = false;
  bool smoke = false;
  double reference_tps = 0;  // pgbench's one-row INSERTs per second, measured by scripts/bench
};

std::vector<json::object> results;

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

double client_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of every process whose command line says "postgres".
double server_cpu() {
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (auto* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream comm(std::string("/proc/") + e->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("postgres", 0) != 0) continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    std::vector<std::string> f;
    while (rest >> field) f.push_back(field);
    if (f.size() > 12) total += (std::stod(f[11]) + std::stod(f[12])) / tick;  // utime, stime
  }
  closedir(d);
  return total;
}

struct pg_counters {
  double commits = 0, rows = 0, wal_bytes = 0;
};

pg_counters read_pg_counters(const std::string& url) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  pg_counters p;
  auto r = tx.exec(
      "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
      "WHERE datname = current_database()");
  p.commits = r[0][0].as<double>();
  p.rows = r[0][1].as<double>();
  p.wal_bytes = tx.exec("SELECT wal_bytes FROM pg_stat_wal")[0][0].as<double>();
  return p;
}

// Backends report their statistics when they go idle (at most once a second)
// or exit; read until the figures stop moving, once the store that did the
// work has closed its connections.
pg_counters settled_counters(const std::string& url) {
  auto last = read_pg_counters(url);
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto now = read_pg_counters(url);
    if (now.commits - last.commits <= 1 && now.rows == last.rows && now.wal_bytes == last.wal_bytes) return now;
    last = now;
  }
  return last;
}

std::string fresh_schema(const std::string& tag) {
  static const unsigned run = std::random_device{}() % 1000000;
  return "bench_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(run);
}

std::shared_ptr<wf::postgres_store> open_pg(const settings& s, const std::string& schema) {
  wf::postgres_options o;
  o.connection = s.pg;
  o.schema = schema;
  return wf::postgres_store::open(o);
}

// A workflow of `branches` no-op branches (each action completes on the next
// turn of the event loop, as a fast participant would).
void register_noop(wf::runtime& rt, int branches) {
  rt.register_workflow("noop", [branches](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto action = [](const wf::branch_context&) -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    };
    for (int i = 0; i < branches; ++i) co_await w.new_branch("b").run(action);
  });
}

// A workflow of `branches` no-op branches run at once (wf::when_all).
void register_parallel(wf::runtime& rt, int branches) {
  rt.register_workflow("noop", [branches](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto action = [](const wf::branch_context&) -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    };
    std::vector<asio::awaitable<void>> all;
    for (int i = 0; i < branches; ++i) all.push_back(w.new_branch("b" + std::to_string(i)).run(action));
    co_await wf::when_all(std::move(all));
  });
}

struct latencies {
  std::vector<double> ms;
  json::object summary() {
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) { return ms.empty() ? 0.0 : ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))]; };
    return {{"p50_ms", at(0.50)}, {"p99_ms", at(0.99)}, {"max_ms", ms.empty() ? 0.0 : ms.back()}};
  }
};

// Runs `count` workflows named `prefix-i`, at most `concurrency` at a time;
// returns per-workflow latencies.
latencies run_closed_loop(asio::io_context& io, wf::runtime& rt, const std::string& prefix, int count, int concurrency) {
  latencies lat;
  lat.ms.reserve(static_cast<std::size_t>(count));
  int next = 0, done = 0;
  std::function<void()> launch = [&] {
    if (next >= count) return;
    const int i = next++;
    const auto start = steady::now();
    asio::co_spawn(io, rt.execute("noop", prefix + "-" + std::to_string(i), ""),
                   [&, start](std::exception_ptr e, wf::outcome) {
                     if (e) std::rethrow_exception(e);
                     lat.ms.push_back(seconds_since(start) * 1000.0);
                     ++done;
                     launch();
                   });
  };
  for (int i = 0; i < concurrency; ++i) launch();
  io.restart();
  io.run();
  return lat;
}

void print(json::object o) {
  std::cout << json::serialize(o) << std::endl;
  results.push_back(std::move(o));
}

std::string cell(const json::object& o, const char* key, int precision = 0) {
  auto it = o.find(key);
  if (it == o.end()) return "-";
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(precision);
  s << it->value().to_number<double>();
  return s.str();
}

void print_table() {
  std::printf("\n%-14s %5s %6s %12s %12s %8s %8s %8s %7s %9s %7s %9s %9s\n", "scenario", "conc", "branch",
              "workflows/s", "steps/s", "p50 ms", "p99 ms", "max ms", "tx/wf", "writes/wf", "rows/wf", "WAL B/wf",
              "cpu ms/wf");
  for (const auto& o : results) {
    const auto name = std::string(o.at("scenario").as_string());
    if (name.rfind("pg_", 0) != 0) continue;
    const double cpu = (o.at("client_cpu_s_per_workflow").to_number<double>() +
                        o.at("server_cpu_s_per_workflow").to_number<double>()) * 1000.0;
    std::printf("%-14s %5s %6s %12s %12s %8s %8s %8s %7s %9s %7s %9s %9.3f\n", name.c_str(),
                cell(o, "concurrency").c_str(), cell(o, "branches").c_str(), cell(o, "workflows_per_s").c_str(),
                cell(o, "steps_per_s").c_str(), cell(o, "p50_ms", 2).c_str(), cell(o, "p99_ms", 2).c_str(),
                cell(o, "max_ms", 2).c_str(), cell(o, "transactions_per_workflow", 2).c_str(),
                cell(o, "journal_writes_per_workflow", 2).c_str(), cell(o, "rows_written_per_workflow", 1).c_str(),
                cell(o, "wal_bytes_per_workflow").c_str(), cpu);
  }
  for (const auto& o : results) {
    const auto name = std::string(o.at("scenario").as_string());
    if (name == "memory_steps")
      std::printf("memory store: %s steps/s on one thread, %s ns per step\n", cell(o, "steps_per_s").c_str(),
                  cell(o, "ns_per_step").c_str());
    if (name == "memory_parked")
      std::printf("parked workflow: %s bytes each\n", cell(o, "bytes_per_parked_workflow").c_str());
    if (name == "recovery")
      std::printf("recovery: %s workflows finished %s s after the new process started\n", cell(o, "workflows").c_str(),
                  cell(o, "seconds_to_finish_all", 3).c_str());
    if (name == "listing")
      std::printf("listing a page of 50 of %s workflows: failed of one name %s ms (half-way %s ms, counted %s ms), "
                  "stuck %s ms, no filter %s ms, one name %s ms\n",
                  cell(o, "workflows").c_str(), cell(o, "ms_failed_of_one_name", 2).c_str(),
                  cell(o, "ms_failed_of_one_name_halfway", 2).c_str(),
                  cell(o, "ms_failed_of_one_name_with_count", 2).c_str(), cell(o, "ms_stuck", 2).c_str(),
                  cell(o, "ms_no_filter", 2).c_str(), cell(o, "ms_one_name", 2).c_str());
    if (name == "pg_2branch" && o.at("concurrency").as_int64() == 64 && o.contains("steps_per_s_over_pgbench_tps"))
      std::printf("steps/s at concurrency 64 / pgbench one-row INSERT tps: %s\n",
                  cell(o, "steps_per_s_over_pgbench_tps", 2).c_str());
  }
}

// 1. The runtime itself: steps per second on one thread, on the memory store.
void memory_steps(const settings& s) {
  const int workflows = s.smoke ? 20 : (s.short_run ? 2000 : 10000);
  const int branches = 20;
  asio::io_context io;
  wf::runtime rt(io.get_executor(), std::make_shared<wf::memory_store>());
  register_noop(rt, branches);
  const auto cpu0 = client_cpu();
  const auto t0 = steady::now();
  auto lat = run_closed_loop(io, rt, "m", workflows, 64);
  const double secs = seconds_since(t0);
  const double steps = static_cast<double>(workflows) * branches;
  json::object o{{"scenario", "memory_steps"}, {"workflows", workflows}, {"branches", branches},
                 {"steps_per_s", steps / secs}, {"ns_per_step", secs * 1e9 / steps},
                 {"client_cpu_s_per_step", (client_cpu() - cpu0) / steps}};
  for (auto& [k, v] : lat.summary()) o[k] = v;
  print(o);
}

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE) / 1024;
}

// 5. Memory per parked workflow: workflows waiting inside a branch.
void memory_parked(const settings& s) {
  const int n = s.smoke ? 100 : 10000;
  asio::io_context io;
  auto store = std::make_shared<wf::memory_store>();
  wf::runtime rt(io.get_executor(), store);
  auto gate = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
  rt.register_workflow("parked", [gate](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto wait = [gate](const wf::branch_context&) -> asio::awaitable<void> {
      boost::system::error_code ec;
      co_await gate->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    };
    co_await w.new_branch("wait").run(wait);
  });
  // Warm up allocators with a first batch, then measure a second one.
  auto park = [&](const std::string& prefix) {
    for (int i = 0; i < n; ++i) asio::co_spawn(io, rt.execute("parked", prefix + std::to_string(i), ""), asio::detached);
    io.restart();
    io.poll();
  };
  park("warm-");
  const long before = rss_kib();
  park("p-");
  const long after = rss_kib();
  print({{"scenario", "memory_parked"}, {"workflows", n},
         {"bytes_per_parked_workflow", static_cast<double>(after - before) * 1024.0 / n}});
  gate->cancel();
  io.restart();
  io.run();
}

// 2 and 3. Postgres, closed loop at a given concurrency.
void pg_scenario(const settings& s, const std::string& name, int branches, int concurrency, bool parallel = false) {
  auto register_it = [&](wf::runtime& rt) { parallel ? register_parallel(rt, branches) : register_noop(rt, branches); };
  const int count = s.smoke ? 20 : (s.short_run ? 500 : 2000);
  const int warmup = s.smoke ? 5 : 200;
  const auto schema = fresh_schema(name + std::to_string(concurrency));
  {  // warm-up, in a store of its own, closed before counting
    auto store = open_pg(s, schema);
    asio::io_context io;
    wf::runtime rt(io.get_executor(), store);
    register_it(rt);
    run_closed_loop(io, rt, "warm", warmup, concurrency);
  }
  const auto before = settled_counters(s.pg);
  double secs = 0, ccpu = 0, scpu = 0;
  std::uint64_t group_commits = 0, writes = 0;
  latencies lat;
  {
    auto store = open_pg(s, schema);
    asio::io_context io;
    wf::runtime rt(io.get_executor(), store);
    register_it(rt);
    const auto stats0 = store->stats();
    const auto ccpu0 = client_cpu();
    const auto scpu0 = server_cpu();
    const auto t0 = steady::now();
    lat = run_closed_loop(io, rt, "w", count, concurrency);
    secs = seconds_since(t0);
    ccpu = client_cpu() - ccpu0;
    scpu = server_cpu() - scpu0;
    group_commits = store->stats().transactions - stats0.transactions;
    writes = store->stats().writes - stats0.writes;
  }
  const auto after = settled_counters(s.pg);
  const double n = count;
  json::object o{{"scenario", name},
                 {"branches", branches},
                 {"concurrency", concurrency},
                 {"workflows", count},
                 {"workflows_per_s", n / secs},
                 {"steps_per_s", n * branches / secs},
                 {"transactions_per_workflow", (after.commits - before.commits) / n},
                 {"wf_group_commits_per_workflow", static_cast<double>(group_commits) / n},
                 {"journal_writes_per_workflow", static_cast<double>(writes) / n},
                 {"rows_written_per_workflow", (after.rows - before.rows) / n},
                 {"wal_bytes_per_workflow", (after.wal_bytes - before.wal_bytes) / n},
                 {"client_cpu_s_per_workflow", ccpu / n},
                 {"server_cpu_s_per_workflow", scpu / n}};
  for (auto& [k, v] : lat.summary()) o[k] = v;
  if (s.reference_tps > 0) o["steps_per_s_over_pgbench_tps"] = n * branches / secs / s.reference_tps;
  print(o);
}

// 4. Recovery: a child process journals 1000 workflows past their first
// branch and is SIGKILLed; a new process resumes them all.
int recovery_child(const std::string& url, const std::string& schema, int count, bool resume) {
  const auto t0 = steady::now();
  wf::postgres_options o;
  o.connection = url;
  o.schema = schema;
  auto store = wf::postgres_store::open(o);
  const double opened = seconds_since(t0);
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store, {.executor_id = "bench-recovery"});
  auto gate = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
  rt.register_workflow("two", [gate, resume](wf::workflow& w, std::string) -> asio::awaitable<void> {
    auto first = [](const wf::branch_context&) -> asio::awaitable<void> { co_return; };
    auto second = [gate, resume](const wf::branch_context&) -> asio::awaitable<void> {
      if (!resume) {  // the first process hangs here until it is killed
        boost::system::error_code ec;
        co_await gate->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    };
    co_await w.new_branch("first").run(first);
    co_await w.new_branch("second").run(second);
  });
  if (!resume) {
    for (int i = 0; i < count; ++i) asio::co_spawn(io, rt.execute("two", "r-" + std::to_string(i), ""), asio::detached);
    io.run();
    return 0;
  }
  int finished = 0;
  std::string first_error;  // what a failing execute threw, for the report
  double recovered = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await rt.recover();
        recovered = seconds_since(t0);
        // Every caller waits for its workflow at once, as a service's callers would.
        for (int i = 0; i < count; ++i) {
          auto wait = [&rt, &finished, &first_error, i]() -> asio::awaitable<void> {
            try {
              const auto o = co_await rt.execute("two", "r-" + std::to_string(i), "");
              if (o.succeeded())
                ++finished;
              else if (first_error.empty())
                first_error = "r-" + std::to_string(i) + ": " + o.reason;
            } catch (const std::exception& e) {
              if (first_error.empty()) first_error = "r-" + std::to_string(i) + ": " + e.what();
            }
          };
          asio::co_spawn(io, wait, asio::detached);
        }
      },
      asio::detached);
  io.run();
  // Where the time went, for docs/performance.md.
  std::cerr << "recovery phases: store open " << opened << " s, recover() done " << recovered
            << " s, all finished " << seconds_since(t0) << " s, " << store->stats().transactions
            << " group commits of " << store->stats().writes << " writes\n";
  if (finished != count)
    std::cerr << "recovery: " << count - finished << " of " << count << " did not succeed; first: " << first_error
              << "\n";
  return finished == count ? 0 : 1;
}

void recovery(const settings& s) {
  const int count = s.smoke ? 20 : 1000;
  const auto schema = fresh_schema("recovery");
  const pid_t first = fork();
  if (first == 0) _exit(recovery_child(s.pg, schema, count, false));
  // Wait until every workflow has its first branch journaled.
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      pqxx::connection c(s.pg);
      pqxx::nontransaction tx(c);
      auto r = tx.exec("SELECT count(*) FROM " + schema + ".workflows WHERE journal_size >= 1");
      if (r[0][0].as<int>() >= count) break;
    } catch (const std::exception&) {
      // the schema is not there yet
    }
  }
  kill(first, SIGKILL);
  int status = 0;
  waitpid(first, &status, 0);
  const auto t0 = steady::now();
  const pid_t second = fork();
  if (second == 0) _exit(recovery_child(s.pg, schema, count, true));
  waitpid(second, &status, 0);
  const double secs = seconds_since(t0);
  print({{"scenario", "recovery"}, {"workflows", count}, {"seconds_to_finish_all", secs},
         {"ok", WIFEXITED(status) && WEXITSTATUS(status) == 0}});
}

// 6. Operators' listings (store_admin::list) in a large table: 1,000,000
// workflows of 10 names, 90% succeeded, 9% failed, 1% stuck, written
// straight with SQL; pages of 50 with the filters an operator uses.
void listing(const settings& s) {
  const int count = s.smoke ? 10000 : 1000000;
  const auto schema = fresh_schema("list");
  auto store = open_pg(s, schema);
  {
    pqxx::connection c(s.pg);
    pqxx::work tx(c);
    tx.exec("INSERT INTO " + schema + R"(.workflows (gid, name, input, status, result, epoch, owner, lease_expires,
              attempts, last_error, next_attempt_at, journal_size, created_at, updated_at)
            SELECT 'wf-' || lpad(i::text, 8, '0'), 'flow' || (i % 10), '{7d', CASE WHEN i % 100 = 0 THEN 3
                   WHEN i % 100 < 10 THEN 2 ELSE 1 END, '', 1, 'runner', now(), 0, '', now(), 2,
                   now() - (i || ' seconds')::interval, now()
            FROM generate_series(1, )" + std::to_string(count) + ") AS i");
    tx.commit();
    pqxx::nontransaction(c).exec("ANALYZE " + schema + ".workflows");
  }
  auto& admin = *store->admin();
  asio::io_context io;
  // The median of 21 calls of `q`, in ms (each first call warms the plan cache).
  auto median_ms = [&](wf::workflow_query q) {
    std::vector<double> ms;
    for (int i = 0; i < 21; ++i) {
      const auto t0 = steady::now();
      std::optional<wf::workflow_page> page;
      asio::co_spawn(io, admin.list(q), [&](std::exception_ptr e, wf::workflow_page p) {
        if (e) std::rethrow_exception(e);
        page = std::move(p);
      });
      io.restart();
      io.run();
      ms.push_back(seconds_since(t0) * 1000);
      if (!page || page->workflows.size() != q.limit) throw std::runtime_error("listing: a short page");
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  wf::workflow_query failed_of_one;
  failed_of_one.name = "flow3";
  failed_of_one.status = wf::workflow_status::failed;
  wf::workflow_query failed_later = failed_of_one;
  char halfway[32];
  std::snprintf(halfway, sizeof halfway, "wf-%08d", count / 2);
  failed_later.after = halfway;  // a page half-way through
  wf::workflow_query stuck;
  stuck.status = wf::workflow_status::stuck;
  wf::workflow_query everything;
  wf::workflow_query of_one;
  of_one.name = "flow7";
  wf::workflow_query counted = failed_of_one;
  counted.count = true;
  print({{"scenario", "listing"},
         {"workflows", count},
         {"page", 50},
         {"ms_failed_of_one_name", median_ms(failed_of_one)},
         {"ms_failed_of_one_name_halfway", median_ms(failed_later)},
         {"ms_stuck", median_ms(stuck)},
         {"ms_no_filter", median_ms(everything)},
         {"ms_one_name", median_ms(of_one)},
         {"ms_failed_of_one_name_with_count", median_ms(counted)}});
  pqxx::connection c(s.pg);
  pqxx::nontransaction(c).exec("DROP SCHEMA " + schema + " CASCADE");
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pg" && i + 1 < argc) {
      s.pg = argv[++i];
    } else if (a == "--scenario" && i + 1 < argc) {
      s.scenario = argv[++i];
    } else if (a == "--short") {
      s.short_run = true;
    } else if (a == "--smoke") {
      s.smoke = true;
    } else if (a == "--reference-tps" && i + 1 < argc) {
      s.reference_tps = std::atof(argv[++i]);
    } else {
      std::cerr << "usage: wf_bench [--pg URL] [--scenario NAME] [--short] [--smoke] [--reference-tps N]\n";
      return EXIT_FAILURE;
    }
  }
  auto want = [&](const std::string& name) { return s.scenario.empty() || s.scenario == name; };
  if (want("memory_steps")) memory_steps(s);
  if (want("memory_parked")) memory_parked(s);
  if (!s.pg.empty()) {
    if (want("pg_2branch"))
      for (int c : {1, 16, 64, 256}) pg_scenario(s, "pg_2branch", 2, c);
    if (want("pg_10branch")) pg_scenario(s, "pg_10branch", 10, 64);
    if (want("pg_10parallel")) pg_scenario(s, "pg_10parallel", 10, 64, true);
    if (want("recovery")) recovery(s);
    if (want("listing")) listing(s);
  }
  print_table();
  return EXIT_SUCCESS;
}

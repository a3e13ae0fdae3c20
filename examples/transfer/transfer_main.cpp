// wf_transfer: the orchestrator of examples/transfer. Runs transfers as the
// `transfer` workflow, journaled in PostgreSQL, against two bank processes
// (wf_bank) over HTTP or gRPC.
//
// One transfer:
//   wf_transfer --db CONNINFO --via http|grpc
//               --bank-a http://127.0.0.1:8081 --bank-b http://127.0.0.1:8082
//               [--bank-a-grpc 127.0.0.1:9081 --bank-b-grpc 127.0.0.1:9082]
//               --gid demo-1 [--from alice] [--to bob] [--amount 30]
//               [--fail-at-trans-in] [--crash-after-trans-out]
//
// It prints the balances (over HTTP, GET /api/balances) before and after.
// --crash-after-trans-out kills the process (SIGKILL) as soon as TransOut's
// outcome is journaled. Run the same command again without it: the restarted
// orchestrator takes its unfinished workflow back (recover(), same executor
// id) and finishes it from the journal, without sending TransOut again.
//
// A load of random transfers (the chaos test, tests/chaos):
//   wf_transfer ... --gid PREFIX --load N [--seed S] [--accounts M]
//               [--concurrency C] [--rate R --start-at UNIX_MS] [--shard K/S]
//               [--fail-percent P] [--max-amount A]
//               [--executor-id ID] [--lease-ms L] [--poll-ms P] [--call-timeout-ms T]
// Transfer i (gid PREFIX-i) moves 1..A between accounts acct-0..acct-(M-1),
// from bank-a to bank-b (workflow `transfer`) or back (`transfer-back`); P %
// of them are told to fail at TransIn. It is the same transfer in every run
// with the same seed. This process runs those with i % S == K, C at a time,
// transfer i starting no earlier than UNIX_MS + i/R seconds; it also runs
// the poller, so it takes over the workflows of a runner whose lease expired.
// Restarted with the same arguments, it recovers its own unfinished
// workflows and goes on; the transfers already finished return at once.
//
// Exit status: 0 when every workflow finished (succeeded or rolled back), 1 on
// an error.
#include "remote_bank.hpp"
#include "timeline.hpp"
#include "transfer_workflow.hpp"

#include <wf/postgres_store.hpp>
#include <wf/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>
#include <string>

#include <unistd.h>

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

struct load_settings {
  std::size_t transfers = 0;  // 0: one transfer, not a load
  std::uint64_t seed = 1;
  int accounts = 4;
  int concurrency = 8;
  int shard = 0, shards = 1;
  double rate = 0;               // transfers per second, over all shards; 0: no pacing
  std::int64_t start_at_ms = 0;  // Unix time the pacing counts from
  int fail_percent = 10;
  std::int64_t max_amount = 40;
};

struct settings {
  std::string db, via = "http", bank_a, bank_b, bank_a_grpc, bank_b_grpc, gid;
  std::string schema = "wf";
  std::string executor_id = "transfer-orchestrator";
  transfer::transfer_request transfer{"alice", "bob", 30, false};
  bool crash_after_trans_out = false;
  load_settings load;
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  std::chrono::milliseconds poll{std::chrono::seconds(1)};
  std::chrono::milliseconds call_timeout{std::chrono::seconds(3)};
};

void say(const std::string& text) { transfer::print_line("orchestrator " + text); }

// GET <base>/api/balances, as "alice=100 (frozen 0)"-style text.
std::string balances(const std::string& base) {
  try {
    auto url = boost::urls::parse_uri(base);
    if (!url) return "?";
    asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(3));
    asio::ip::tcp::resolver resolver(io);
    stream.connect(resolver.resolve(std::string(url->host()), std::string(url->port())));
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/api/balances", 11};
    req.set(bhttp::field::host, std::string(url->host()));
    bhttp::write(stream, req);
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    if (res.result() != bhttp::status::ok) return "? (" + res.body() + ")";
    std::string out;
    const boost::json::value parsed = boost::json::parse(res.body());
    for (const auto& [account, state] : parsed.as_object()) {
      out += std::string(account) + "=" + std::to_string(state.at("balance").as_int64());
      if (const auto frozen = state.at("frozen").as_int64()) out += " (frozen " + std::to_string(frozen) + ")";
      out += " ";
    }
    return out.empty() ? "(no accounts)" : out;
  } catch (const std::exception& e) {
    return std::string("? (") + e.what() + ")";
  }
}

void show_balances(const settings& s, const char* when) {
  say(std::string("balances ") + when + ": bank-a " + balances(s.bank_a) + "| bank-b " + balances(s.bank_b));
}

asio::awaitable<wf::outcome> run(wf::runtime& rt, const settings& s) {
  const std::size_t resumed = co_await rt.recover();
  if (resumed > 0) say("recover(): took back " + std::to_string(resumed) + " unfinished workflow(s) of this runner");
  co_return co_await rt.execute(transfer::workflow_name, s.gid, transfer::to_json(s.transfer));
}

// ---- a load of random transfers

struct planned {
  std::string name, gid;
  transfer::transfer_request request;
};

// Transfer i of the load: the same for every process given the same seed.
planned plan(const settings& s, std::size_t i) {
  std::mt19937_64 random(s.load.seed * 1000003u + i);
  const bool back = random() % 2 == 1;
  planned p;
  p.name = back ? "transfer-back" : transfer::workflow_name;
  p.gid = s.gid + "-" + std::to_string(i);
  const auto accounts = static_cast<std::uint64_t>(s.load.accounts);
  p.request.from = "acct-" + std::to_string(random() % accounts);
  p.request.to = "acct-" + std::to_string(random() % accounts);
  p.request.amount = 1 + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(s.load.max_amount));
  p.request.fail_at_trans_in = static_cast<int>(random() % 100) < s.load.fail_percent;
  return p;
}

struct load_state {
  std::size_t next = 0;
  int workers = 0;
  std::size_t succeeded = 0, rolled_back = 0, lease_lost = 0, errors = 0;
  std::exception_ptr fatal;
};

bool is_bug(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const wf::nondeterminism_error&) {
    return true;
  } catch (const wf::workflow_stuck_error&) {
    return true;
  } catch (const wf::conflict_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

asio::awaitable<void> load_worker(wf::runtime& rt, const settings& s, load_state& state) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (state.next < s.load.transfers && !state.fatal) {
    const std::size_t i = state.next;
    state.next += static_cast<std::size_t>(s.load.shards);
    planned p = plan(s, i);
    if (s.load.rate > 0) {
      const auto due = std::chrono::system_clock::time_point(std::chrono::milliseconds(s.load.start_at_ms)) +
                       std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::duration<double>(static_cast<double>(i) / s.load.rate));
      const auto now = std::chrono::system_clock::now();
      if (due > now) {
        timer.expires_after(due - now);
        co_await timer.async_wait(asio::use_awaitable);
      }
    }
    const boost::json::value input = transfer::to_json(p.request);
    for (;;) {
      std::exception_ptr error;
      try {
        std::string name = p.name, gid = p.gid;
        const wf::outcome out = co_await rt.execute(std::move(name), std::move(gid), input);
        ++(out.succeeded() ? state.succeeded : state.rolled_back);
        break;
      } catch (const wf::lease_lost_error& e) {
        // Another runner took the workflow over (this one was frozen past its
        // lease): execute again, which waits for that runner to finish it.
        ++state.lease_lost;
        say(s.executor_id + ": " + p.gid + ": " + e.what() + "; waiting for the runner that has it");
      } catch (const std::exception& e) {
        error = std::current_exception();
        ++state.errors;
        say(s.executor_id + ": " + p.gid + ": " + e.what());
      }
      if (error && is_bug(error)) {
        state.fatal = error;
        co_return;
      }
      timer.expires_after(std::chrono::milliseconds(200));
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
}

asio::awaitable<void> run_load(wf::runtime& rt, const settings& s, load_state& state) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    bool recovered = false;
    try {
      const std::size_t resumed = co_await rt.recover();
      if (resumed > 0) say(s.executor_id + ": recover(): took back " + std::to_string(resumed) + " unfinished workflow(s)");
      recovered = true;
    } catch (const std::exception& e) {
      say(s.executor_id + ": recover(): " + e.what() + "; trying again");
    }
    if (recovered) break;
    timer.expires_after(std::chrono::milliseconds(200));
    co_await timer.async_wait(asio::use_awaitable);
  }
  rt.start();
  state.next = static_cast<std::size_t>(s.load.shard);
  state.workers = s.load.concurrency;
  for (int w = 0; w < s.load.concurrency; ++w)
    asio::co_spawn(timer.get_executor(), load_worker(rt, s, state), [&rt, &state](std::exception_ptr e) {
      if (e && !state.fatal) state.fatal = e;
      if (--state.workers == 0) rt.stop();
    });
}

int usage() {
  std::fprintf(stderr,
               "usage: wf_transfer --db CONNINFO --bank-a URL --bank-b URL --gid GID [--via http|grpc]\n"
               "                   [--bank-a-grpc HOST:PORT --bank-b-grpc HOST:PORT] [--schema SCHEMA]\n"
               "                   [--from ACCOUNT] [--to ACCOUNT] [--amount N] [--fail-at-trans-in]\n"
               "                   [--crash-after-trans-out]\n"
               "       a load:     [--load N] [--seed S] [--accounts M] [--concurrency C] [--rate R]\n"
               "                   [--start-at UNIX_MS] [--shard K/S] [--fail-percent P] [--max-amount A]\n"
               "                   [--executor-id ID] [--lease-ms L] [--poll-ms P] [--call-timeout-ms T]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    auto value = [&] { return std::string(argv[++i]); };
    if (arg == "--fail-at-trans-in") s.transfer.fail_at_trans_in = true;
    else if (arg == "--crash-after-trans-out") s.crash_after_trans_out = true;
    else if (!has_value) return usage();
    else if (arg == "--db") s.db = value();
    else if (arg == "--via") s.via = value();
    else if (arg == "--schema") s.schema = value();
    else if (arg == "--bank-a") s.bank_a = value();
    else if (arg == "--bank-b") s.bank_b = value();
    else if (arg == "--bank-a-grpc") s.bank_a_grpc = value();
    else if (arg == "--bank-b-grpc") s.bank_b_grpc = value();
    else if (arg == "--gid") s.gid = value();
    else if (arg == "--from") s.transfer.from = value();
    else if (arg == "--to") s.transfer.to = value();
    else if (arg == "--amount") s.transfer.amount = std::stoll(value());
    else if (arg == "--executor-id") s.executor_id = value();
    else if (arg == "--lease-ms") s.lease = std::chrono::milliseconds(std::stoll(value()));
    else if (arg == "--poll-ms") s.poll = std::chrono::milliseconds(std::stoll(value()));
    else if (arg == "--call-timeout-ms") s.call_timeout = std::chrono::milliseconds(std::stoll(value()));
    else if (arg == "--load") s.load.transfers = std::stoull(value());
    else if (arg == "--seed") s.load.seed = std::stoull(value());
    else if (arg == "--accounts") s.load.accounts = std::stoi(value());
    else if (arg == "--concurrency") s.load.concurrency = std::stoi(value());
    else if (arg == "--rate") s.load.rate = std::stod(value());
    else if (arg == "--start-at") s.load.start_at_ms = std::stoll(value());
    else if (arg == "--fail-percent") s.load.fail_percent = std::stoi(value());
    else if (arg == "--max-amount") s.load.max_amount = std::stoll(value());
    else if (arg == "--shard") {
      const std::string v = value();
      const auto slash = v.find('/');
      if (slash == std::string::npos) return usage();
      s.load.shard = std::stoi(v.substr(0, slash));
      s.load.shards = std::stoi(v.substr(slash + 1));
    } else return usage();
  }
  if (s.load.accounts < 1 || s.load.concurrency < 1 || s.load.max_amount < 1 || s.load.shards < 1 ||
      s.load.shard < 0 || s.load.shard >= s.load.shards || s.load.rate < 0)
    return usage();
  if (s.db.empty() || s.bank_a.empty() || s.bank_b.empty() || s.gid.empty()) return usage();
  if (s.via != "http" && s.via != "grpc") return usage();
  if (s.via == "grpc" && (s.bank_a_grpc.empty() || s.bank_b_grpc.empty())) return usage();

  try {
    asio::io_context io;
    wf::postgres_options pg;
    pg.connection = s.db;
    pg.schema = s.schema;
    // PostgreSQL may be restarting (the chaos test restarts it): keep trying for a minute.
    pg.wait_for_database = std::chrono::minutes(1);
    auto store = wf::postgres_store::open(pg);

    // A fixed executor id: a restarted orchestrator takes its own unfinished
    // workflows back at once, without waiting for the dead one's leases.
    wf::runtime_options options;
    options.executor_id = s.executor_id;
    options.lease_duration = s.lease;
    options.poll_interval = s.poll;
    wf::runtime rt(io.get_executor(), store, options);

    std::shared_ptr<transfer::bank> bank_a, bank_b;
    if (s.via == "http") {
      wf::http::client_options http_options;
      http_options.timeout = s.call_timeout;
      auto client = std::make_shared<wf::http::client>(io.get_executor(), http_options);
      bank_a = transfer::make_http_bank(client, s.bank_a);
      bank_b = transfer::make_http_bank(client, s.bank_b);
    } else {
      bank_a = transfer::make_grpc_bank(s.bank_a_grpc, s.call_timeout);
      bank_b = transfer::make_grpc_bank(s.bank_b_grpc, s.call_timeout);
    }
    transfer::transfer_hooks hooks;
    if (s.crash_after_trans_out)
      hooks.after_trans_out = [](const std::string& gid) {
        say("TransOut of " + gid + " is journaled; --crash-after-trans-out: SIGKILL now");
        ::kill(::getpid(), SIGKILL);
      };
    if (s.load.transfers > 0) {
      // Retries come quickly after a fault, so that the load quiesces soon after the last one.
      wf::workflow_options quick;
      quick.retry.max_interval = std::chrono::seconds(1);
      transfer::register_transfer(rt, bank_a, bank_b, hooks, quick);
      transfer::register_transfer(rt, bank_b, bank_a, hooks, quick, "transfer-back");
      say(s.executor_id + ": " + std::to_string(s.load.transfers) + " transfers (shard " + std::to_string(s.load.shard) +
          "/" + std::to_string(s.load.shards) + ", seed " + std::to_string(s.load.seed) + ") via " + s.via);
      load_state state;
      asio::co_spawn(io, run_load(rt, s, state), asio::detached);
      io.run();
      if (state.fatal) std::rethrow_exception(state.fatal);
      say(s.executor_id + ": done: " + std::to_string(state.succeeded) + " succeeded, " +
          std::to_string(state.rolled_back) + " rolled back, " + std::to_string(state.lease_lost) +
          " lease(s) lost, " + std::to_string(state.errors) + " error(s) retried");
      return 0;
    }
    transfer::register_transfer(rt, bank_a, bank_b, hooks);

    say("transfer " + s.gid + " via " + s.via + ": " + std::to_string(s.transfer.amount) + " from " +
        s.transfer.from + "@bank-a to " + s.transfer.to + "@bank-b" +
        (s.transfer.fail_at_trans_in ? " (bank-b told to refuse TransIn)" : ""));
    show_balances(s, "before");
    auto done = asio::co_spawn(io, run(rt, s), asio::use_future);
    io.run();
    const wf::outcome out = done.get();
    if (out.succeeded())
      say("outcome: succeeded: " + out.result_as<std::string>());
    else
      say("outcome: rolled back: " + out.reason);
    show_balances(s, "after");
  } catch (const std::exception& e) {
    say(std::string("error: ") + e.what());
    return 1;
  }
  return 0;
}

// wf_transfer: the orchestrator of examples/transfer. Runs one transfer as the
// `transfer` workflow, journaled in PostgreSQL, against two bank processes
// (wf_bank) over HTTP or gRPC.
//
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
// Exit status: 0 when the workflow finished (succeeded or rolled back), 1 on
// an error.
#include "remote_bank.hpp"
#include "timeline.hpp"
#include "transfer_workflow.hpp"

#include <wf/postgres_store.hpp>
#include <wf/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
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
#include <string>

#include <unistd.h>

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

struct settings {
  std::string db, via = "http", bank_a, bank_b, bank_a_grpc, bank_b_grpc, gid;
  std::string schema = "wf";
  transfer::transfer_request transfer{"alice", "bob", 30, false};
  bool crash_after_trans_out = false;
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

int usage() {
  std::fprintf(stderr,
               "usage: wf_transfer --db CONNINFO --bank-a URL --bank-b URL --gid GID [--via http|grpc]\n"
               "                   [--bank-a-grpc HOST:PORT --bank-b-grpc HOST:PORT] [--schema SCHEMA]\n"
               "                   [--from ACCOUNT] [--to ACCOUNT] [--amount N] [--fail-at-trans-in]\n"
               "                   [--crash-after-trans-out]\n");
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
    else return usage();
  }
  if (s.db.empty() || s.bank_a.empty() || s.bank_b.empty() || s.gid.empty()) return usage();
  if (s.via != "http" && s.via != "grpc") return usage();
  if (s.via == "grpc" && (s.bank_a_grpc.empty() || s.bank_b_grpc.empty())) return usage();

  try {
    asio::io_context io;
    wf::postgres_options pg;
    pg.connection = s.db;
    pg.schema = s.schema;
    auto store = wf::postgres_store::open(pg);

    // A fixed executor id: a restarted orchestrator takes its own unfinished
    // workflows back at once, without waiting for the dead one's leases.
    wf::runtime_options options;
    options.executor_id = "transfer-orchestrator";
    wf::runtime rt(io.get_executor(), store, options);

    std::shared_ptr<transfer::bank> bank_a, bank_b;
    if (s.via == "http") {
      auto client = std::make_shared<wf::http::client>(io.get_executor());
      bank_a = transfer::make_http_bank(client, s.bank_a);
      bank_b = transfer::make_http_bank(client, s.bank_b);
    } else {
      bank_a = transfer::make_grpc_bank(s.bank_a_grpc);
      bank_b = transfer::make_grpc_bank(s.bank_b_grpc);
    }
    transfer::transfer_hooks hooks;
    if (s.crash_after_trans_out)
      hooks.after_trans_out = [](const std::string& gid) {
        say("TransOut of " + gid + " is journaled; --crash-after-trans-out: SIGKILL now");
        ::kill(::getpid(), SIGKILL);
      };
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

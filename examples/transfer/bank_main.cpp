// wf_bank: one bank of examples/transfer as its own process.
//
//   wf_bank --name bank-a --db postgresql://... --schema bank_a
//           --http 127.0.0.1:8081 --grpc 127.0.0.1:9081 --account alice=100
//
// Keeps its accounts in <schema>.accounts and its barrier in <schema>.barrier
// (created if missing); --account sets a balance at start. Serves HTTP and
// gRPC (see bank_service.hpp) until SIGINT or SIGTERM, and prints a line per
// call it serves: the timeline of examples/README.md.
#include "bank_service.hpp"
#include "timeline.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: wf_bank --db CONNINFO [--name NAME] [--schema SCHEMA] [--http HOST:PORT] [--grpc HOST:PORT]\n"
               "               [--account NAME=BALANCE]...\n");
}

bool split_host_port(const std::string& s, std::string& host, unsigned short& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  try {
    port = static_cast<unsigned short>(std::stoul(s.substr(colon + 1)));
  } catch (const std::exception&) {
    return false;
  }
  return !host.empty();
}

}  // namespace

int main(int argc, char** argv) {
  transfer::ledger_options options;
  options.name = "bank";
  std::optional<std::string> http_at, grpc_at;
  std::vector<std::pair<std::string, std::int64_t>> accounts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--name") options.name = value();
    else if (arg == "--db") options.conninfo = value();
    else if (arg == "--schema") options.schema = value();
    else if (arg == "--http") http_at = value();
    else if (arg == "--grpc") grpc_at = value();
    else if (arg == "--account") {
      const std::string a = value();
      const auto eq = a.find('=');
      try {
        if (eq == std::string::npos) throw std::invalid_argument(a);
        accounts.emplace_back(a.substr(0, eq), std::stoll(a.substr(eq + 1)));
      } catch (const std::exception&) {
        std::fprintf(stderr, "wf_bank: --account wants NAME=BALANCE, got '%s'\n", a.c_str());
        return 2;
      }
    } else {
      usage();
      return 2;
    }
  }
  if (options.conninfo.empty() || (!http_at && !grpc_at)) {
    usage();
    return 2;
  }

  // The servers' threads inherit this mask; the main thread waits for the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    transfer::ledger bank(options);
    bank.setup();
    std::string opening;
    for (const auto& [name, balance] : accounts) {
      bank.set_balance(name, balance);
      opening += " " + name + "=" + std::to_string(balance);
    }
    bank.on_call([](const transfer::call_record& r) { transfer::print_line(transfer::describe(r)); });

    std::unique_ptr<transfer::http_server> http;
    std::unique_ptr<transfer::grpc_server> grpc;
    std::string where;
    std::string host;
    unsigned short port = 0;
    if (http_at) {
      if (!split_host_port(*http_at, host, port)) throw std::invalid_argument("--http wants HOST:PORT");
      http = std::make_unique<transfer::http_server>(bank, host, port);
      where += " http://" + host + ":" + std::to_string(http->port());
    }
    if (grpc_at) {
      if (!split_host_port(*grpc_at, host, port)) throw std::invalid_argument("--grpc wants HOST:PORT");
      grpc = std::make_unique<transfer::grpc_server>(bank, host, port);
      where += " grpc://" + host + ":" + std::to_string(grpc->port());
    }
    transfer::print_line(options.name + " ready on" + where + (opening.empty() ? "" : "; accounts set:" + opening));

    int signal = 0;
    sigwait(&stop_signals, &signal);
    transfer::print_line(options.name + " stopping (" + strsignal(signal) + ")");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wf_bank %s: %s\n", options.name.c_str(), e.what());
    return 1;
  }
  return 0;
}

// The banks of examples/transfer as participants on loopback, for the
// participant tests: two ledgers in PostgreSQL (schemas of their own), each
// served over HTTP and gRPC, and one timeline of every call either served.
#ifndef WF_TESTS_PARTICIPANTS_BANK_WORLD_HPP
#define WF_TESTS_PARTICIPANTS_BANK_WORLD_HPP

#include "support.hpp"

#include "bank_service.hpp"
#include "remote_bank.hpp"

#include <wf/http.hpp>

#include <map>
#include <mutex>

namespace wf_test {

using transfer::call_record;

/// bank-a and bank-b with the opening balances given (account -> balance).
struct bank_world {
  explicit bank_world(std::map<std::string, std::int64_t> at_a = {{"alice", 100}},
                      std::map<std::string, std::int64_t> at_b = {{"bob", 0}}) {
    a.setup();
    b.setup();
    for (const auto& [account, balance] : at_a) a.set_balance(account, balance);
    for (const auto& [account, balance] : at_b) b.set_balance(account, balance);
    auto observe = [this](const call_record& r) {
      std::lock_guard lock(mutex);
      timeline.push_back(r);
    };
    a.on_call(observe);
    b.on_call(observe);
    http_a = std::make_unique<transfer::http_server>(a, "127.0.0.1", 0, 2);
    http_b = std::make_unique<transfer::http_server>(b, "127.0.0.1", 0, 2);
    grpc_a = std::make_unique<transfer::grpc_server>(a, "127.0.0.1", 0);
    grpc_b = std::make_unique<transfer::grpc_server>(b, "127.0.0.1", 0);
  }

  std::string schema_a = fresh_schema();
  std::string schema_b = fresh_schema();
  transfer::ledger a{{"bank-a", pg_url(), schema_a}};
  transfer::ledger b{{"bank-b", pg_url(), schema_b}};
  std::mutex mutex;
  std::vector<call_record> timeline;
  std::unique_ptr<transfer::http_server> http_a, http_b;
  std::unique_ptr<transfer::grpc_server> grpc_a, grpc_b;

  /// A client of bank-a (bank-b) over "http" or "grpc".
  std::shared_ptr<transfer::bank> bank_a(const std::string& via, const std::shared_ptr<wf::http::client>& c) {
    return via == "http" ? transfer::make_http_bank(c, http_a->base_url()) : transfer::make_grpc_bank(grpc_a->target());
  }
  std::shared_ptr<transfer::bank> bank_b(const std::string& via, const std::shared_ptr<wf::http::client>& c) {
    return via == "http" ? transfer::make_http_bank(c, http_b->base_url()) : transfer::make_grpc_bank(grpc_b->target());
  }

  /// The balance of an account of bank-a, or of bank-b's bob.
  std::int64_t balance(const std::string& account) {
    return account == "bob" ? b.balances().at("bob").balance : a.balances().at(account).balance;
  }
  std::int64_t alice() { return balance("alice"); }
  std::int64_t bob() { return balance("bob"); }

  /// The calls served for `gid`, in order.
  std::vector<call_record> calls(const std::string& gid) {
    std::lock_guard lock(mutex);
    std::vector<call_record> out;
    for (const auto& r : timeline)
      if (r.gid == gid) out.push_back(r);
    return out;
  }
};

}  // namespace wf_test

#endif  // WF_TESTS_PARTICIPANTS_BANK_WORLD_HPP

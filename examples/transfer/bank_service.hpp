// A bank of examples/transfer as a real participant: accounts in PostgreSQL,
// every call guarded by the barrier, served over HTTP (Boost.Beast) and gRPC.
// The `wf_bank` program runs one; the tests run them in-process.
//
// Endpoints (the ids come as DTM sends them: query parameters over HTTP,
// dtm-* metadata over gRPC):
//   saga: TransOut / TransOutRevert, TransIn / TransInRevert
//   TCC:  TransOutTry / TransOutConfirm / TransOutCancel,
//         TransInTry / TransInConfirm / TransInCancel
// HTTP: POST /api/<Method>?gid=..&trans_type=..&branch_id=..&op=.. with the
// body {"account":"alice","amount":30,"fail":false}; answers 200
// {"outcome":"applied"|"absorbed"}, 409 (refused), 425 (not yet) or 500.
// GET /api/balances answers {"alice":{"balance":70,"frozen":0},...}.
// POST /admin/disturb?mode=error|ongoing|silent|none&ms=N makes every call
// misbehave for N ms (see `disturbance`); for fault injection, not production.
// gRPC: service transfer.v1.Bank (bank.proto); OK, ABORTED,
// FAILED_PRECONDITION or INTERNAL.
#ifndef WF_EXAMPLES_TRANSFER_BANK_SERVICE_HPP
#define WF_EXAMPLES_TRANSFER_BANK_SERVICE_HPP

#include "bank.hpp"

#include <wf/barrier.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace transfer {

struct ledger_options {
  std::string name = "bank";  ///< shown in the timeline, e.g. "bank-a"
  std::string conninfo;       ///< PostgreSQL connection string
  std::string schema = "bank";  ///< holds this bank's `accounts` and `barrier` tables
};

/// One served call, for the timeline and for tests.
struct call_record {
  std::string bank, method, gid, branch_id, op, account;
  std::int64_t amount = 0;
  /// "applied", "absorbed" (the barrier kept it from taking effect),
  /// "refused: <reason>", "ongoing", "error: <what>".
  std::string outcome;
};

/// What a scripted call answers instead of being served normally.
enum class scripted { failure, ongoing, error };

/// How a bank misbehaves for a while, whatever the call (fault injection:
/// wf_bank's POST /admin/disturb, the chaos test). `error` answers 500 /
/// INTERNAL, `ongoing` 425 / FAILED_PRECONDITION, `silent` answers nothing:
/// the HTTP server holds the request until the period ends, then closes the
/// connection; the gRPC server holds the call past the client's deadline.
enum class disturbance { none, error, ongoing, silent };

/// A bank's accounts and the rules of its endpoints. Thread-safe: each call
/// takes a database connection of its own from a small pool.
class ledger {
 public:
  explicit ledger(ledger_options options);
  ~ledger();
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  /// Creates the schema, the accounts table and the barrier table if missing.
  void setup();
  /// Creates the account or sets its balance (and clears its frozen amount).
  void set_balance(const std::string& account, std::int64_t balance);

  struct account_state {
    std::int64_t balance = 0;
    std::int64_t frozen = 0;  ///< reserved by TransOutTry, not yet confirmed or cancelled
  };
  std::map<std::string, account_state> balances();

  /// Serves one call of `method` ("TransOut", ...). Returns "applied" or
  /// "absorbed"; throws wf::failure when the bank refuses, wf::ongoing or
  /// another exception when scripted so. Throws std::invalid_argument for an
  /// unknown method or an op that does not fit it.
  std::string serve(const std::string& method, const wf::barrier_info& info, const bank_request& request);

  /// The next `times` calls of `method` answer `answer` (tests, fault injection).
  void script(const std::string& method, scripted answer, int times = 1);
  /// Called after each call (from the serving thread), e.g. to print a timeline.
  void on_call(std::function<void(const call_record&)> observer);

  /// Every call answers as `d` says for the next `period`, instead of being served.
  void disturb(disturbance d, std::chrono::milliseconds period);
  /// The disturbance in force and how long it still lasts ({none, 0} if none).
  std::pair<disturbance, std::chrono::milliseconds> disturbed() const;

 private:
  // A connection of the pool, given back when done with, unless it broke.
  class lease {
   public:
    lease(ledger& owner, std::unique_ptr<pqxx::connection> c) : owner_(owner), c_(std::move(c)) {}
    ~lease() {
      if (c_ && c_->is_open()) owner_.release(std::move(c_));
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    pqxx::connection& operator*() const { return *c_; }

   private:
    ledger& owner_;
    std::unique_ptr<pqxx::connection> c_;
  };

  lease acquire();
  void release(std::unique_ptr<pqxx::connection> c);
  std::string apply(const std::string& method, const wf::barrier_info& info, const bank_request& request,
                    pqxx::connection& c);
  void record(call_record r);

  ledger_options options_;
  std::string accounts_;  // quoted "schema".accounts
  std::string barrier_table_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::map<std::string, std::deque<scripted>> script_;
  std::function<void(const call_record&)> observer_;
  disturbance disturbance_ = disturbance::none;
  std::chrono::steady_clock::time_point disturbed_until_{};
};

/// Serves a ledger over HTTP on its own threads, until destroyed.
class http_server {
 public:
  /// Listens on `address`:`port` (0: any free port).
  http_server(ledger& bank, const std::string& address, unsigned short port, int threads = 4);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  unsigned short port() const noexcept;
  /// "http://127.0.0.1:<port>"
  std::string base_url() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// Serves a ledger over gRPC, until destroyed.
class grpc_server {
 public:
  grpc_server(ledger& bank, const std::string& address, unsigned short port);
  ~grpc_server();
  grpc_server(const grpc_server&) = delete;
  grpc_server& operator=(const grpc_server&) = delete;
  unsigned short port() const noexcept;
  /// "127.0.0.1:<port>", for grpc::CreateChannel.
  std::string target() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// "bank-a  TransOut        gid=t1 branch=01 op=action    alice -30: applied"
std::string describe(const call_record& r);

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_BANK_SERVICE_HPP

// wf/barrier.hpp - the participant's side: make each op of a branch take
// effect at most once, in the participant's own PostgreSQL transaction
// (target wf::postgres). The same barrier as DTM's, on the same table, so a
// service in C++ can share a barrier table with services written for DTM.
//
//     // In the handler of POST /transfer-out?gid=...&trans_type=workflow&branch_id=01&op=action
//     wf::barrier b(wf::barrier_from_query(request_target));
//     b.call(connection, [&](pqxx::work& tx) {
//       tx.exec_params("UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, from);
//     });
//     // Answer success whether call() returned true or false.
//
// What it guarantees: every call() writes a row keyed by (gid, branch_id, op,
// barrier_id) in the same transaction as the business code, so that
//  * a duplicate request (a retry, a redelivery, a resumed workflow calling
//    again) does nothing and returns false;
//  * a null compensation (the rollback/cancel arrives but its action/try never
//    ran, e.g. it timed out before reaching the service) does nothing, returns
//    false, and records the action as done, so that
//  * a hanging action (the action arrives after its rollback) does nothing and
//    returns false.
// All of these are successes for the caller: answer 200 (gRPC OK). The
// business effect of an op happens at most once, and an action never takes
// effect after its compensation ran or was skipped. This holds under any
// interleaving of concurrent requests: the unique key makes the second
// inserter of a row wait for the first transaction and see its outcome.
//
// Ops: "action", "commit", "finish" (wf's on_finish handlers) and, for TCC,
// "try", "confirm" run as given, once; "rollback" compensates "action",
// "cancel" compensates "try" and (for DTM sagas) "compensate" compensates
// "action". Other ops are refused (DTM's "msg" too: its duplicate is an error).
//
// The table (default "dtm_barrier.barrier") must exist: create it with
// create_barrier_table() at start-up, or with sql/barrier.sql in migrations.
// See docs/participants.md.
//
// Reading the ids (barrier_info, barrier_from_query, barrier_from_metadata)
// is in wf/barrier_info.hpp, included here: it belongs to the core (wf::wf),
// so a participant that keeps its data elsewhere uses it without libpqxx.
//
// Thread-safety: the free functions may be called from any thread. A barrier
// object counts its calls, so it belongs to one request handler and one thread
// at a time; make a new one per incoming request. A pqxx::connection is used
// by one thread at a time (libpqxx's rule), so concurrent handlers need a
// connection each.
#ifndef WF_BARRIER_HPP
#define WF_BARRIER_HPP

#include <wf/barrier_info.hpp>

#include <pqxx/connection>
#include <pqxx/transaction>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace wf {

/// Whether wf accepts `name` as a schema or table name: 1-63 characters of
/// a-z, 0-9 and _, not starting with a digit. The rule wf applies to the
/// barrier's table (each part of "schema.table") and to postgres_store's
/// schema; such a name is safe to splice into SQL between double quotes, as
/// wf does (so that a name that is an SQL keyword works too). For a
/// participant that keeps its own tables next to the barrier's.
bool valid_identifier(std::string_view name) noexcept;

/// Creates the barrier table `table` ("schema.table" or "table"; each part
/// 1-63 characters of a-z, 0-9 and _, not starting with a digit) and its
/// schema if they do not exist, in one transaction. Idempotent, and safe to
/// call from several processes at once. The DDL is that of sql/barrier.sql.
/// Throws std::invalid_argument for a bad name (before any SQL), pqxx
/// exceptions for database errors.
void create_barrier_table(pqxx::connection& c, const std::string& table = "dtm_barrier.barrier");

/// Guards the business code of one incoming request.
class barrier {
 public:
  /// Throws std::invalid_argument if `info` is incomplete (as the parsing
  /// functions check) or `table` is not a valid name (see create_barrier_table).
  explicit barrier(barrier_info info, std::string table = "dtm_barrier.barrier");

  /// Runs `business(tx)` in one transaction on `c`, guarded by the barrier,
  /// and commits. Blocking.
  ///
  /// Returns true if the business code ran and its transaction committed;
  /// false if the barrier absorbed the call (a duplicate, a null
  /// compensation, a hanging action): then the business code did not run,
  /// and the handler should still answer success.
  ///
  /// If `business` throws, the transaction is rolled back, nothing is
  /// recorded (a retry will run the business code), and the exception
  /// propagates: report a business refusal (wf::failure, HTTP 409) or a
  /// transient error as the case may be. Database errors propagate as pqxx
  /// exceptions. After pqxx::in_doubt_error the commit may or may not have
  /// happened; retrying the request is safe, the barrier absorbs it if it did.
  ///
  /// `business` must not commit or abort `tx`, and must not open another
  /// transaction on `c` meanwhile. `c` must not have a transaction open.
  ///
  /// Each call() of one object uses the next barrier id: "01", "02"... A
  /// handler that makes several guarded steps calls call() once per step,
  /// and the handler of the compensation must call it as many times, in the
  /// same order, so that its k-th step meets the action's k-th step.
  bool call(pqxx::connection& c, const std::function<void(pqxx::work&)>& business);

  const barrier_info& info() const noexcept { return info_; }
  const std::string& table() const noexcept { return table_; }

 private:
  barrier_info info_;
  std::string table_;        // as given, validated
  std::string insert_sql_;   // the barrier row's INSERT, for the validated table
  int calls_ = 0;
};

/// The barrier for coroutines: runs guarded business code on threads of its
/// own, each with its own connection, and completes on the awaiting
/// coroutine's executor, so that an io_context thread never waits for the
/// database. For a workflow's local steps and for participants built on Asio:
///
///     wf::barrier_pool pool({.connection = "postgresql://bank@db/bank"});
///     auto debit = [&pool, amount](const wf::branch_context& c) {
///       return pool.call(wf::barrier_info_of(c), [amount](pqxx::work& tx) {
///         tx.exec_params("UPDATE accounts SET balance = balance - $1 WHERE id = 'alice'", amount);
///       });  // asio::awaitable<bool>
///     };
///     auto credit = ...;  // the same with the compensating SQL
///     co_await w.new_branch("Debit").on_rollback(credit_handler).run(debit);
///
/// Each `call` uses barrier id "01" (one guarded step per op; for several,
/// use `barrier` directly on a thread of your own). Thread-safety: `call` may
/// be called from any thread; the pool must outlive the calls made on it.
class barrier_pool {
 public:
  struct options {
    std::string connection;                  ///< libpq connection string (never put in error messages)
    std::size_t threads = 2;                 ///< threads, and connections, at least 1
    std::string table = "dtm_barrier.barrier";
  };
  /// Starts the threads; they connect on first use. Throws
  /// std::invalid_argument for a bad table name.
  explicit barrier_pool(options o);
  ~barrier_pool();
  barrier_pool(const barrier_pool&) = delete;
  barrier_pool& operator=(const barrier_pool&) = delete;

  /// `barrier(info, table).call(connection, business)` on one of the pool's
  /// threads; completes with what it returns (true: the business code ran
  /// and committed; false: the barrier absorbed the call) or its exception.
  boost::asio::awaitable<bool> call(barrier_info info, std::function<void(pqxx::work&)> business);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace wf

#endif  // WF_BARRIER_HPP

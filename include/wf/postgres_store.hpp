// wf/postgres_store.hpp - the production store: journals in PostgreSQL (target wf::postgres).
//
//     auto store = wf::postgres_store::open({.connection = "postgresql://wf@db/orders"});
//     wf::runtime rt(io.get_executor(), store, {.executor_id = "orders-1"});
//
// Threads: libpqxx blocks, so the store runs all database work on threads of
// its own, each with its own connection, and completes every operation on the
// caller's executor. No database call ever runs on an io_context thread.
//  * a writer thread commits journal writes and workflow creations in groups:
//    whatever has queued up while the previous transaction was committing (up
//    to `max_batch`, after waiting at most `batch_wait` for more) goes into one
//    transaction, so that a step does not cost one fsync. Each caller resumes
//    only once its group is durable.
//  * a reader thread runs claims, reads and purges, each a short job (a purge
//    or a recovery of many workflows is many jobs, not one long one);
//  * a lease thread renews and releases leases, and nothing else, so that a
//    long read can never make a lease expire;
//  * a listener thread waits for notifications of new work (LISTEN/NOTIFY),
//    started by the first runtime that subscribes.
// If the io_context of a caller is destroyed while one of these threads works
// for it, the result is dropped: nothing touches the destroyed context.
//
// Durability: an operation completes successfully only after its transaction
// committed. A lost connection is an error for the operations in flight (the
// runtime treats it as transient and re-reads the journal before going on;
// a commit whose outcome is unknown is never redone blindly); the next
// operation reconnects.
//
// Schema: tables live in their own PostgreSQL schema (`options.schema`),
// created and migrated by `open` with numbered migrations in one transaction.
// A database whose schema is newer than this library is refused, untouched.
// See docs/journal-format.md.
//
// Thread-safety: all members may be called from any thread. The object must
// outlive the operations started on it (hold it in a shared_ptr, as runtimes do).
#ifndef WF_POSTGRES_STORE_HPP
#define WF_POSTGRES_STORE_HPP

#include <wf/observer.hpp>
#include <wf/store.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

namespace wf {

struct postgres_options {
  /// A libpq connection string: URI ("postgresql://user@host:5432/db") or
  /// key/value ("host=... dbname=..."). Never logged or put in error messages.
  std::string connection;
  /// The PostgreSQL schema holding wf's tables: a lower-case identifier.
  std::string schema = "wf";
  /// Group commit: at most this many writes in one transaction...
  std::size_t max_batch = 512;
  /// ...and, when fewer are queued, wait at most this long for more before
  /// committing (0: commit what is there; under load, writes still group
  /// while the previous transaction commits).
  std::chrono::microseconds batch_wait{0};
  /// The server ends a session of this store that sits idle inside a
  /// transaction this long (a process paused mid-transaction would otherwise
  /// hold its row locks, and block other runners, for as long as it sleeps).
  std::chrono::milliseconds idle_transaction_timeout{std::chrono::seconds(5)};
  /// A statement of this store waits at most this long for a row lock, then
  /// fails (a transient error, retried) instead of hanging.
  std::chrono::milliseconds lock_timeout{std::chrono::seconds(2)};
  /// Retrying mode for services that start before their database: keep
  /// trying to connect for this long before `open` gives up (0: try once).
  std::chrono::milliseconds wait_for_database{0};
  /// Create or upgrade the schema on `open` (the default). False, for tools
  /// that only look or act on a service's data (`wfctl`): `open` changes no
  /// table and throws `postgres_error` unless the schema is at this
  /// library's version.
  bool migrate = true;
  /// Told of each group commit (`observer::group_committed`), from the
  /// store's writer thread. Null: none.
  std::shared_ptr<wf::observer> observer{};
};

/// The database could not be used: unreachable, authentication failed, a
/// schema newer than this library, a bad option. `what()` never contains the
/// password.
class postgres_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The schema in the database was written by a newer version of wf.
class schema_too_new_error : public postgres_error {
 public:
  using postgres_error::postgres_error;
};

/// The schema version this library creates and understands.
inline constexpr int postgres_schema_version = 4;

class postgres_store final : public store,
                             public store_scheduling,
                             public store_notifications,
                             public store_admin,
                             public store_messages {
 public:
  /// Connects, creates or migrates the schema, and starts the store's
  /// threads. Blocking (call it at start-up). Throws `postgres_error`.
  static std::shared_ptr<postgres_store> open(postgres_options options);

  ~postgres_store() override;
  postgres_store(const postgres_store&) = delete;
  postgres_store& operator=(const postgres_store&) = delete;

  boost::asio::awaitable<create_result> create(workflow_state initial) override;
  boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                             std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) override;
  boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) override;
  boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) override;
  boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                         std::chrono::milliseconds lease) override;
  boost::asio::awaitable<void> release(std::string owner, std::vector<std::string> gids) override;

  store_scheduling* scheduling() noexcept override { return this; }
  store_notifications* notifications() noexcept override { return this; }
  store_admin* admin() noexcept override { return this; }
  store_messages* messages() noexcept override { return this; }

  boost::asio::awaitable<std::vector<workflow_state>> runnable(std::string owner, std::size_t limit) override;
  boost::asio::awaitable<std::vector<claim_result>> claim_due(claim_request request) override;
  boost::asio::awaitable<std::vector<claim_result>> claim_resumable(claim_request request) override;
  subscription on_new_work(std::function<void()> callback) override;
  boost::asio::awaitable<workflow_page> list(workflow_query query) override;
  boost::asio::awaitable<std::size_t> purge(wall_clock::time_point before, std::size_t limit) override;
  boost::asio::awaitable<bool> resume(std::string gid) override;
  boost::asio::awaitable<send_status> send(message m, bool to_missing) override;
  boost::asio::awaitable<std::vector<inbox_message>> inbox(std::string gid, std::string topic,
                                                           std::size_t limit) override;

  /// Counters, for monitoring and benchmarks.
  struct statistics {
    std::uint64_t transactions = 0;  ///< write transactions committed by the writer
    std::uint64_t writes = 0;        ///< creations and commit() calls they carried
    std::uint64_t reconnects = 0;
  };
  statistics stats() const;

  struct impl;

 private:
  explicit postgres_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Creates or migrates wf's schema (what `open` does), without starting a
/// store. Returns the version found before migrating (0: none). Throws
/// `postgres_error` / `schema_too_new_error`.
int migrate_postgres_schema(const postgres_options& options);

}  // namespace wf

#endif  // WF_POSTGRES_STORE_HPP

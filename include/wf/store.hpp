// wf/store.hpp - the interface between the runtime and durable storage.
//
// A store keeps workflow states and journals (see wf/journal.hpp). wf ships
// `memory_store` (tests) and, in wf::postgres, `postgres_store` (production).
//
// Contract every implementation keeps:
//  * All operations are asynchronous and complete on the caller's executor.
//    A store that blocks (a database client) runs that work on its own threads.
//  * A `write` is atomic: its records and its progress are durable together,
//    or not at all, when the operation completes. Records are appended at
//    exactly `journal size + 1, + 2...`; a record is never overwritten.
//  * Fencing: a write carries the epoch it was made under; if the workflow's
//    epoch has moved on (another runner claimed it), the write is refused
//    with `write_status::fenced` and nothing of it is applied.
//  * `commit` may take writes of many workflows; each one succeeds or is
//    refused on its own. A store is free to commit them in one transaction.
//  * Errors other than a refusal are reported by throwing; the runtime treats
//    them as transient and re-reads the journal before going on, so an
//    operation whose outcome is unknown is never blindly redone.
//  * Thread-safety: a store may be used from several runtimes and threads.
#ifndef WF_STORE_HPP
#define WF_STORE_HPP

#include <wf/journal.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace wf {

/// One atomic change to one workflow: records appended and, optionally, its
/// progress (status, result, attempts...) updated.
struct write {
  std::string gid;
  std::uint64_t epoch = 0;
  std::vector<journal_record> records;
  std::optional<progress> new_progress;
};

enum class write_status : std::uint8_t {
  ok = 0,
  fenced = 1,    ///< the epoch is stale (or the workflow does not exist): nothing applied
  conflict = 2,  ///< a record's seq is not the next one: nothing applied, nothing overwritten
};

enum class claim_status : std::uint8_t {
  claimed = 0,    ///< the caller now owns the workflow under a new epoch
  busy = 1,       ///< another owner holds an unexpired lease
  finished = 2,   ///< the workflow is finished: nothing to run
  not_found = 3,
};

struct claim_result {
  claim_status status = claim_status::not_found;
  workflow_state state;                 ///< valid unless not_found
  std::vector<journal_record> journal;  ///< filled when claimed
};

struct create_result {
  bool created = false;  ///< false: the gid existed, `state` is the stored one
  workflow_state state;
};

class store {
 public:
  virtual ~store() = default;

  /// Durably inserts a new workflow, owned by `initial.owner` under epoch 1,
  /// unless one with the same gid exists (then returns it, untouched).
  virtual boost::asio::awaitable<create_result> create(workflow_state initial) = 0;

  /// Takes ownership of an unfinished workflow: succeeds if it has no owner,
  /// its lease expired, or `owner` already owns it; bumps the epoch, sets the
  /// lease to `now + lease`, and returns the state and the whole journal.
  virtual boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                                     std::chrono::milliseconds lease) = 0;

  /// Applies writes; the result has one status per write, in order.
  virtual boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) = 0;

  /// Extends the leases of `gids` held by `owner`; returns the gids it no longer owns.
  virtual boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                                 std::chrono::milliseconds lease) = 0;

  virtual boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) = 0;

  virtual boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) = 0;

  /// Unfinished workflows that `owner` may run now: its own, or with no owner
  /// or an expired lease. At most `limit`, earliest `next_attempt_at` first.
  virtual boost::asio::awaitable<std::vector<workflow_state>> runnable(std::string owner, std::size_t limit) = 0;

  /// Claims (as `claim` does) up to `limit` due unfinished workflows
  /// (`next_attempt_at` has passed) that have no owner or whose owner, not
  /// `owner`, let its lease expire. `owner`'s own workflows are left to
  /// `runtime::recover`, since they may be running. Concurrent callers do not
  /// wait for each other's rows (Postgres: SKIP LOCKED). The default
  /// implementation is `runnable` then `claim` for each such workflow.
  virtual boost::asio::awaitable<std::vector<claim_result>> claim_due(std::string owner,
                                                                      std::chrono::milliseconds lease,
                                                                      std::size_t limit);

  /// Claims up to `limit` unfinished workflows that `owner` may resume now:
  /// its own (whatever their next attempt time) and those with no owner or
  /// an expired lease. What a restarted runner calls at start-up. The default
  /// implementation is `runnable` then `claim` for each.
  virtual boost::asio::awaitable<std::vector<claim_result>> claim_resumable(std::string owner,
                                                                            std::chrono::milliseconds lease,
                                                                            std::size_t limit);

  /// Deletes the finished workflows (and their journals) last updated before
  /// `before`. Returns how many were deleted. Unfinished ones are never touched.
  virtual boost::asio::awaitable<std::size_t> purge(wall_clock::time_point before) = 0;

  /// Registers `callback`, called (from any thread) when there may be new work
  /// for runners: a workflow created with no owner (`runtime::enqueue`). A
  /// store without such events never calls it; runners then rely on polling.
  /// The callback must be cheap and must not call back into the store.
  virtual void on_new_work(std::function<void()> callback) { (void)callback; }
};

}  // namespace wf

#endif  // WF_STORE_HPP

// wf/store.hpp - the interface between the runtime and durable storage.
//
// A store keeps workflow states and journals (see wf/journal.hpp). wf ships
// `memory_store` (tests) and, in wf::postgres, `postgres_store` (production).
// The interface is split by role:
//  * `store`, the core every store implements: create a workflow, claim it,
//    append to its journal, read it back, and hold a lease on it;
//  * capabilities a store may offer, reached through `store`'s accessors
//    (nullptr when it does not): `store_scheduling` (what pollers and
//    `runtime::recover` claim), `store_notifications` (new work announced
//    at once), `store_admin` (purge, resume...), `store_messages`
//    (workflows' inboxes).
// `store_wrapper` forwards everything, capabilities included, to another
// store: a decorator (e.g. wf::testing::crashing_store) derives from it and
// overrides only what it changes.
//
// Contract every implementation keeps:
//  * All operations are asynchronous and complete on the caller's executor.
//    A store that blocks (a database client) runs that work on its own threads.
//  * A `write` is atomic: its records and its progress are durable together,
//    or not at all, when the operation completes. Records are appended at
//    exactly `journal size + 1, + 2...`; a record is never overwritten.
//  * Fencing: a write carries the epoch it was made under; if the workflow's
//    epoch has moved on (another runner claimed it, or it was released), or
//    the workflow is finished (its outcome is final), the write is refused
//    with `write_status::fenced` and nothing of it is applied.
//  * `commit` may take writes of many workflows; each one succeeds or is
//    refused on its own. A store is free to commit them in one transaction.
//  * Errors other than a refusal are reported by throwing. The outcome of an
//    operation that threw is unknown (it may have been applied): the runtime
//    re-reads the journal before going on and never blindly redoes it.
//  * Thread-safety: a store may be used from several runtimes and threads.
#ifndef WF_STORE_HPP
#define WF_STORE_HPP

#include <wf/journal.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wf {

/// A message for a workflow's inbox (see `store_messages`).
struct message {
  std::string gid;  ///< the workflow it is for
  std::string topic;
  std::string payload;
  /// Idempotency key (not empty): a message whose (gid, key) was delivered
  /// before is not delivered again.
  std::string key;
};

/// A message in an inbox, as read back.
struct inbox_message {
  std::uint64_t id = 0;  ///< increasing in delivery order, store-wide
  std::string topic;
  std::string payload;
  std::string key;
  wall_clock::time_point sent_at{};
};

/// One atomic change to one workflow: records appended and, optionally, its
/// progress (status, result, attempts...) updated, other workflows created,
/// messages delivered to other workflows and consumed from its own inbox,
/// and the workflow released until a wake-up time. All of it applies, or
/// none of it (a fenced or conflicting write creates, delivers, consumes and
/// releases nothing).
struct write {
  std::string gid;
  std::uint64_t epoch = 0;
  std::vector<journal_record> records;
  std::optional<progress> new_progress;
  /// Workflows created with this write, as `store::create` creates them
  /// (epoch 1, owned by `owner`, none if empty), each unless its gid exists
  /// (then it is left as it is): what a parent's journal record and its
  /// child's creation need, together or not at all.
  std::vector<workflow_state> creates{};
  /// Once applied, the workflow is released as `store::release` does (epoch
  /// bumped, so a later write under this epoch is fenced; no owner), but due
  /// at this time instead of at once: what a workflow that waits (a durable
  /// timer) needs to cost nothing until then. Ignored if the write finishes
  /// the workflow.
  std::optional<wall_clock::time_point> release_until{};
  /// Messages delivered with this write (what a workflow sends another, sent
  /// exactly once with the record that says so), each as
  /// `store_messages::send` delivers one to an existing workflow, whatever
  /// the state of the workflow it is for. Needs `store::messages()`.
  std::vector<message> sends{};
  /// Messages of this workflow's own inbox (by id) consumed with this write:
  /// the journal record of a receive and the consumption, together. An id
  /// already consumed, or not this workflow's, changes nothing. Needs
  /// `store::messages()`.
  std::vector<std::uint64_t> consumes{};

  bool has_effects_beyond_journal() const noexcept {
    return !creates.empty() || release_until.has_value() || !sends.empty() || !consumes.empty();
  }
};

/// What `store_messages::send` did.
enum class send_status : std::uint8_t {
  delivered = 0,
  duplicate = 1,  ///< a message with the same (gid, key) was delivered before: nothing done
  finished = 2,   ///< the workflow is finished: its inbox takes no more, nothing delivered
  unknown = 3,    ///< no such workflow (and not asked to deliver to one that does not exist yet)
};
const char* to_string(send_status s) noexcept;

enum class write_status : std::uint8_t {
  ok = 0,
  fenced = 1,    ///< the epoch is stale, the workflow is finished, or it does not exist: nothing applied
  conflict = 2,  ///< a record's seq is not the next one: nothing applied, nothing overwritten
};

enum class claim_status : std::uint8_t {
  claimed = 0,    ///< the caller now owns the workflow under a new epoch
  busy = 1,       ///< another owner holds an unexpired lease
  finished = 2,   ///< the workflow is finished (or stuck): nothing to run
  not_found = 3,
};

struct claim_result {
  claim_status status = claim_status::not_found;
  workflow_state state{};                 ///< valid unless not_found
  std::vector<journal_record> journal{};  ///< filled when claimed
  std::string previous_owner{};           ///< when claimed: the owner before this claim ("" if none)
};

/// Which workflows a poller or a recovering runner claims (store_scheduling).
struct claim_request {
  std::string owner;                    ///< the claiming runner's executor id
  std::chrono::milliseconds lease{0};   ///< the lease each claim gets
  std::size_t limit = 0;                ///< at most this many
  std::vector<std::string> names;       ///< only workflows of these names (those registered by the caller); empty: any
  std::string after;                    ///< claim_resumable: only gids after this one (empty: from the first)
  std::vector<std::string> exclude;     ///< claim_resumable: gids left alone (running here already)
};

struct create_result {
  bool created = false;  ///< false: the gid existed, `state` is the stored one
  workflow_state state;
};

/// A registration that ends when this object is destroyed or reset: after
/// that, the callback it registered is not running and is never called again.
class subscription {
 public:
  subscription() = default;
  explicit subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  subscription(subscription&& o) noexcept : cancel_(std::exchange(o.cancel_, nullptr)) {}
  subscription& operator=(subscription&& o) noexcept {
    if (this != &o) {
      reset();
      cancel_ = std::exchange(o.cancel_, nullptr);
    }
    return *this;
  }
  ~subscription() { reset(); }
  void reset() noexcept {
    if (auto c = std::exchange(cancel_, nullptr)) c();
  }
  explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

 private:
  std::function<void()> cancel_;
};

/// Which workflows `store_admin::list` returns: those matching every filter
/// given, in gid order, a page at a time.
struct workflow_query {
  std::optional<std::string> name;              ///< registered name, exactly
  std::optional<workflow_status> status;
  std::optional<std::string> owner;             ///< the runner holding (or last holding) it
  std::optional<wall_clock::time_point> created_from;   ///< created at or after
  std::optional<wall_clock::time_point> created_until;  ///< created before
  std::string after;      ///< the cursor: only gids after this one (a page's `next`; empty: from the first)
  std::size_t limit = 50;  ///< page size, 1 to `max_limit`
  bool count = false;     ///< also count every match (all pages): a scan of the matches, not free

  static constexpr std::size_t max_limit = 1000;
};

/// One page of `store_admin::list`.
struct workflow_page {
  std::vector<workflow_state> workflows;  ///< in gid order
  std::string next;                       ///< the `after` of the next page; empty if this page is the last
  std::optional<std::uint64_t> total;     ///< every match, if the query asked to `count`
};

class store_scheduling;
class store_notifications;
class store_admin;
class store_messages;

/// The core: what every store implements.
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

  virtual boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) = 0;

  virtual boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) = 0;

  /// Extends the leases of `gids` held by `owner`; returns the gids it no
  /// longer holds (claimed by another runner, released, finished, gone).
  virtual boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                                 std::chrono::milliseconds lease) = 0;

  /// Gives up `owner`'s claim on the unfinished workflows among `gids`: their
  /// epoch is bumped (a late write of `owner` is fenced), they have no owner
  /// and are due at once, so any runner may claim them now.
  virtual boost::asio::awaitable<void> release(std::string owner, std::vector<std::string> gids) = 0;

  // ---- capabilities: nullptr when the store does not offer them

  virtual store_scheduling* scheduling() noexcept { return nullptr; }
  virtual store_notifications* notifications() noexcept { return nullptr; }
  virtual store_admin* admin() noexcept { return nullptr; }
  virtual store_messages* messages() noexcept { return nullptr; }
};

/// Finding work to run: what `runtime::recover` and the poller use.
class store_scheduling {
 public:
  virtual ~store_scheduling() = default;

  /// Unfinished workflows that `owner` may run now: its own, or with no owner
  /// or an expired lease. At most `limit`, earliest `next_attempt_at` first.
  virtual boost::asio::awaitable<std::vector<workflow_state>> runnable(std::string owner, std::size_t limit) = 0;

  /// Claims (as `store::claim` does) up to `limit` due unfinished workflows
  /// (`next_attempt_at` has passed) of `names` that have no owner or whose
  /// lease expired, whoever the owner (the caller's own included: a workflow
  /// whose lease it stopped renewing is one it no longer runs), earliest due
  /// first. Concurrent callers do not wait for each other's rows (Postgres:
  /// SKIP LOCKED).
  virtual boost::asio::awaitable<std::vector<claim_result>> claim_due(claim_request request) = 0;

  /// Claims up to `limit` unfinished workflows of `names` that `owner` may
  /// resume now: its own (whatever their next attempt time) and those with
  /// no owner or an expired lease, leaving out `exclude`. In gid order, after
  /// `after`: what a restarted runner calls at start-up, page after page.
  virtual boost::asio::awaitable<std::vector<claim_result>> claim_resumable(claim_request request) = 0;
};

/// New work announced as it appears, so that pollers need not wait.
class store_notifications {
 public:
  virtual ~store_notifications() = default;

  /// Registers `callback`, called (from any thread) when there may be new
  /// work for runners: a workflow created with no owner, or released.
  /// Returns a subscription that unregisters it. The callback must be cheap
  /// and must not call back into the store.
  virtual subscription on_new_work(std::function<void()> callback) = 0;
};

/// What operators do: list, purge, resume.
class store_admin {
 public:
  virtual ~store_admin() = default;

  /// A page of the workflows `query` selects, in gid order. Throws
  /// std::invalid_argument for a limit of 0 or above `max_limit`, or a time
  /// range that ends before it starts. Filters are values, never SQL.
  virtual boost::asio::awaitable<workflow_page> list(workflow_query query) = 0;

  /// Deletes the finished workflows (and their journals) last updated before
  /// `before`, at most `limit` of them (in one short operation: call again
  /// for more). Returns how many were deleted. Unfinished ones are never touched.
  virtual boost::asio::awaitable<std::size_t> purge(wall_clock::time_point before, std::size_t limit) = 0;

  /// Makes a `stuck` workflow runnable again from its journal (after the
  /// code or configuration that stopped it was fixed): status running,
  /// attempts and last error cleared, no owner, due at once, epoch bumped.
  /// False if `gid` is not stuck (or does not exist).
  virtual boost::asio::awaitable<bool> resume(std::string gid) = 0;
};

/// Workflows' inboxes: messages delivered on their own (`send`) or with a
/// write (`write::sends`), read back (`inbox`) and consumed with a write
/// (`write::consumes`). A delivery to an unfinished workflow that no runner
/// holds (no owner, or its lease ran out) makes it due at once, as new work
/// (so that one released until a timeout wakes for the message); one held
/// by a runner is left to it.
class store_messages {
 public:
  virtual ~store_messages() = default;

  /// Delivers `m` on its own (a send from outside any workflow): to an
  /// unfinished workflow, or to one that does not exist yet if
  /// `to_missing` (it finds the message once created).
  virtual boost::asio::awaitable<send_status> send(message m, bool to_missing) = 0;
  /// The messages of `gid` on `topic` not yet consumed, oldest first, at
  /// most `limit`.
  virtual boost::asio::awaitable<std::vector<inbox_message>> inbox(std::string gid, std::string topic,
                                                                   std::size_t limit) = 0;
};

/// Forwards every operation, and every capability the target has, to
/// `target`. Derive from it to change only some operations.
class store_wrapper : public store,
                      public store_scheduling,
                      public store_notifications,
                      public store_admin,
                      public store_messages {
 public:
  explicit store_wrapper(std::shared_ptr<store> target);

  boost::asio::awaitable<create_result> create(workflow_state initial) override;
  boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                             std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) override;
  boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) override;
  boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) override;
  boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                         std::chrono::milliseconds lease) override;
  boost::asio::awaitable<void> release(std::string owner, std::vector<std::string> gids) override;

  store_scheduling* scheduling() noexcept override;
  store_notifications* notifications() noexcept override;
  store_admin* admin() noexcept override;
  store_messages* messages() noexcept override;

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

  /// The store operations are forwarded to (null once reset).
  const std::shared_ptr<store>& target() const noexcept { return target_; }

 protected:
  /// Drops the target: every later operation throws (as after a crash).
  void reset_target() noexcept { target_.reset(); }
  /// The target, or throws std::runtime_error once it was reset.
  store& forward() const;

 private:
  std::shared_ptr<store> target_;
};

}  // namespace wf

#endif  // WF_STORE_HPP

// wf/memory_store.hpp - a store that keeps everything in memory.
//
// For tests: write your workflow's tests against a `memory_store` and they
// run in microseconds, with no database. It keeps the full store contract
// (fencing, leases, append-only journals, conflicts) and every capability
// (scheduling, notifications, administration, messages), so a workflow that behaves
// here behaves the same on `postgres_store`. Nothing survives the process; a
// "crash" in tests is modelled by dropping the runtime and keeping the store
// (see wf/testing.hpp). Leases and due times are read from the clock it is
// given (a `wf::testing::manual_clock` lets a test move time itself).
//
// Thread-safety: all members may be called from any thread.
#ifndef WF_MEMORY_STORE_HPP
#define WF_MEMORY_STORE_HPP

#include <wf/clock.hpp>
#include <wf/store.hpp>

#include <map>
#include <memory>
#include <mutex>

namespace wf {

class memory_store final : public store,
                           public store_scheduling,
                           public store_notifications,
                           public store_admin,
                           public store_messages {
 public:
  explicit memory_store(std::shared_ptr<wf::clock> clock = system_clock());

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

  // Synchronous inspection, for tests.

  /// The journal of `gid` (empty if unknown).
  std::vector<journal_record> records(const std::string& gid) const;
  /// The state of `gid`, if it exists.
  std::optional<workflow_state> state(const std::string& gid) const;
  /// Number of workflows stored.
  std::size_t size() const;

 private:
  struct entry {
    workflow_state state;
    std::vector<journal_record> journal;
  };
  struct listeners {
    std::mutex mutex;  // held while callbacks run: removing one waits for it
    std::map<std::uint64_t, std::function<void()>> callbacks;
    std::uint64_t next = 1;
  };
  struct stored_message {
    inbox_message m;
    bool consumed = false;
  };
  // Takes the records, progress, creations, messages and release of an
  // accepted write; sets `new_work` if it made work for runners (a creation
  // with no owner, a release, a workflow woken by a message).
  write_status apply(write& w, bool& new_work);
  // Puts `m` in its inbox unless its key is there; wakes its workflow if no
  // runner holds it. False: a duplicate.
  bool deliver(message& m, wall_clock::time_point now, bool& new_work);
  bool delivered_before(const message& m) const;
  bool claimable(const workflow_state& s, const std::string& owner, wall_clock::time_point now) const;
  claim_result take(entry& e, std::string owner, std::chrono::milliseconds lease, wall_clock::time_point now);
  void announce();

  std::shared_ptr<wf::clock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, entry, std::less<>> workflows_;
  // Inboxes by gid (a workflow's may exist before it does: send(.., true)).
  std::map<std::string, std::vector<stored_message>, std::less<>> inboxes_;
  std::uint64_t next_message_id_ = 1;
  std::shared_ptr<listeners> listeners_ = std::make_shared<listeners>();
};

}  // namespace wf

#endif  // WF_MEMORY_STORE_HPP

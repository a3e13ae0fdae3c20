// wf/memory_store.hpp - a store that keeps everything in memory.
//
// For tests: write your workflow's tests against a `memory_store` and they
// run in microseconds, with no database. It keeps the full store contract
// (fencing, leases, append-only journals, conflicts), so a workflow that
// behaves here behaves the same on `postgres_store`. Nothing survives the
// process; a "crash" in tests is modelled by dropping the runtime and keeping
// the store (see wf/testing.hpp).
//
// Thread-safety: all members may be called from any thread.
#ifndef WF_MEMORY_STORE_HPP
#define WF_MEMORY_STORE_HPP

#include <wf/store.hpp>

#include <map>
#include <mutex>

namespace wf {

class memory_store final : public store {
 public:
  memory_store() = default;

  boost::asio::awaitable<create_result> create(workflow_state initial) override;
  boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                             std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) override;
  boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                         std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) override;
  boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) override;
  boost::asio::awaitable<std::vector<workflow_state>> runnable(std::string owner, std::size_t limit) override;
  boost::asio::awaitable<std::size_t> purge(wall_clock::time_point before) override;
  void on_new_work(std::function<void()> callback) override;

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
  write_status apply(const write& w);

  mutable std::mutex mutex_;
  std::map<std::string, entry, std::less<>> workflows_;
  std::vector<std::function<void()>> new_work_callbacks_;
};

}  // namespace wf

#endif  // WF_MEMORY_STORE_HPP

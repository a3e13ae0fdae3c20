#include <wf/store.hpp>

#include <limits>

namespace wf {

boost::asio::awaitable<std::vector<claim_result>> store::claim_due(std::string owner, std::chrono::milliseconds lease,
                                                                  std::size_t limit) {
  std::vector<claim_result> out;
  const auto now = wall_clock::now();
  auto candidates = co_await runnable(owner, std::numeric_limits<std::size_t>::max());
  for (auto& s : candidates) {
    if (out.size() >= limit) break;
    if (s.next_attempt_at > now) break;  // runnable() is sorted by next_attempt_at: none later is due
    if (s.owner == owner) continue;
    auto c = co_await claim(s.gid, owner, lease);
    if (c.status == claim_status::claimed) out.push_back(std::move(c));
  }
  co_return out;
}

boost::asio::awaitable<std::vector<claim_result>> store::claim_resumable(std::string owner,
                                                                        std::chrono::milliseconds lease,
                                                                        std::size_t limit) {
  std::vector<claim_result> out;
  auto candidates = co_await runnable(owner, limit);
  for (auto& s : candidates) {
    auto c = co_await claim(s.gid, owner, lease);
    if (c.status == claim_status::claimed) out.push_back(std::move(c));
  }
  co_return out;
}

}  // namespace wf

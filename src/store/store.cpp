#include <wf/store.hpp>

#include <stdexcept>

namespace wf {

namespace asio = boost::asio;

const char* to_string(send_status s) noexcept {
  switch (s) {
    case send_status::delivered: return "delivered";
    case send_status::duplicate: return "duplicate";
    case send_status::finished: return "finished";
    case send_status::unknown: return "unknown";
  }
  return "?";
}

store_wrapper::store_wrapper(std::shared_ptr<store> target) : target_(std::move(target)) {
  if (!target_) throw std::invalid_argument("wf::store_wrapper: null store");
}

store& store_wrapper::forward() const {
  if (!target_) throw std::runtime_error("wf::store_wrapper: the store was dropped");
  return *target_;
}

namespace {
template <class Capability>
Capability& capability(Capability* c, const char* what) {
  if (!c) throw std::logic_error(std::string("wf::store_wrapper: the wrapped store has no ") + what);
  return *c;
}
}  // namespace

asio::awaitable<create_result> store_wrapper::create(workflow_state initial) {
  co_return co_await forward().create(std::move(initial));
}

asio::awaitable<claim_result> store_wrapper::claim(std::string gid, std::string owner,
                                                   std::chrono::milliseconds lease) {
  co_return co_await forward().claim(std::move(gid), std::move(owner), lease);
}

asio::awaitable<std::vector<write_status>> store_wrapper::commit(std::vector<write> writes) {
  co_return co_await forward().commit(std::move(writes));
}

asio::awaitable<std::optional<workflow_state>> store_wrapper::find(std::string gid) {
  co_return co_await forward().find(std::move(gid));
}

asio::awaitable<std::vector<journal_record>> store_wrapper::journal(std::string gid) {
  co_return co_await forward().journal(std::move(gid));
}

asio::awaitable<std::vector<std::string>> store_wrapper::renew(std::string owner, std::vector<std::string> gids,
                                                               std::chrono::milliseconds lease) {
  co_return co_await forward().renew(std::move(owner), std::move(gids), lease);
}

asio::awaitable<void> store_wrapper::release(std::string owner, std::vector<std::string> gids) {
  co_await forward().release(std::move(owner), std::move(gids));
}

store_scheduling* store_wrapper::scheduling() noexcept {
  return target_ && target_->scheduling() ? this : nullptr;
}
store_notifications* store_wrapper::notifications() noexcept {
  return target_ && target_->notifications() ? this : nullptr;
}
store_admin* store_wrapper::admin() noexcept { return target_ && target_->admin() ? this : nullptr; }
store_messages* store_wrapper::messages() noexcept { return target_ && target_->messages() ? this : nullptr; }

asio::awaitable<std::vector<workflow_state>> store_wrapper::runnable(std::string owner, std::size_t limit) {
  auto& s = capability(forward().scheduling(), "scheduling");
  co_return co_await s.runnable(std::move(owner), limit);
}

asio::awaitable<std::vector<claim_result>> store_wrapper::claim_due(claim_request request) {
  auto& s = capability(forward().scheduling(), "scheduling");
  co_return co_await s.claim_due(std::move(request));
}

asio::awaitable<std::vector<claim_result>> store_wrapper::claim_resumable(claim_request request) {
  auto& s = capability(forward().scheduling(), "scheduling");
  co_return co_await s.claim_resumable(std::move(request));
}

subscription store_wrapper::on_new_work(std::function<void()> callback) {
  return capability(forward().notifications(), "notifications").on_new_work(std::move(callback));
}

asio::awaitable<workflow_page> store_wrapper::list(workflow_query query) {
  auto& a = capability(forward().admin(), "administration");
  co_return co_await a.list(std::move(query));
}

asio::awaitable<std::size_t> store_wrapper::purge(wall_clock::time_point before, std::size_t limit) {
  auto& a = capability(forward().admin(), "administration");
  co_return co_await a.purge(before, limit);
}

asio::awaitable<bool> store_wrapper::resume(std::string gid) {
  auto& a = capability(forward().admin(), "administration");
  co_return co_await a.resume(std::move(gid));
}

asio::awaitable<send_status> store_wrapper::send(message m, bool to_missing) {
  auto& inboxes = capability(forward().messages(), "messages");
  co_return co_await inboxes.send(std::move(m), to_missing);
}

asio::awaitable<std::vector<inbox_message>> store_wrapper::inbox(std::string gid, std::string topic,
                                                                std::size_t limit) {
  auto& inboxes = capability(forward().messages(), "messages");
  co_return co_await inboxes.inbox(std::move(gid), std::move(topic), limit);
}

}  // namespace wf

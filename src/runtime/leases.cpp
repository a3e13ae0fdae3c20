// Renewing the leases of the workflows running here, and stopping at once a
// workflow whose lease was lost (another runner took it over): going on would
// only call its participants alongside the new owner.
#include "core.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace wf {

void runtime::impl::start_renewing() {
  if (renewing || context_gone) return;
  renewing = true;
  asio::co_spawn(ex, renew_leases(shared_from_this()), asio::detached);
}

asio::awaitable<void> runtime::impl::renew_leases(std::shared_ptr<impl> self) {
  detail::frame_timer timer(self->ex, self->renew_timer);

  while (!self->active.empty()) {
    timer->expires_after(self->options.lease_duration / 3);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (self->active.empty()) break;
    // Only what this runner holds in the store: a workflow whose creation or
    // claim is still on its way is not (yet) its, and would be reported lost.
    std::vector<std::string> gids;
    std::unordered_map<std::string, std::shared_ptr<runtime::active>> renewed;
    for (const auto& [gid, a] : self->active)
      if (a->held) {
        gids.push_back(gid);
        renewed.emplace(gid, a);
      }
    if (gids.empty()) continue;
    std::vector<std::string> lost;
    try {
      lost = co_await self->st->renew(self->options.executor_id, std::move(gids), self->options.lease_duration);
    } catch (const std::exception&) {
      // The store is unreachable: try again at the next tick. (If the lease
      // runs out meanwhile, the next write is fenced.)
      continue;
    }
    detail::notify(self->obs(), [&](observer& o) { o.leases_renewed(renewed.size(), lost.size()); });
    for (const auto& gid : lost) {
      // The same run as the one renewed (not one started since), and not done yet.
      auto it = self->active.find(gid);
      if (it == self->active.end() || it->second != renewed.at(gid) || it->second->done) continue;
      detail::notify(self->obs(), [&](observer& o) { o.lease_lost({it->first, it->second->name}); });
      it->second->request_stop(detail::attempt::stop_cause::lease_lost);
    }
  }
  self->renewing = false;
}

}  // namespace wf

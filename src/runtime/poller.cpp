// The poller: claims due workflows (enqueued, released, or whose runner's
// lease expired, this runner's own included) and runs them; applies retention.
#include "core.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace wf {

void runtime::impl::start_polling() {
  if (polling || context_gone) return;
  if (!st->scheduling()) throw std::logic_error("wf: this store cannot find due workflows: no poller");
  polling = true;
  if (!new_work)
    if (auto* n = st->notifications()) {
      // Any thread, maybe after this runtime or its io_context is gone: the
      // context's guard posts only while the context lives; the weak pointer
      // finds the runtime only while it lives.
      auto wake = [ctx = context, ex = ex, target = weak_from_this()] {
        ctx->post_if_alive(ex, [target] {
          if (auto self = target.lock()) {
            self->wake_pending = true;
            if (self->poll_timer) self->poll_timer->cancel();
          }
        });
      };
      new_work = n->on_new_work(std::move(wake));
    }
  asio::co_spawn(ex, poll(shared_from_this()), asio::detached);
}

asio::awaitable<void> runtime::impl::poll(std::shared_ptr<impl> self) {
  detail::frame_timer timer(self->ex, self->poll_timer);

  auto& scheduling = *self->st->scheduling();
  while (self->polling) {
    std::size_t claimed_count = 0;
    try {
      auto claimed = co_await scheduling.claim_due(self->claims(self->options.claim_batch));
      claimed_count = claimed.size();
      // (Already running here: its lease had lapsed. The claim fenced the old
      // run, which stops at its next write; it is found due again later.)
      for (auto& c : claimed) self->adopt(c);
      const auto now = self->clock->now();
      if (self->options.retention.count() > 0 && now - self->last_purge >= std::chrono::minutes(1)) {
        self->last_purge = now;
        if (auto* admin = self->st->admin()) co_await admin->purge(now - self->options.retention, 1000);
      }
    } catch (const std::exception&) {
      // The store is unreachable: try again at the next poll.
    }
    if (!self->polling) break;
    if (claimed_count >= self->options.claim_batch) continue;  // more may be due right now
    if (self->wake_pending) {
      self->wake_pending = false;
      continue;
    }
    timer->expires_after(self->options.poll_interval);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace wf

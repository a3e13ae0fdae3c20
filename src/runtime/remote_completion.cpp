#include "../remote_completion.hpp"

namespace wf::detail {

std::uint64_t context_state::add_hook(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (alive_) {
      hooks_.emplace_back(next_hook_, std::move(fn));
      return next_hook_++;
    }
  }
  fn();
  return 0;
}

void context_state::remove_hook(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  for (auto it = hooks_.begin(); it != hooks_.end(); ++it)
    if (it->first == id) {
      hooks_.erase(it);
      return;
    }
}

void context_state::link(pending_operation* op) {
  std::lock_guard lock(mutex_);
  op->next = &head_;
  op->prev = head_.prev;
  head_.prev->next = op;
  head_.prev = op;
}

void context_state::unlink(pending_operation* op) noexcept {
  op->prev->next = op->next;
  op->next->prev = op->prev;
  op->prev = op->next = nullptr;
}

void context_state::shut_down() {
  std::vector<std::pair<std::uint64_t, std::function<void()>>> hooks;
  std::vector<pending_operation*> pending;
  {
    std::lock_guard lock(mutex_);
    alive_ = false;
    hooks.swap(hooks_);
    for (auto* op = head_.next; op != &head_;) {
      auto* next = op->next;
      pending.push_back(op);
      op = next;
    }
    head_.prev = head_.next = &head_;
  }
  // Outside the lock: destroying a handler may destroy coroutine frames, and
  // with them objects (a store) whose threads are about to complete.
  for (auto& [id, fn] : hooks) fn();
  for (auto* op : pending) delete op;
}

}  // namespace wf::detail

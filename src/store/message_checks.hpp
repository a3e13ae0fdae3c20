// What every store refuses in a message before anything is applied (internal).
#ifndef WF_SRC_STORE_MESSAGE_CHECKS_HPP
#define WF_SRC_STORE_MESSAGE_CHECKS_HPP

#include <wf/store.hpp>

#include <stdexcept>
#include <string>

namespace wf::detail {

/// `store` names the store in the error ("wf::memory_store").
inline void check_message(const message& m, const char* store) {
  if (m.key.empty()) throw std::invalid_argument(std::string(store) + ": a message without an idempotency key");
}

inline void check_messages(const std::vector<write>& writes, const char* store) {
  for (const auto& w : writes)
    for (const auto& m : w.sends) check_message(m, store);
}

}  // namespace wf::detail

#endif

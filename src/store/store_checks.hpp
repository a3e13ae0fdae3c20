// What every store refuses before anything is done: a message without a key,
// a query out of bounds (internal).
#ifndef WF_SRC_STORE_STORE_CHECKS_HPP
#define WF_SRC_STORE_STORE_CHECKS_HPP

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

inline void check_query(const workflow_query& q, const char* store) {
  if (q.limit == 0 || q.limit > workflow_query::max_limit)
    throw std::invalid_argument(std::string(store) + ": a page of " + std::to_string(q.limit) +
                                " workflows (1 to " + std::to_string(workflow_query::max_limit) + ")");
  if (q.created_from && q.created_until && *q.created_until < *q.created_from)
    throw std::invalid_argument(std::string(store) + ": a creation time range that ends before it starts");
}

}  // namespace wf::detail

#endif

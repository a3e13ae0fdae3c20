// wf/retry_policy.hpp - how a workflow is retried after a transient error.
#ifndef WF_RETRY_POLICY_HPP
#define WF_RETRY_POLICY_HPP

#include <chrono>
#include <cstdint>

namespace wf {

/// Exponential backoff between attempts of a workflow.
///
/// After a transient error the workflow is replayed after `interval`, which
/// starts at `initial_interval` and is multiplied by `coefficient` after each
/// transient error, up to `max_interval`. An `ongoing` answer retries after
/// the current interval without growing it.
///
/// `max_attempts` bounds the *forward* phase: once that many runs have ended
/// in a transient error (waits caused by a store error count too), the
/// workflow gives up and rolls back (0 = no bound). Commit and rollback
/// handlers are retried with the same backoff but without a bound: they must
/// eventually succeed (the count goes on, but only decides a forward phase).
struct retry_policy {
  std::chrono::milliseconds initial_interval{100};
  double coefficient = 2.0;
  std::chrono::milliseconds max_interval{std::chrono::seconds(60)};
  std::uint32_t max_attempts = 0;

  /// The interval to wait after `previous` (zero for the first retry).
  /// `grow` is false for an `ongoing` answer.
  std::chrono::milliseconds next_interval(std::chrono::milliseconds previous, bool grow) const noexcept;
};

}  // namespace wf

#endif  // WF_RETRY_POLICY_HPP

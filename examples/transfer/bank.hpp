// What the transfer workflow needs from a bank: DTM's four endpoints.
//
// The workflow only sees this interface, so the in-memory `fake_bank` of this
// example can later be swapped for a client of a real bank service (HTTP or
// gRPC) without touching the workflow: such a client sends the request with
// the branch context (gid, branch id, op), maps HTTP 409 / gRPC ABORTED to
// `wf::failure`, and lets every other error escape (transient: wf retries).
#ifndef WF_EXAMPLES_TRANSFER_BANK_HPP
#define WF_EXAMPLES_TRANSFER_BANK_HPP

#include <wf/workflow.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

namespace transfer {

/// The body of one call to a bank (what DTM's quick start sends as JSON).
struct bank_request {
  std::string account;
  std::int64_t amount = 0;
  /// Ask the bank to refuse the call with a business failure, like the
  /// `TransInResult: "FAILURE"` field of DTM's quick start.
  bool fail = false;
};

/// One bank. Every call carries the branch context because the bank guards
/// its work with a barrier keyed by (gid, branch id, op): the runtime may send
/// a call again after a crash, and a rollback may arrive for an action that
/// never ran. Each call completes once the bank has answered; it throws
/// `wf::failure` if the bank refused the call for good.
class bank {
 public:
  virtual ~bank() = default;

  virtual boost::asio::awaitable<void> trans_out(const wf::branch_context& call, bank_request request) = 0;
  virtual boost::asio::awaitable<void> trans_out_revert(const wf::branch_context& call, bank_request request) = 0;
  virtual boost::asio::awaitable<void> trans_in(const wf::branch_context& call, bank_request request) = 0;
  virtual boost::asio::awaitable<void> trans_in_revert(const wf::branch_context& call, bank_request request) = 0;
};

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_BANK_HPP

// An in-memory bank: accounts in a map and a barrier in a set, printing one
// timeline line per call it receives.
#ifndef WF_EXAMPLES_TRANSFER_FAKE_BANK_HPP
#define WF_EXAMPLES_TRANSFER_FAKE_BANK_HPP

#include "bank.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace transfer {

class fake_bank final : public bank {
 public:
  /// What the bank did with one call.
  enum class verdict {
    applied,            ///< the money moved
    refused,            ///< business failure: nothing changed, `wf::failure` thrown
    duplicate,          ///< the same (gid, branch id, op) was already handled: no effect
    null_compensation,  ///< a rollback whose action never ran: no effect
    hanging,            ///< an action arriving after its rollback: no effect
  };
  struct call_record {
    std::string gid, branch_id, op, endpoint;
    verdict result;
  };

  fake_bank(std::string name, std::map<std::string, std::int64_t> accounts);

  boost::asio::awaitable<void> trans_out(const wf::branch_context& call, bank_request request) override;
  boost::asio::awaitable<void> trans_out_revert(const wf::branch_context& call, bank_request request) override;
  boost::asio::awaitable<void> trans_in(const wf::branch_context& call, bank_request request) override;
  boost::asio::awaitable<void> trans_in_revert(const wf::branch_context& call, bank_request request) override;

  /// The balance of `account` (0 if it does not exist).
  std::int64_t balance(const std::string& account) const;
  /// Every call received, in order.
  const std::vector<call_record>& calls() const noexcept { return calls_; }
  /// How many calls to `endpoint` for `gid` ended as `result`.
  std::size_t count(std::string_view gid, std::string_view endpoint, verdict result) const;

 private:
  // Runs `change` (which returns what it did, or throws wf::failure) behind
  // the barrier and prints the timeline line.
  void guarded(const wf::branch_context& call, std::string_view endpoint, const std::function<std::string()>& change);
  void print(const wf::branch_context& call, std::string_view endpoint, std::string_view what) const;
  std::int64_t& account(const std::string& name);

  std::string name_;
  std::map<std::string, std::int64_t> accounts_;
  // DTM's barrier table: (gid, branch id, op) rows. A real bank inserts the
  // row in the same local transaction as the balance change, so a business
  // failure leaves no row and the call can be answered the same way again.
  std::set<std::tuple<std::string, std::string, std::string>> barrier_;
  std::vector<call_record> calls_;
};

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_FAKE_BANK_HPP

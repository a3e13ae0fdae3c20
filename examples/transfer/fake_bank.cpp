#include "fake_bank.hpp"

#include <wf/errors.hpp>

#include <cstdio>

namespace transfer {

fake_bank::fake_bank(std::string name, std::map<std::string, std::int64_t> accounts)
    : name_(std::move(name)), accounts_(std::move(accounts)) {}

std::int64_t fake_bank::balance(const std::string& account) const {
  auto it = accounts_.find(account);
  return it == accounts_.end() ? 0 : it->second;
}

std::size_t fake_bank::count(std::string_view gid, std::string_view endpoint, verdict result) const {
  std::size_t n = 0;
  for (const auto& c : calls_)
    if (c.gid == gid && c.endpoint == endpoint && c.result == result) ++n;
  return n;
}

std::int64_t& fake_bank::account(const std::string& name) {
  auto it = accounts_.find(name);
  if (it == accounts_.end()) throw wf::failure(name_ + ": no account '" + name + "'");
  return it->second;
}

void fake_bank::print(const wf::branch_context& call, std::string_view endpoint, std::string_view what) const {
  std::printf("  [%s] %-15.*s %-8.*s branch %.*s  gid %.*s  %.*s\n", name_.c_str(),
              static_cast<int>(endpoint.size()), endpoint.data(), static_cast<int>(call.op.size()), call.op.data(),
              static_cast<int>(call.branch_id.size()), call.branch_id.data(), static_cast<int>(call.gid.size()),
              call.gid.data(), static_cast<int>(what.size()), what.data());
}

void fake_bank::guarded(const wf::branch_context& call, std::string_view endpoint,
                        const std::function<std::string()>& change) {
  // The views in `call` live for the call only; the barrier keeps copies.
  std::string gid(call.gid), branch_id(call.branch_id), op(call.op);
  auto record = [&](verdict v, std::string_view what) {
    calls_.push_back({gid, branch_id, op, std::string(endpoint), v});
    print(call, endpoint, what);
  };

  if (barrier_.count({gid, branch_id, op})) {
    // A second copy of a call already handled (the runtime re-sends a call
    // whose outcome it did not journal before a crash): answer success again.
    const bool after_rollback = op == "action" && barrier_.count({gid, branch_id, "rollback"});
    if (after_rollback)
      record(verdict::hanging, "ignored: its rollback came first");
    else
      record(verdict::duplicate, "duplicate ignored");
    return;
  }
  if (op == "rollback" && barrier_.emplace(gid, branch_id, "action").second) {
    // The action never ran here; the row just added also blocks it, should it
    // arrive late, so that money is never taken after it was "given back".
    barrier_.emplace(gid, branch_id, op);
    record(verdict::null_compensation, "null compensation ignored (its action never ran)");
    return;
  }

  std::string did;
  try {
    did = change();
  } catch (const wf::failure& f) {
    // No barrier row: in a real bank the local transaction rolls back with it.
    record(verdict::refused, std::string("refused: ") + f.what());
    throw;
  }
  barrier_.emplace(gid, branch_id, op);
  record(verdict::applied, "applied: " + did);
}

namespace {
std::string moved(const std::string& account, std::int64_t before, std::int64_t after) {
  return account + " " + std::to_string(before) + " -> " + std::to_string(after);
}
}  // namespace

// The endpoints are coroutines, though this bank never waits, so that a real
// bank client can implement the same interface.

boost::asio::awaitable<void> fake_bank::trans_out(const wf::branch_context& call, bank_request request) {
  guarded(call, "TransOut", [&] {
    if (request.fail) throw wf::failure(name_ + ": TransOut refused as asked");
    auto& balance = account(request.account);
    if (balance < request.amount)
      throw wf::failure(name_ + ": insufficient balance in '" + request.account + "'");
    const auto before = balance;
    balance -= request.amount;
    return moved(request.account, before, balance);
  });
  co_return;
}

boost::asio::awaitable<void> fake_bank::trans_out_revert(const wf::branch_context& call, bank_request request) {
  guarded(call, "TransOutRevert", [&] {
    auto& balance = account(request.account);
    const auto before = balance;
    balance += request.amount;
    return moved(request.account, before, balance);
  });
  co_return;
}

boost::asio::awaitable<void> fake_bank::trans_in(const wf::branch_context& call, bank_request request) {
  guarded(call, "TransIn", [&] {
    if (request.fail) throw wf::failure(name_ + ": TransIn refused as asked (fail_at_trans_in)");
    auto& balance = account(request.account);
    const auto before = balance;
    balance += request.amount;
    return moved(request.account, before, balance);
  });
  co_return;
}

boost::asio::awaitable<void> fake_bank::trans_in_revert(const wf::branch_context& call, bank_request request) {
  guarded(call, "TransInRevert", [&] {
    auto& balance = account(request.account);
    const auto before = balance;
    balance -= request.amount;
    return moved(request.account, before, balance);
  });
  co_return;
}

}  // namespace transfer

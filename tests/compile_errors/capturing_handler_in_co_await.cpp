// expect: wf: GCC < 13 miscompiles a capturing lambda written inside a co_await expression
// A handler chained on the branch that new_branch() returns is checked like
// an action: GCC 12 would destroy this lambda's captures twice (PR c++/100611).
#include <wf/wf.hpp>

#include <string>

namespace asio = boost::asio;

asio::awaitable<void> transfer(wf::workflow& w, std::string account) {
  auto debit = [](const wf::branch_context&) -> asio::awaitable<void> { co_return; };
  co_await w.new_branch("Debit")
      .on_rollback([account](const wf::branch_context&) -> asio::awaitable<void> { co_return; })
      .run(debit);
}

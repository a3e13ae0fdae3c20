// expect: wf: GCC < 13 miscompiles a capturing lambda written inside a co_await expression
// GCC 12 destroys this lambda's captures twice (PR c++/100611): run() refuses it.
#include <wf/wf.hpp>

#include <string>

namespace asio = boost::asio;

asio::awaitable<void> transfer(wf::workflow& w, std::string account) {
  co_await w.new_branch("Debit").run([account](const wf::branch_context&) -> asio::awaitable<void> { co_return; });
}

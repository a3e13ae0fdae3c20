// expect: wf: a workflow must be a function or a non-generic lambda
// A generic lambda has no single signature to read the input type from.
#include <wf/wf.hpp>

namespace asio = boost::asio;

void register_it(wf::runtime& rt) {
  rt.register_workflow("generic", [](wf::workflow&, auto) -> asio::awaitable<void> { co_return; });
}

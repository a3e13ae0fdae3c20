// expect: wf: no wf::codec<T> for this type
// An input type nobody wrote a wf::codec for.
#include <wf/wf.hpp>

namespace asio = boost::asio;

struct order {
  int id;
};

void register_it(wf::runtime& rt) {
  rt.register_workflow("order", [](wf::workflow&, order) -> asio::awaitable<void> { co_return; });
}

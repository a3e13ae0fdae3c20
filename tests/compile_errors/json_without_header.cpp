// expect: include <wf/json.hpp>
// boost::json::value used without wf/json.hpp, which holds its codec.
#include <wf/wf.hpp>

#include <boost/json/value.hpp>

namespace asio = boost::asio;

void register_it(wf::runtime& rt) {
  rt.register_workflow("json", [](wf::workflow&, boost::json::value) -> asio::awaitable<void> { co_return; });
}

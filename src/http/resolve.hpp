// A host name lookup bounded by the call's deadline.
//
// Asio's resolver runs getaddrinfo on a private thread, and neither its
// cancel() nor per-operation cancellation interrupts a lookup in progress:
// the completion waits for getaddrinfo, however long the system's resolver
// takes (several seconds per unreachable DNS server). So the call does not
// wait on the lookup's completion: the lookup reports into a shared state
// and wakes a timer the call waits on; at the deadline the call gives up and
// the lookup's late answer lands in that state, which nobody reads any more.
// Apart from the client so that the bound can be tested with a resolver that
// never answers (tests/http/http_client_test.cpp).
#ifndef WF_SRC_HTTP_RESOLVE_HPP
#define WF_SRC_HTTP_RESOLVE_HPP

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

namespace wf::http::detail {

using resolve_results = boost::asio::ip::tcp::resolver::results_type;

/// Resolves `host` and `port` with `resolver` (a `tcp::resolver`, or any
/// type with its `async_resolve(host, port, handler)` and `cancel()`), and
/// returns the lookup's error code and endpoints, or, if no answer came
/// first, `beast::error::timeout` at `deadline` and
/// `asio::error::operation_aborted` when the awaiting coroutine is cancelled
/// (per-operation, terminal). Then the lookup is cancelled (which skips it if
/// it has not started) and left to end on its own; the resolver is kept alive
/// until it does. The resolver's handler must run on the awaiting
/// coroutine's executor (or a strand of it).
template <class Resolver>
boost::asio::awaitable<std::pair<boost::system::error_code, resolve_results>> resolve_within(
    std::shared_ptr<Resolver> resolver, std::string host, std::string port,
    std::chrono::steady_clock::time_point deadline) {
  namespace asio = boost::asio;
  struct lookup {
    lookup(asio::any_io_executor ex, std::chrono::steady_clock::time_point deadline) : wake(ex, deadline) {}
    asio::steady_timer wake;  // rings at the deadline, or is cancelled by the answer
    bool answered = false;
    boost::system::error_code ec;
    resolve_results results;
  };
  auto state = std::make_shared<lookup>(co_await asio::this_coro::executor, deadline);
  auto on_answer = [state, resolver](boost::system::error_code ec, resolve_results results) {
    state->answered = true;
    state->ec = ec;
    state->results = std::move(results);
    state->wake.cancel();
  };
  resolver->async_resolve(host, port, std::move(on_answer));
  boost::system::error_code waited;
  co_await state->wake.async_wait(asio::redirect_error(asio::use_awaitable, waited));
  if (state->answered) co_return std::pair{state->ec, std::move(state->results)};
  resolver->cancel();
  // Only the answer cancels the timer: an abort without one is the caller's cancellation.
  if (waited == asio::error::operation_aborted) co_return std::pair{waited, resolve_results{}};
  co_return std::pair{boost::system::error_code(boost::beast::error::timeout), resolve_results{}};
}

}  // namespace wf::http::detail

#endif  // WF_SRC_HTTP_RESOLVE_HPP

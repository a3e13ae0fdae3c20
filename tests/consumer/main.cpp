// Registers and runs one workflow with an installed wf, found with components.
#include <wf/barrier.hpp>
#include <wf/http.hpp>
#include <wf/json.hpp>
#include <wf/postgres_store.hpp>
#include <wf/wf.hpp>
#ifdef CONSUMER_HAS_GRPC
#include <wf/grpc.hpp>
#endif
#ifdef CONSUMER_HAS_CONTROL
#include <wf/control.hpp>
#include <wf/memory_store.hpp>
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <iostream>

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  wf::runtime rt(io.get_executor(), std::make_shared<wf::memory_store>());
  rt.register_workflow("greet", [](wf::workflow& w, boost::json::value in) -> asio::awaitable<std::string> {
    const std::string name(in.at("name").as_string());
    // Named first: GCC 12 miscompiles a capturing lambda inside a co_await expression.
    auto hello = [name](const wf::branch_context&) -> asio::awaitable<std::string> { co_return "hello, " + name; };
    co_return co_await w.step("hello", hello);
  });
  const boost::json::value input = {{"name", "wf"}};
  std::string result;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    result = (co_await rt.execute("greet", "g1", input)).result;
  }, asio::detached);
  io.run();
  // wf::postgres links too (no database here: a bad option is refused first).
  try {
    wf::postgres_store::open({.connection = "", .schema = "Not Valid"});
    return EXIT_FAILURE;
  } catch (const wf::postgres_error&) {
  }
  if (wf::valid_identifier("Not Valid")) return EXIT_FAILURE;  // the barrier's half of wf::postgres
  // wf::http and wf::grpc link: their participant-side helpers run without a server.
  wf::http::client http(io.get_executor());
  if (http.connections_opened() != 0) return EXIT_FAILURE;
#ifdef CONSUMER_HAS_GRPC
  if (wf::grpc::failure_status("no").error_code() != grpc::StatusCode::ABORTED) return EXIT_FAILURE;
#endif
#ifdef CONSUMER_HAS_CONTROL
  {
    wf::control_options o;
    o.address = "127.0.0.1:0";
    wf::control_server control(std::make_shared<wf::memory_store>(), o);
    if (control.port() == 0) return EXIT_FAILURE;
  }
#endif
  std::cout << result << "\n";
  return result == "hello, wf" ? EXIT_SUCCESS : EXIT_FAILURE;
}

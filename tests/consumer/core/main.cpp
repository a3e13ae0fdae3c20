// Runs one workflow and reads a participant's ids with the core of an
// installed wf alone (wf::wf: Boost, no libpqxx, no gRPC).
#include <wf/barrier_info.hpp>
#include <wf/wf.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  wf::runtime rt(io.get_executor(), std::make_shared<wf::memory_store>());
  rt.register_workflow("count", [](wf::workflow& w, int n) -> asio::awaitable<int> {
    auto twice = [n](const wf::branch_context&) -> asio::awaitable<int> { co_return 2 * n; };
    co_return co_await w.step("twice", twice);
  });
  int result = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    result = (co_await rt.execute("count", "c1", 21)).result_as<int>();
  }, asio::detached);
  io.run();
  // What a gRPC participant does with its metadata, without wf::postgres.
  const std::multimap<std::string, std::string> metadata = {
      {"dtm-gid", "c1"}, {"dtm-trans_type", "workflow"}, {"dtm-branch_id", "01"}, {"dtm-op", "action"}};
  const wf::barrier_info info = wf::barrier_from_metadata(metadata);
  std::cout << result << " " << info.gid << "/" << info.branch_id << "/" << info.op << "\n";
  return result == 42 && info.op == "action" ? EXIT_SUCCESS : EXIT_FAILURE;
}

// wf_transfer_in_memory - DTM's inter-bank transfer as a wf workflow, against
// two in-memory banks: a successful transfer, a rollback, and a crash with
// recovery. Exits 0 only if every scenario run ended as expected.
//
// Usage: wf_transfer_in_memory [--scenario success|rollback|crash|all]
#include "scenarios.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

void print_usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--scenario success|rollback|crash|all]\n", program);
}

}  // namespace

int main(int argc, char* argv[]) {
  std::string_view scenario = "all";
  if (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
    print_usage(argv[0]);
    return EXIT_SUCCESS;
  }
  if (argc == 3 && std::string_view(argv[1]) == "--scenario") {
    scenario = argv[2];
  } else if (argc != 1) {
    print_usage(argv[0]);
    return EXIT_FAILURE;
  }
  const bool all = scenario == "all";
  if (!all && scenario != "success" && scenario != "rollback" && scenario != "crash") {
    print_usage(argv[0]);
    return EXIT_FAILURE;
  }

  // Line by line even into a pipe, so that the timeline up to a crash of the
  // program itself is not lost in a buffer.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::printf("wf transfer example: alice (bank A) pays bob (bank B) with branches TransOut then TransIn.\n");
  std::printf("Timeline lines: [bank] endpoint, op, branch id, gid, and what the bank did.\n");

  std::vector<transfer::scenario_result> results;
  // Each scenario catches nothing: an exception here is a bug of the example
  // or of wf, and should end the program loudly.
  if (all || scenario == "success") results.push_back(transfer::run_success_scenario());
  if (all || scenario == "rollback") results.push_back(transfer::run_rollback_scenario());
  if (all || scenario == "crash") results.push_back(transfer::run_crash_scenario());

  bool passed = true;
  std::printf("\n=== summary ===\n");
  for (const auto& r : results) {
    std::printf("  %-8s %s  %s\n", r.name.c_str(), r.passed ? "PASS" : "FAIL", r.summary.c_str());
    for (const auto& f : r.failures) std::printf("             expected: %s\n", f.c_str());
    passed = passed && r.passed;
  }
  std::printf("%s\n", passed ? "all scenarios ended as expected" : "some scenarios did not end as expected");
  return passed ? EXIT_SUCCESS : EXIT_FAILURE;
}

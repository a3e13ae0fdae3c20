// Fuzz target: the barrier's parameters as a participant receives them, from
// an HTTP request target (wf::barrier_from_query) and from gRPC metadata
// (wf::barrier_from_metadata). Whatever the bytes, the answer is a
// barrier_info whose four fields are non-empty, NUL-free, valid UTF-8 and
// within the table's column sizes, or std::invalid_argument; anything else is
// a finding. Also the checks wf applies to names it stores (text.hpp).
//
// Input: the first byte picks the form (even: a query/target, odd: metadata as
// "key=value" lines); the rest is the text.
#include "text.hpp"

#include <wf/barrier_info.hpp>

#include <boost/url/src.hpp>  // Boost.URL compiled here, instrumented

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

void check_field(const std::string& v, std::size_t max_chars) {
  if (v.empty() || v.find('\0') != std::string::npos) __builtin_trap();
  if (!wf::detail::name_problem(v, 4 * max_chars).empty()) __builtin_trap();  // not valid UTF-8
  std::size_t chars = 0;
  for (unsigned char c : v) chars += (c & 0xC0) != 0x80;
  if (chars > max_chars) __builtin_trap();
}

void check(const wf::barrier_info& b) {
  check_field(b.trans_type, 45);
  check_field(b.gid, 128);
  check_field(b.branch_id, 128);
  check_field(b.op, 45);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)wf::detail::name_problem(text);
  const std::string stored = wf::detail::storable_text(text);
  if (!wf::detail::name_problem(stored, stored.size()).empty()) __builtin_trap();  // must always be storable
  try {
    if (data[0] % 2 == 0) {
      check(wf::barrier_from_query(text));
    } else {
      std::multimap<std::string, std::string> metadata;
      std::size_t start = 0;
      while (start <= text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        const auto line = text.substr(start, end - start);
        const auto eq = line.find('=');
        if (eq != std::string_view::npos)
          metadata.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
        start = end + 1;
      }
      check(wf::barrier_from_metadata(metadata));
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

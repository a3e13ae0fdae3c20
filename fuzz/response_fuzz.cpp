// Fuzz target: a participant's HTTP answer, as wf::http's client reads it
// (Beast's parser, with the client's body limit) and interprets it (DTM's
// conventions: 200 is the result, 409 wf::failure, 425 wf::ongoing, anything
// else wf::http::transport_error; with DTM's legacy bodies, a 200 saying
// ONGOING or FAILURE is ongoing or a failure). Whatever the bytes, the only
// acceptable ends are a parse error, a result or one of those exceptions.
#include "http/answer.hpp"

#include <wf/errors.hpp>
#include <wf/http.hpp>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace bhttp = boost::beast::http;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);  // the connection closed here
    if (ec || !parser.is_done()) return 0;
  }
  auto res = parser.release();
  const unsigned status = res.result_int();
  // Once as wf reads answers by default, once with client_options::dtm_legacy_bodies.
  for (const bool legacy : {false, true}) {
    const bool says_ongoing = legacy && status == 200 && res.body().find("ONGOING") != std::string::npos;
    const bool says_failure = legacy && status == 200 && !says_ongoing && res.body().find("FAILURE") != std::string::npos;
    try {
      const std::string body = wf::http::detail::interpret(status, res.body(), "fuzz:80", legacy);
      if (status != 200 || says_ongoing || says_failure) __builtin_trap();
      if (body != res.body()) __builtin_trap();
    } catch (const wf::failure&) {
      if (status != 409 && !says_failure) __builtin_trap();
    } catch (const wf::ongoing&) {
      if (status != 425 && !says_ongoing) __builtin_trap();
    } catch (const wf::http::transport_error&) {
      if (status == 200 || status == 409 || status == 425) __builtin_trap();
    }
  }
  return 0;
}

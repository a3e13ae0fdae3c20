// Fuzz target: a participant's HTTP answer, as wf::http's client reads it
// (Beast's parser, with the client's body limit) and interprets it (DTM's
// conventions: 200 is the result, 409 wf::failure, 425 wf::ongoing, anything
// else wf::http::transport_error). Whatever the bytes, the only acceptable
// ends are a parse error, a result or one of those exceptions.
#include "http/answer.hpp"

#include <wf/errors.hpp>
#include <wf/http.hpp>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>

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
  try {
    const std::string body = wf::http::detail::interpret(res.result_int(), std::move(res.body()), "fuzz:80");
    if (res.result_int() != 200) __builtin_trap();
    (void)body;
  } catch (const wf::failure&) {
    if (res.result_int() != 409) __builtin_trap();
  } catch (const wf::ongoing&) {
    if (res.result_int() != 425) __builtin_trap();
  } catch (const wf::http::transport_error&) {
    if (res.result_int() == 200 || res.result_int() == 409 || res.result_int() == 425) __builtin_trap();
  }
  return 0;
}

// What a participant's HTTP answer means to the workflow (DTM's conventions).
// Apart from the client so that it can be fuzzed on its own (fuzz/).
#ifndef WF_SRC_HTTP_ANSWER_HPP
#define WF_SRC_HTTP_ANSWER_HPP

#include "../text.hpp"

#include <wf/errors.hpp>
#include <wf/http.hpp>

#include <string>

namespace wf::http::detail {

/// The body of a 200; throws `wf::failure` for 409 and `wf::ongoing` for 425
/// (with the body as the reason, or a default when it is empty), and
/// `transport_error` for any other status. `from` is "host:port".
inline std::string interpret(unsigned status, std::string body, const std::string& from) {
  switch (status) {
    case 200:
      return body;
    case 409:
      throw failure(body.empty() ? "HTTP 409 from " + from : std::move(body));
    case 425:
      throw ongoing(body.empty() ? "HTTP 425 from " + from : std::move(body));
    default:
      throw transport_error("wf::http: HTTP " + std::to_string(status) + " from " + from + ": " +
                            wf::detail::snippet(body));
  }
}

}  // namespace wf::http::detail

#endif  // WF_SRC_HTTP_ANSWER_HPP

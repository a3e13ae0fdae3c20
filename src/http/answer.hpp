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
///
/// With `dtm_legacy_bodies`, a 200 is read as DTM's HTTPResp2DtmError
/// (client/dtmcli/utils.go, "compatible with version < v1.10") reads it: a
/// body containing "ONGOING" is ongoing, else one containing "FAILURE" is a
/// failure, with the body as the reason. DTM applies these words to every
/// status; here they only turn a 200 into something else, so that a proxy's
/// 502 page that says "FAILURE" stays a transient error and is retried rather
/// than rolling the workflow back.
inline std::string interpret(unsigned status, std::string body, const std::string& from,
                             bool dtm_legacy_bodies = false) {
  switch (status) {
    case 200:
      if (dtm_legacy_bodies) {
        // In DTM's order: ONGOING first.
        if (body.find("ONGOING") != std::string::npos) throw ongoing(std::move(body));
        if (body.find("FAILURE") != std::string::npos) throw failure(std::move(body));
      }
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

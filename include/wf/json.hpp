// wf/json.hpp - Boost.JSON values as workflow inputs, results and values.
//
// Include this header (and link `wf::json`, which brings Boost.JSON) to pass a
// `boost::json::value` where wf takes a typed value: `runtime::execute`,
// workflow inputs and results, branch results, recorded values. Values are
// stored as serialized JSON text; decoding bytes that are not JSON throws
// `wf::decode_error`. Kept out of wf/codec.hpp so that the core headers do not
// bring Boost.JSON into every translation unit of a user's program.
//
// Inputs are compared as bytes (an existing gid with a different input is a
// `wf::conflict_error`): equal objects built with their keys in another order
// serialize differently.
#ifndef WF_JSON_HPP
#define WF_JSON_HPP

#include <wf/codec.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace wf {

template <>
struct codec<boost::json::value> {
  static std::string encode(const boost::json::value& v) { return boost::json::serialize(v); }
  static boost::json::value decode(std::string_view b) {
    boost::system::error_code ec;
    auto v = boost::json::parse(b, ec);
    if (ec) throw decode_error("wf::codec: invalid JSON: " + ec.message());
    return v;
  }
};

}  // namespace wf

#endif  // WF_JSON_HPP

// wf/protobuf.hpp - Protobuf messages as workflow inputs, results and values.
//
// Include this header (and link `wf::protobuf`) to pass any generated message
// type where wf takes a typed value: `runtime::execute`, workflow inputs and
// results, branch results. Messages are stored in their binary wire format.
#ifndef WF_PROTOBUF_HPP
#define WF_PROTOBUF_HPP

#include <wf/codec.hpp>

#include <google/protobuf/message_lite.h>

#include <string>
#include <string_view>
#include <type_traits>

namespace wf {

template <class T>
struct codec<T, std::enable_if_t<std::is_base_of_v<google::protobuf::MessageLite, T>>> {
  static std::string encode(const T& m) {
    std::string out;
    if (!m.SerializeToString(&out))
      throw decode_error("wf::codec: cannot serialize " + m.GetTypeName() + " (missing required fields?)");
    return out;
  }
  static T decode(std::string_view b) {
    T m;
    if (!m.ParseFromArray(b.data(), static_cast<int>(b.size())))
      throw decode_error("wf::codec: bytes are not a valid " + m.GetTypeName());
    return m;
  }
};

}  // namespace wf

#endif  // WF_PROTOBUF_HPP

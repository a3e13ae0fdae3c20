// Codecs and ids, through the public headers together. (Each header is also
// compiled on its own: the wf_header_checks target in tests/CMakeLists.txt.)
#include <wf/codec.hpp>
#include <wf/errors.hpp>
#include <wf/barrier.hpp>
#include <wf/http.hpp>
#include <wf/json.hpp>
#include <wf/journal.hpp>
#include <wf/memory_store.hpp>
#include <wf/protobuf.hpp>
#include <wf/retry_policy.hpp>
#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/testing.hpp>
#include <wf/wf.hpp>
#include <wf/workflow.hpp>

#include <google/protobuf/wrappers.pb.h>

#include <catch2/catch.hpp>

TEST_CASE("codecs round-trip strings, numbers, bools, JSON and Protobuf messages") {
  CHECK(wf::decode<std::string>(wf::encode(std::string("a\0b", 3))) == std::string("a\0b", 3));
  CHECK(wf::decode<int>(wf::encode(-42)) == -42);
  CHECK(wf::decode<std::uint64_t>(wf::encode(std::uint64_t{18446744073709551615ull})) == 18446744073709551615ull);
  CHECK(wf::decode<bool>(wf::encode(true)));
  boost::json::value v = {{"amount", 30}, {"to", "bob"}};
  CHECK(wf::decode<boost::json::value>(wf::encode(v)) == v);
  google::protobuf::StringValue m;
  m.set_value("hello");
  CHECK(wf::decode<google::protobuf::StringValue>(wf::encode(m)).value() == "hello");
}

TEST_CASE("decoding garbage is a decode_error") {
  CHECK_THROWS_AS(wf::decode<int>("12x"), wf::decode_error);
  CHECK_THROWS_AS(wf::decode<bool>("yes"), wf::decode_error);
  CHECK_THROWS_AS(wf::decode<boost::json::value>("{"), wf::decode_error);
  CHECK_THROWS_AS(wf::decode<google::protobuf::StringValue>("\xff\xff\xff"), wf::decode_error);
}

TEST_CASE("new_gid makes distinct version-4 UUIDs") {
  auto a = wf::new_gid(), b = wf::new_gid();
  CHECK(a != b);
  REQUIRE(a.size() == 36);
  CHECK(a[14] == '4');
}

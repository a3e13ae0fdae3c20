// What the barrier (src/store/postgres/barrier.cpp, wf::postgres) shares with
// the parsing of its ids (barrier_info.cpp, in the core).
#ifndef WF_SRC_PARTICIPANT_BARRIER_CHECK_HPP
#define WF_SRC_PARTICIPANT_BARRIER_CHECK_HPP

#include <wf/barrier_info.hpp>

#include <string>
#include <string_view>

namespace wf::detail {

/// Throws std::invalid_argument ("wf::barrier: barrier_info.gid is empty"...)
/// unless `info` passes the checks barrier_from_query applies to what it reads.
void check_barrier_info(const barrier_info& info);

/// `s` between single quotes for an error message, cut after 48 bytes ("...").
std::string quoted_for_error(std::string_view s);

}  // namespace wf::detail

#endif  // WF_SRC_PARTICIPANT_BARRIER_CHECK_HPP

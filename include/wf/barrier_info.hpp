// wf/barrier_info.hpp - the participant's side: which call of which workflow
// a request is, read from DTM's query parameters (HTTP) or metadata (gRPC).
//
// Part of the core (target wf::wf, which needs only Boost): a participant that
// reads the ids, whatever it then guards its work with, links neither libpqxx
// nor gRPC. wf/barrier.hpp (target wf::postgres) includes this header and adds
// the barrier on PostgreSQL.
//
//     // HTTP: POST /transfer-out?gid=...&trans_type=workflow&branch_id=01&op=action
//     wf::barrier_info info = wf::barrier_from_query(request.target());
//     // gRPC: metadata dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op
//     wf::barrier_info info = wf::barrier_from_metadata(metadata);
//
// Thread-safety: the functions may be called from any thread.
#ifndef WF_BARRIER_INFO_HPP
#define WF_BARRIER_INFO_HPP

#include <map>
#include <string>
#include <string_view>

namespace wf {

struct branch_context;  // wf/workflow.hpp

/// Which call of which workflow a participant is serving, as DTM sends it.
struct barrier_info {
  std::string trans_type;  ///< "workflow" for wf (DTM also sends "saga", "tcc"...)
  std::string gid;         ///< the workflow id
  std::string branch_id;   ///< the branch, e.g. "01"
  std::string op;          ///< "action", "rollback", "commit", "finish", "try", "confirm", "cancel", "compensate"

  friend bool operator==(const barrier_info&, const barrier_info&) = default;
};

/// Reads the barrier info of an HTTP call: the query parameters gid,
/// trans_type, branch_id and op, percent-decoded ('+' is a space, as in HTML
/// forms and Go's url.Values). `target_or_query` is a request target
/// ("/transfer?gid=g1&trans_type=workflow&branch_id=01&op=action"), an
/// absolute URL ("http://host/transfer?..."), or just the query, with or
/// without its leading '?'. Other parameters are ignored.
/// Throws std::invalid_argument, naming the parameter, when one of the four is
/// missing, empty, not valid UTF-8, given twice with different values or too
/// long for the barrier table (trans_type and op 45 characters, gid and
/// branch_id 128), when op is not one of the ops above (DTM's "msg" is
/// refused: its duplicate is an error), or when the target is malformed.
barrier_info barrier_from_query(std::string_view target_or_query);

/// Reads the barrier info of a gRPC call from its metadata: dtm-gid,
/// dtm-trans_type, dtm-branch_id, dtm-op (values taken as they are, not
/// percent-decoded). Throws std::invalid_argument as barrier_from_query does.
barrier_info barrier_from_metadata(const std::multimap<std::string, std::string>& metadata);

/// The barrier info of a call wf makes itself, for work guarded by the
/// barrier in the workflow's own process (a local step, or a branch whose
/// action and compensation are local transactions): `trans_type`, then the
/// gid, branch id and op of `call`, each in its place (no order of strings
/// to get wrong). Throws std::invalid_argument as the functions above do.
barrier_info barrier_info_of(const branch_context& call, std::string trans_type = "workflow");

}  // namespace wf

#endif  // WF_BARRIER_INFO_HPP

// Clients of a remote bank (bank_service.hpp) as the `bank` the transfer
// workflow calls: over HTTP with wf::http, or over gRPC with wf::grpc.
#ifndef WF_EXAMPLES_TRANSFER_REMOTE_BANK_HPP
#define WF_EXAMPLES_TRANSFER_REMOTE_BANK_HPP

#include "bank.hpp"

#include <wf/http.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace transfer {

/// A bank at `base_url` ("http://127.0.0.1:8081"), called with `client`.
std::shared_ptr<bank> make_http_bank(std::shared_ptr<wf::http::client> client, std::string base_url);

/// A bank at `target` ("127.0.0.1:9081"), called over a channel of its own,
/// each call with a deadline of `timeout`.
std::shared_ptr<bank> make_grpc_bank(const std::string& target,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(3));

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_REMOTE_BANK_HPP

#include "transfer_workflow.hpp"

#include <wf/errors.hpp>

#include <boost/json/object.hpp>

#include <cstdio>

namespace asio = boost::asio;

namespace transfer {

boost::json::value to_json(const transfer_request& request) {
  boost::json::object o;
  o["from"] = request.from;
  o["to"] = request.to;
  o["amount"] = request.amount;
  o["fail_at_trans_in"] = request.fail_at_trans_in;
  return o;
}

namespace {
std::string string_field(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_string() || v->get_string().empty())
    throw wf::failure(std::string("invalid input: \"") + key + "\" must be a non-empty string");
  return std::string(v->get_string());
}
}  // namespace

transfer_request parse_transfer(const boost::json::value& input) {
  const auto* o = input.if_object();
  if (!o) throw wf::failure("invalid input: not a JSON object");
  transfer_request r;
  r.from = string_field(*o, "from");
  r.to = string_field(*o, "to");
  const auto* amount = o->if_contains("amount");
  if (!amount || !amount->is_int64() || amount->get_int64() <= 0)
    throw wf::failure("invalid input: \"amount\" must be a positive integer");
  r.amount = amount->get_int64();
  if (const auto* fail = o->if_contains("fail_at_trans_in")) {
    if (!fail->is_bool()) throw wf::failure("invalid input: \"fail_at_trans_in\" must be a boolean");
    r.fail_at_trans_in = fail->get_bool();
  }
  return r;
}

namespace {

// The workflow itself. A plain coroutine function rather than a capturing
// coroutine lambda: its arguments live in its own frame, so nothing it uses
// can die while it waits.
asio::awaitable<std::string> run_transfer(wf::workflow& w, boost::json::value input, std::shared_ptr<bank> from_bank,
                                          std::shared_ptr<bank> to_bank, transfer_hooks hooks) {
  const transfer_request req = parse_transfer(input);

  // Printing is the one side effect allowed outside branches: it changes
  // nothing the replay depends on. It shows which branches come from the journal.
  if (w.replaying()) {
    std::printf("  [workflow] gid %s: replaying the journal (journaled calls are not sent again)\n", w.gid().c_str());
    std::fflush(stdout);
  }

  // Handlers and actions capture by value: the runtime keeps the handlers
  // until the workflow finishes, long after these statements. They are named
  // locals, not temporaries inside the co_await: GCC 12 miscompiles a closure
  // holding a std::string that is made inside a co_await expression.
  const bank_request out{req.from, req.amount, false};
  auto trans_out = [from_bank, out](const wf::branch_context& c) { return from_bank->trans_out(c, out); };
  auto trans_out_revert = [from_bank, out](const wf::branch_context& c) { return from_bank->trans_out_revert(c, out); };
  const bool fresh = !w.replaying();
  co_await w.new_branch("TransOut").on_rollback(trans_out_revert).run(trans_out);
  // run() returns once TransOut's outcome is in the journal.
  if (fresh && hooks.after_trans_out) hooks.after_trans_out(w.gid());

  const bank_request in{req.to, req.amount, req.fail_at_trans_in};
  auto trans_in = [to_bank, in](const wf::branch_context& c) { return to_bank->trans_in(c, in); };
  auto trans_in_revert = [to_bank, in](const wf::branch_context& c) { return to_bank->trans_in_revert(c, in); };
  co_await w.new_branch("TransIn").on_rollback(trans_in_revert).run(trans_in);

  co_return "transferred " + std::to_string(req.amount) + " from " + req.from + " to " + req.to;
}

}  // namespace

void register_transfer(wf::runtime& rt, std::shared_ptr<bank> from_bank, std::shared_ptr<bank> to_bank,
                       transfer_hooks hooks, wf::workflow_options options, const std::string& name) {
  rt.register_workflow(
      name,
      [from_bank, to_bank, hooks](wf::workflow& w, boost::json::value input) {
        return run_transfer(w, std::move(input), from_bank, to_bank, hooks);
      },
      options);
}

}  // namespace transfer

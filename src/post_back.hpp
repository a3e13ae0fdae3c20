// Completing an Asio operation from another thread (a database worker, a gRPC
// callback): the caller's executor is kept busy while the work is done
// elsewhere, and the handler runs on that executor.
#ifndef WF_SRC_POST_BACK_HPP
#define WF_SRC_POST_BACK_HPP

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <mutex>
#include <utility>

namespace wf::detail {

/// The executor `handler` runs on, counted as outstanding work: hold it while
/// another thread works for the handler, so that its io_context does not run
/// out of work meanwhile.
template <class Handler>
auto tracked_executor(const Handler& handler) {
  return boost::asio::prefer(boost::asio::get_associated_executor(handler),
                             boost::asio::execution::outstanding_work.tracked);
}

/// From any thread: runs `handler(args...)` on the executor `tracked` came
/// from; the posted function keeps that io_context busy (it holds `tracked`)
/// until the handler has run. post() still touches the io_context after it
/// has queued the function (it signals the io_context's threads), so the
/// function does not start until post() has returned here: otherwise the
/// handler could run, its caller stop and destroy the io_context, and this
/// thread then signal a destroyed condition variable (ThreadSanitizer saw it).
template <class Executor, class Handler, class... Args>
void post_back(Executor tracked, Handler handler, Args... args) {
  auto posting = std::make_shared<std::mutex>();
  std::unique_lock posted(*posting);
  auto target = boost::asio::prefer(tracked, boost::asio::execution::outstanding_work.untracked);
  boost::asio::post(target, [posting, h = std::move(handler), busy = std::move(tracked),
                             ... a = std::move(args)]() mutable {
    { std::lock_guard wait_for_post(*posting); }  // held by the posting thread for a few microseconds at most
    std::move(h)(std::move(a)...);
  });
  posted.unlock();
}

}  // namespace wf::detail

#endif  // WF_SRC_POST_BACK_HPP

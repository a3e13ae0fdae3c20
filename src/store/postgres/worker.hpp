// A thread that owns one PostgreSQL connection and runs jobs on it, and the
// bridge that runs a job there and completes on the caller's executor.
#ifndef WF_SRC_STORE_POSTGRES_WORKER_HPP
#define WF_SRC_STORE_POSTGRES_WORKER_HPP

#include "../../remote_completion.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/connection>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace wf::detail::pg {

/// A move-only `void()`.
class job {
 public:
  job() = default;
  template <class F>
  explicit job(F f) : p_(std::make_unique<model<F>>(std::move(f))) {}
  void operator()() { p_->call(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  struct concept_base {
    virtual ~concept_base() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct model final : concept_base {
    explicit model(F f) : fn(std::move(f)) {}
    void call() override { fn(); }
    F fn;
  };
  std::unique_ptr<concept_base> p_;
};

/// Connects with `conninfo` and runs the prepare step; throws postgres_error
/// (without the connection string) if it cannot.
std::unique_ptr<pqxx::connection> connect(const std::string& conninfo);

/// One connection, opened on first use and re-opened (and counted in
/// `reconnects`) after it broke. Used by one thread at a time.
class session {
 public:
  using prepare_fn = std::function<void(pqxx::connection&)>;
  session(std::string conninfo, prepare_fn prepare, std::atomic<std::uint64_t>& reconnects);

  /// The connection, (re)connecting and preparing it if needed. Throws on failure.
  pqxx::connection& connection();
  /// The connection broke: drop it, so that the next use reconnects.
  void reset() noexcept;

 private:
  std::string conninfo_;
  prepare_fn prepare_;
  std::atomic<std::uint64_t>& reconnects_;
  std::unique_ptr<pqxx::connection> conn_;
  bool lost_ = false;  // the connection broke: the next one is a reconnection
};

/// One thread, one session, a FIFO of jobs. A job that finds the
/// connection broken gets it re-opened on its next use.
class worker {
 public:
  using prepare_fn = session::prepare_fn;
  worker(std::string conninfo, prepare_fn prepare, std::atomic<std::uint64_t>& reconnects);
  ~worker();

  /// Queues `j`; jobs run one at a time, in order, on the worker's thread.
  void submit(job j);

  /// For a job: the connection, (re)connecting if needed. Throws on failure.
  pqxx::connection& connection() { return session_.connection(); }
  /// For a job: the connection broke; drop it so that the next job reconnects.
  void reset() noexcept { session_.reset(); }

 private:
  void run();

  session session_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

/// Runs `fn(pqxx::connection&) -> T` on `w` and completes the awaiting
/// coroutine, on its own executor, with the value or the exception. Not a
/// coroutine itself; pass `fn` as a named variable (GCC 12, see docs).
template <class T, class Fn>
boost::asio::awaitable<T> on_worker(worker& w, Fn fn) {
  auto init = [&w](auto handler, Fn f) {
    remote_completion<std::exception_ptr, T> done(std::move(handler));
    w.submit(job([&w, done = std::move(done), f = std::move(f)]() mutable {
      std::exception_ptr error;
      T value{};
      try {
        value = f(w.connection());
      } catch (const pqxx::broken_connection&) {
        w.reset();
        error = std::current_exception();
      } catch (...) {
        error = std::current_exception();
      }
      done.complete(error, std::move(value));
    }));
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
      std::move(init), boost::asio::use_awaitable, std::move(fn));
}

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_WORKER_HPP

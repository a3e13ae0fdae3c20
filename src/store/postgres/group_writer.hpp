// The group-commit writer of the PostgreSQL store: one thread, one session,
// commits the journal writes and creations of concurrent workflows in groups.
#ifndef WF_SRC_STORE_POSTGRES_GROUP_WRITER_HPP
#define WF_SRC_STORE_POSTGRES_GROUP_WRITER_HPP

#include "worker.hpp"

#include <wf/postgres_store.hpp>
#include <wf/store.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

namespace wf::detail::pg {

/// One creation or one commit() call, waiting for its group's transaction.
struct write_op {
  virtual ~write_op() = default;
  virtual void complete(std::exception_ptr error) = 0;
  std::optional<workflow_state> create;  // a creation, or
  std::vector<write> writes;             // the writes of a commit() call
  create_result created;                 // results, filled in by the writer
  std::vector<write_status> statuses;
};

/// Whatever has queued up while the previous transaction was committing (up
/// to `max_batch`, after waiting at most `batch_wait` for more) goes into one
/// transaction; each caller resumes once its group is durable.
class group_writer {
 public:
  group_writer(const postgres_options& o, session::prepare_fn prepare, std::atomic<std::uint64_t>& reconnects);
  ~group_writer();

  /// Queues a creation (T = create_result) or the writes of a commit() call
  /// (T = std::vector<write_status>) for the next group; completes once durable.
  template <class T>
  boost::asio::awaitable<T> submit(std::optional<workflow_state> create, std::vector<write> writes) {
    auto init = [this](auto handler, std::optional<workflow_state> c, std::vector<write> w) {
      auto op = std::make_unique<op_model<T>>(remote_completion<std::exception_ptr, T>(std::move(handler)));
      op->create = std::move(c);
      op->writes = std::move(w);
      enqueue(std::move(op));
    };
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
        std::move(init), boost::asio::use_awaitable, std::move(create), std::move(writes));
  }

  std::uint64_t transactions() const noexcept { return transactions_; }
  std::uint64_t writes() const noexcept { return writes_; }

 private:
  template <class T>
  struct op_model final : write_op {
    explicit op_model(remote_completion<std::exception_ptr, T> d) : done(std::move(d)) {}
    void complete(std::exception_ptr error) override {
      T value{};
      if (!error) {
        if constexpr (std::is_same_v<T, create_result>)
          value = std::move(created);
        else
          value = std::move(statuses);
      }
      done.complete(error, std::move(value));
    }
    remote_completion<std::exception_ptr, T> done;
  };

  void enqueue(std::unique_ptr<write_op> op);
  void run();
  void commit_group(std::vector<std::unique_ptr<write_op>>& group);
  void run_transaction(std::vector<std::unique_ptr<write_op>>::iterator first,
                       std::vector<std::unique_ptr<write_op>>::iterator last);

  session session_;
  std::string schema_;
  std::size_t max_batch_;
  std::chrono::microseconds wait_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<write_op>> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> transactions_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::shared_ptr<wf::observer> observer_;
  std::thread thread_;
};

/// One write in its own statements (the path of a group in which a workflow
/// has several writes, or of a retried write).
write_status apply_write(pqxx::transaction_base& tx, const write& w);

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_GROUP_WRITER_HPP

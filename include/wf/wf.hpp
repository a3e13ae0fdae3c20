// wf/wf.hpp - the core of wf in one include: runtime, workflows, stores, errors.
// Optional parts have their own headers and targets: wf/protobuf.hpp
// (wf::protobuf), wf/testing.hpp (wf::testing).
#ifndef WF_WF_HPP
#define WF_WF_HPP

#include <wf/clock.hpp>
#include <wf/codec.hpp>
#include <wf/errors.hpp>
#include <wf/journal.hpp>
#include <wf/memory_store.hpp>
#include <wf/observer.hpp>
#include <wf/retry_policy.hpp>
#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/when_all.hpp>
#include <wf/workflow.hpp>

#endif  // WF_WF_HPP

// Makes Debian's Abseil synchronization visible to ThreadSanitizer (TSan builds only; linked into
// every executable of a build configured with OUTREACH_SANITIZE=thread, see CMakeLists.txt).
//
// Why: libabsl_synchronization.so is not built with -fsanitize=thread, so TSan never sees
// absl::Mutex lock or unlock. Every access our code makes under an absl::Mutex then looks
// unsynchronized, and absl evaluates a waiter's Condition (our code) in whichever thread releases
// the lock. Without this file the store's fault tests alone report about 1500 "data races", all of
// them accesses guarded by an absl::Mutex (the writer's queue, the commands in it, the
// completion callbacks). Suppressing those would suppress every race in our code.
//
// How: this file defines the absl::Mutex, absl::CondVar and absl::Notification members that
// our code and libgrpc call (gRPC's own mutexes are absl::Mutex). Being defined in the
// executable, and exported from it (-rdynamic), these definitions win symbol resolution for
// the executable and every shared library. Each one forwards to Abseil's own definition (found
// with dlsym(RTLD_NEXT, ...)) inside the annotations of TSan's mutex API, the same ones Abseil
// makes when it is itself built with TSan (absl/synchronization/mutex.cc). Everything between a
// pre- and post- annotation is ignored by TSan, which covers the Conditions Abseil evaluates on
// another thread's behalf while it holds the lock.
//
// Thread-safe: each forwarder resolves its target once, in a function-local static.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#if !ABSL_OPTION_USE_INLINE_NAMESPACE
#error "the mangled names below assume Abseil's inline namespace"
#endif

namespace {

#define OUTREACH_STRINGIFY_INNER(x) #x
#define OUTREACH_STRINGIFY(x) OUTREACH_STRINGIFY_INNER(x)

// The Itanium mangling of absl::<inline namespace>::<rest>, e.g. "5Mutex4LockEv"; a const member
// passes "K" as `qualifier`.
std::string Mangled(const char* qualifier, const char* rest) {
  const char* ns = OUTREACH_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return std::string("_ZN") + qualifier + "4absl" + std::to_string(std::strlen(ns)) + ns + rest;
}

// Abseil's own definition of the member whose mangled name ends in `rest`, as a function taking
// `this` first (the Itanium C++ ABI's calling convention for member functions).
template <typename Fn>
Fn Real(const char* qualifier, const char* rest) {
  const std::string name = Mangled(qualifier, rest);
  void* symbol = dlsym(RTLD_NEXT, name.c_str());
  if (symbol == nullptr) {
    std::fprintf(stderr, "absl_mutex_annotations: %s not found in Abseil: %s\n", name.c_str(),
                 dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(symbol);
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;

constexpr unsigned kRead = __tsan_mutex_read_lock;

// Abseil calls its own exported members (AwaitWithTimeout calls AwaitWithDeadline, Notify calls
// Lock), and those calls come back here. Only the outermost call is annotated: everything inside
// it is already ignored by TSan, and a second annotation would unlock a mutex twice.
thread_local int depth = 0;

class Outermost {
 public:
  Outermost() : outermost_(depth++ == 0) {}
  ~Outermost() { --depth; }
  Outermost(const Outermost&) = delete;
  Outermost& operator=(const Outermost&) = delete;
  bool operator()() const { return outermost_; }

 private:
  const bool outermost_;
};

// Lock-and-wait calls (Await, CondVar::Wait) hold `mu` before and after; inside, Abseil
// releases and retakes it. To TSan: an unlock, then (everything ignored) the wait, then a lock.
template <typename Call>
auto AroundWait(Mutex* mu, unsigned flags, Call call) {
  const Outermost outermost;
  if (!outermost()) return call();
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = call();
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// Blocking lock calls, with or without a Condition or timeout: the lock is held on return.
template <typename Call>
auto AroundLock(Mutex* mu, unsigned flags, Call call) {
  const Outermost outermost;
  if (!outermost()) return call();
  __tsan_mutex_pre_lock(mu, flags);
  auto result = call();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

template <typename Call>
auto AroundUnlock(Mutex* mu, unsigned flags, Call call) {
  const Outermost outermost;
  if (!outermost()) return call();
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = call();
  __tsan_mutex_post_unlock(mu, flags);
  return result;
}

// TryLock and ReaderTryLock: `flags` is __tsan_mutex_try_lock or __tsan_mutex_try_read_lock.
template <typename Call>
bool AroundTryLock(Mutex* mu, unsigned flags, Call call) {
  const Outermost outermost;
  if (!outermost()) return call();
  __tsan_mutex_pre_lock(mu, flags);
  const bool locked = call();
  __tsan_mutex_post_lock(mu, locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  return locked;
}

// Notify happens before every wait that returns having seen it.
template <typename Call>
void AroundNotify(const Notification* n, Call call) {
  const Outermost outermost;
  if (outermost()) __tsan_release(const_cast<Notification*>(n));
  call();
}

template <typename Call>
bool AroundNotificationWait(const Notification* n, Call call) {
  const Outermost outermost;
  const bool notified = call();
  if (outermost() && notified) __tsan_acquire(const_cast<Notification*>(n));
  return notified;
}

struct Unit {};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static const auto real = Real<void (*)(Mutex*)>("", "5MutexD2Ev");
  if (depth == 0) __tsan_mutex_destroy(this, 0);
  real(this);
}

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("", "5Mutex4LockEv");
  AroundLock(this, 0, [&] { real(this); return Unit{}; });
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("", "5Mutex10ReaderLockEv");
  AroundLock(this, kRead, [&] { real(this); return Unit{}; });
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("", "5Mutex7TryLockEv");
  return AroundTryLock(this, __tsan_mutex_try_lock, [&] { return real(this); });
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("", "5Mutex13ReaderTryLockEv");
  return AroundTryLock(this, __tsan_mutex_try_read_lock, [&] { return real(this); });
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("", "5Mutex6UnlockEv");
  AroundUnlock(this, 0, [&] { real(this); return Unit{}; });
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("", "5Mutex12ReaderUnlockEv");
  AroundUnlock(this, kRead, [&] { real(this); return Unit{}; });
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("", "5Mutex8LockWhenERKNS0_9ConditionE");
  AroundLock(this, 0, [&] { real(this, cond); return Unit{}; });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("", "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AroundLock(this, kRead, [&] { real(this, cond); return Unit{}; });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "", "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AroundLock(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "", "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AroundLock(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "", "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AroundLock(this, kRead, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "", "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AroundLock(this, kRead, [&] { return real(this, cond, deadline); });
}

// Await* and CondVar::Wait* are annotated as exclusive holds, which is how this project and
// gRPC call them (TSan would report a reader-held Await as a bad unlock rather than miss it).
void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("", "5Mutex5AwaitERKNS0_9ConditionE");
  AroundWait(this, 0, [&] { real(this, cond); return Unit{}; });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "", "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AroundWait(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "", "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AroundWait(this, 0, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  static const auto real =
      Real<void (*)(CondVar*, Mutex*)>("", "7CondVar4WaitEPNS0_5MutexE");
  AroundWait(mu, 0, [&] { real(this, mu); return Unit{}; });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "", "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return AroundWait(mu, 0, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "", "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return AroundWait(mu, 0, [&] { return real(this, mu, deadline); });
}

void Notification::Notify() {
  static const auto real = Real<void (*)(Notification*)>("", "12Notification6NotifyEv");
  AroundNotify(this, [&] { real(this); });
}

void Notification::WaitForNotification() const {
  static const auto real =
      Real<void (*)(const Notification*)>("K", "12Notification19WaitForNotificationEv");
  AroundNotificationWait(this, [&] { real(this); return true; });
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, Duration)>(
      "K", "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  return AroundNotificationWait(this, [&] { return real(this, timeout); });
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, Time)>(
      "K", "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  return AroundNotificationWait(this, [&] { return real(this, deadline); });
}

ABSL_NAMESPACE_END
}  // namespace absl

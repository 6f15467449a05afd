#pragma once

// A one-shot wake-up for one waiting thread: Notify() once, Wait() returns after it.
//
// Why not std::binary_semaphore: libstdc++'s acquire spins and then calls sched_yield
// several times before it sleeps. On the platform's 2-core machines, with a thread per
// connection waiting for the store's group commit, those yields were ~6 system calls
// per HL7 message (strace -c) and handed the core to whoever was runnable. This one
// sleeps in the kernel at once (futex) and Notify makes a system call only when the
// waiter is asleep.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

namespace rhip {

class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  void Notify() {
    if (state_.exchange(kNotified, std::memory_order_release) == kSleeping) Futex(FUTEX_WAKE_PRIVATE, INT_MAX);
  }

  void Wait() {
    uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kNotified) return;
    if (s == kEmpty && !state_.compare_exchange_strong(s, kSleeping, std::memory_order_acquire)) {
      if (s == kNotified) return;
    }
    // Spurious wake-ups (and a wake meant for an earlier user of this address) loop here.
    while (state_.load(std::memory_order_acquire) != kNotified) Futex(FUTEX_WAIT_PRIVATE, kSleeping);
  }

  bool HasBeenNotified() const { return state_.load(std::memory_order_acquire) == kNotified; }

 private:
  static constexpr uint32_t kEmpty = 0, kNotified = 1, kSleeping = 2;
  void Futex(int op, uint32_t val) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), op, val, nullptr, nullptr, 0);
  }
  std::atomic<uint32_t> state_{kEmpty};
};

}  // namespace rhip

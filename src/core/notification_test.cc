#include "rhip/core/notification.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace rhip {
namespace {

TEST(Notification, NotifiedBeforeTheWaitReturnsAtOnce) {
  Notification n;
  EXPECT_FALSE(n.HasBeenNotified());
  n.Notify();
  EXPECT_TRUE(n.HasBeenNotified());
  n.Wait();  // would hang if the notification were lost
  n.Wait();  // and stays notified
}

TEST(Notification, AWaiterAsleepIsWokenAndSeesTheWritesMadeBeforeNotify) {
  Notification n;
  int value = 0;
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    n.Wait();
    EXPECT_EQ(value, 42);  // Notify releases, Wait acquires
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it fall asleep
  EXPECT_FALSE(returned.load()) << "Wait returned before Notify";
  value = 42;
  n.Notify();
  waiter.join();
  EXPECT_TRUE(returned.load());
}

TEST(Notification, ManyRacingPairsAllComplete) {
  // The store's pattern: the waiter owns the notification (on its stack) and may destroy
  // it as soon as Wait returns, while the notifier is still inside Notify.
  constexpr int kRounds = 20000;
  std::atomic<Notification*> slot{nullptr};
  std::thread notifier([&] {
    for (int i = 0; i < kRounds; ++i) {
      Notification* n;
      while ((n = slot.exchange(nullptr)) == nullptr) std::this_thread::yield();
      n->Notify();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    auto n = std::make_unique<Notification>();
    slot.store(n.get());
    n->Wait();
  }
  notifier.join();
  SUCCEED() << kRounds << " waits, none lost";
}

}  // namespace
}  // namespace rhip

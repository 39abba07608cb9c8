// waiter_epoll.cpp - the Waiter on Linux: epoll (waiter.h).
//
// epoll_create1 makes a list in the kernel; epoll_ctl adds, changes or
// removes one socket in it; epoll_wait sleeps until some are ready and hands
// back only those. The loop tells the kernel only what changes, so a wake-up
// costs what is ready, not what is open (man 7 epoll).
#include "waiter.h"

#include <sys/epoll.h>

namespace lab {

struct Waiter::State {
    int epoll_fd = -1;
    std::vector<epoll_event> events = std::vector<epoll_event>(256);  // filled by epoll_wait
};

namespace {

std::uint32_t to_epoll(unsigned events) {
    return (events & Waiter::readable ? EPOLLIN : 0u) | (events & Waiter::writable ? EPOLLOUT : 0u);
}

// EPOLLERR and EPOLLHUP come whether asked for or not: the next recv or send
// will say what happened.
unsigned from_epoll(std::uint32_t events) {
    return (events & EPOLLIN ? Waiter::readable : 0u) |
           (events & EPOLLOUT ? Waiter::writable : 0u) |
           (events & (EPOLLERR | EPOLLHUP) ? Waiter::failed : 0u);
}

int control(int epoll_fd, int operation, net::socket_t fd, unsigned events) {
    epoll_event e{};
    e.events = to_epoll(events);
    e.data.fd = fd;  // what epoll_wait hands back: the descriptor, to find its connection by
    return ::epoll_ctl(epoll_fd, operation, fd, &e);
}

}  // namespace

Waiter::Waiter() : state_(new State) {
    state_->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
}

Waiter::~Waiter() {
    if (state_->epoll_fd >= 0) ::close(state_->epoll_fd);
}

bool Waiter::ok() const {
    return state_->epoll_fd >= 0;
}

const char* Waiter::name() const {
    return ok() ? "epoll_wait" : "epoll_create1";
}

int Waiter::add(net::socket_t fd, unsigned events) {
    return control(state_->epoll_fd, EPOLL_CTL_ADD, fd, events);
}

int Waiter::modify(net::socket_t fd, unsigned events) {
    return control(state_->epoll_fd, EPOLL_CTL_MOD, fd, events);
}

int Waiter::remove(net::socket_t fd) {
    return control(state_->epoll_fd, EPOLL_CTL_DEL, fd, 0);
}

// Closing a descriptor takes it out of every epoll list, when it is the last
// one open on its socket (the lab server never duplicates one).
void Waiter::closing(net::socket_t) {}

int Waiter::wait(int timeout_ms, std::vector<Ready>& ready) {
    ready.clear();
    std::vector<epoll_event>& events = state_->events;
    int n =
        ::epoll_wait(state_->epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i)
        ready.push_back({events[i].data.fd, from_epoll(events[i].events)});
    return n;
}

}  // namespace lab

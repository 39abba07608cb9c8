// poller.h - chapter 6's way of waiting: the kernel keeps the list.
//
// select() and poll() (chapter 5) take the whole list of sockets on every
// call, and the kernel checks every one of them each time. A Poller is the
// other design, the one every event loop stands on: each socket is
// registered once, its wish changed only when it changes, and a wait hands
// back only the sockets that are ready. Two backends, one per file, linked
// by the build (CMakeLists.txt, Makefile), as CPython's selectors module
// picks DefaultSelector:
//
//   poller_epoll.cpp  Linux: epoll_create1, epoll_ctl, epoll_wait.
//   poller_poll.cpp   everywhere else: poll(), WSAPoll() on Windows, behind
//                     the same calls. The list lives in the program and goes
//                     to the kernel whole on every wait, as in chapter 5: the
//                     interface is the same, the cost is not.
//
// kqueue (the BSDs, macOS) is the third design of the same idea; it is not
// written here, because it cannot be run and tested on this project's
// machines (the README says what kqueue(2) documents).
#pragma once

#include "platform.h"

#include <cstddef>
#include <memory>
#include <vector>

namespace poller {

// What a socket is watched for, and what a wait found (bits).
constexpr unsigned readable = 1;   // bytes, a FIN or an error: recv will not block
constexpr unsigned writable = 2;   // room to send, or a connect that ended: send will not block
constexpr unsigned failed = 4;     // an error or a hang-up: reported, never asked for
constexpr unsigned peer_shut = 8;  // the peer's FIN (epoll's EPOLLRDHUP): reported with readable

struct Ready {
    std::size_t key;  // what add() was given: the connection's number
    unsigned events;  // readable, writable, failed, peer_shut
};

class Poller {
public:
    // edge: report a socket when something new happens to it (EPOLLET), not
    // for as long as it is ready. Throws text::Failure when the kernel's list
    // cannot be made, or when `edge` is asked of a backend without it.
    explicit Poller(bool edge);
    ~Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    static bool has_edge_mode();  // epoll: yes; poll: no
    const char* name() const;     // "epoll" or "poll" (WSAPoll on Windows)

    // Register fd for `events` under `key`; change what it is watched for;
    // forget it before it is closed. Return 0, or -1 with net::last_error().
    int add(net::socket_t fd, std::size_t key, unsigned events);
    int modify(net::socket_t fd, std::size_t key, unsigned events);
    void forget(net::socket_t fd);

    // Wait up to timeout_ms (0: just look) and put what is ready in `ready`.
    // Returns how many, or -1 (net::last_error(): EINTR after a signal).
    int wait(int timeout_ms, std::vector<Ready>& ready);

    // Sockets the kernel was handed by the last wait: all of them for poll,
    // none for epoll (the kernel has them already).
    std::size_t handed_last_wait() const;

private:
    struct State;  // the backend's: an epoll descriptor, or poll's array
    std::unique_ptr<State> state_;
};

}  // namespace poller

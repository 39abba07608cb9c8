// Claims of the event loop: what epoll reports, and when it stays quiet.
//
// Every test watches the client end of a loopback pair with its own epoll
// instance, has the server end send (or shut down), and checks what
// epoll_wait reported. A wait that should report something gets 2 s (it
// returns as soon as the bytes arrive); a wait that should report nothing
// gets 50 ms.
#include "harness.h"

#include <string>

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/ioctl.h>
#endif

using harness::describe;
using harness::must;

#ifdef __linux__
namespace {

const int report_ms = 2000;  // a report is expected: return when it comes
const int quiet_ms = 50;     // no report is expected: how long to listen

// A new epoll instance watching `fd` for `events`; its reports carry fd's number.
net::Socket watch(int fd, std::uint32_t events) {
    net::Socket epoll_fd(must(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    epoll_event wanted{};
    wanted.events = events;
    wanted.data.fd = fd;
    must(::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd, &wanted), "epoll_ctl ADD");
    return epoll_fd;
}

// One epoll_wait: how many descriptors it reported, their events in `got`.
int wait_once(const net::Socket& epoll_fd, int timeout_ms, epoll_event& got) {
    got = epoll_event{};
    return must(::epoll_wait(epoll_fd.get(), &got, 1, timeout_ms), "epoll_wait");
}

std::string events_text(std::uint32_t events) {
    std::string text;
    if (events & EPOLLIN) text += "EPOLLIN ";
    if (events & EPOLLOUT) text += "EPOLLOUT ";
    if (events & EPOLLRDHUP) text += "EPOLLRDHUP ";
    if (events & EPOLLHUP) text += "EPOLLHUP ";
    if (events & EPOLLERR) text += "EPOLLERR ";
    return text.empty() ? "0" : text;
}

// "returned 1, EPOLLIN" / "returned 0"
std::string outcome_text(int n, const epoll_event& got) {
    return "epoll_wait returned " + std::to_string(n) +
           (n > 0 ? ", events " + events_text(got.events) : "");
}

// Bytes in fd's receive buffer, not yet read (FIONREAD).
int bytes_waiting(int fd) {
    int count = 0;
    must(::ioctl(fd, FIONREAD, &count), "ioctl FIONREAD");
    return count;
}

void send_text(int fd, const std::string& text) {
    long sent = must(::send(fd, text.data(), text.size(), net::send_flags), "send");
    if (sent != static_cast<long>(text.size())) throw harness::Failed("send was short");
}

// Wait until `count` bytes sit unread in fd's buffer (up to 2 s): after that,
// a quiet epoll_wait is quiet although they arrived, not because they have not.
void wait_for_bytes(int fd, int count) {
    for (int tries = 0; tries < 200 && bytes_waiting(fd) < count; ++tries)
        harness::sleep_for(0.01);
    if (bytes_waiting(fd) < count)
        throw harness::Failed(std::to_string(count) + " bytes never arrived");
}

}  // namespace
#endif

// scope: linux; wine skips: Windows has no epoll (WSAPoll or IOCP instead)
//
// elsewhere: epoll is Linux only; kqueue's EVFILT_READ without EV_CLEAR likewise reports a socket
// while data is there to read (kqueue(2), FreeBSD: read, not run)
TEST_CASE("epoll-level-reports-again-while-bytes-wait") {
#ifndef __linux__
    harness::skip("Windows has no epoll (WSAPoll or IOCP instead)");
#else
    // Level-triggered, epoll's default: a descriptor is reported at every
    // wait for as long as its bytes wait, as poll() would.
    harness::Pair p = harness::connected_pair();
    int fd = p.client.get();
    net::Socket epoll_fd = watch(fd, EPOLLIN);
    send_text(p.server.get(), "hello, world");
    epoll_event got{};
    int n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && (got.events & EPOLLIN), "the first wait: " + outcome_text(n, got));
    for (const char* which : {"second", "third"}) {
        n = wait_once(epoll_fd, 0, got);  // no new bytes; the 12 still wait
        EXPECT(n == 1 && (got.events & EPOLLIN) && got.data.fd == fd,
               std::string("the ") + which + " wait, 12 bytes unread: " + outcome_text(n, got));
    }
    char buffer[64];
    long got_bytes = must(::recv(fd, buffer, sizeof buffer, 0), "recv");
    EXPECT(got_bytes == 12 && bytes_waiting(fd) == 0,
           "recv took " + std::to_string(got_bytes) + " bytes of 12");
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "after reading every byte, " + outcome_text(n, got));
#endif
}

// scope: linux; wine skips: Windows has no epoll (WSAPoll or IOCP instead)
//
// elsewhere: kqueue's EV_CLEAR resets an event's state after it is retrieved, for filters that
// report transitions (kqueue(2), FreeBSD: read, not run); epoll(7) describes this very trap, an
// edge-triggered reader that stops before EAGAIN (epoll(7), Linux man-pages 6.03: read)
TEST_CASE("epoll-edge-reports-once-until-new-bytes") {
#ifndef __linux__
    harness::skip("Windows has no epoll (WSAPoll or IOCP instead)");
#else
    // Edge-triggered (EPOLLET): reported when bytes arrive, not while they
    // wait. A loop that reads only part of them is never told again about
    // the rest, until more arrive.
    harness::Pair p = harness::connected_pair();
    int fd = p.client.get();
    must(net::set_nonblocking(fd, true), "set_nonblocking");
    net::Socket epoll_fd = watch(fd, EPOLLIN | EPOLLET);
    send_text(p.server.get(), "hello");
    epoll_event got{};
    int n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && (got.events & EPOLLIN), "bytes arrived: " + outcome_text(n, got));
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "nothing new arrived, yet " + outcome_text(n, got));
    char peeked[16];
    long waiting = ::recv(fd, peeked, sizeof peeked, MSG_PEEK);
    EXPECT(waiting == 5 && bytes_waiting(fd) == 5,
           "the 5 unreported bytes should still wait: MSG_PEEK saw " + std::to_string(waiting));

    // New bytes arrive: a new edge, reported.
    send_text(p.server.get(), ", world");
    n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && (got.events & EPOLLIN), "7 more bytes arrived: " + outcome_text(n, got));

    // The undrained edge-triggered bug: read part, wait again, hear nothing.
    char five[5];
    must(::recv(fd, five, sizeof five, 0), "recv 5 of the 12 bytes");
    EXPECT(bytes_waiting(fd) == 7, std::to_string(bytes_waiting(fd)) + " bytes wait, not 7");
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "with 7 bytes unread and none new, " + outcome_text(n, got));
#endif
}

// scope: linux; wine skips: Windows has no epoll (WSAPoll or IOCP instead)
//
// elsewhere: kqueue's EV_ONESHOT deletes the event once it is retrieved (it must be added again),
// while EV_DISPATCH disables it, to be re-enabled with EV_ENABLE, as EPOLL_CTL_MOD re-arms here
// (kqueue(2), FreeBSD: read, not run)
TEST_CASE("epoll-oneshot-reports-once-until-rearmed") {
#ifndef __linux__
    harness::skip("Windows has no epoll (WSAPoll or IOCP instead)");
#else
    // EPOLLONESHOT: one report, then the descriptor is disabled (still in
    // the set) until epoll_ctl(EPOLL_CTL_MOD) arms it again. So with many
    // threads waiting, only one of them handles the socket at a time.
    harness::Pair p = harness::connected_pair();
    int fd = p.client.get();
    net::Socket epoll_fd = watch(fd, EPOLLIN | EPOLLONESHOT);
    send_text(p.server.get(), "first");
    epoll_event got{};
    int n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && (got.events & EPOLLIN), "the first bytes: " + outcome_text(n, got));
    send_text(p.server.get(), "second");
    wait_for_bytes(fd, 11);  // both sends arrived, none read
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "disarmed, with 11 bytes waiting (6 of them new): " + outcome_text(n, got));

    epoll_event rearm{};
    rearm.events = EPOLLIN | EPOLLONESHOT;
    rearm.data.fd = fd;
    must(::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, fd, &rearm), "epoll_ctl MOD");
    n = wait_once(epoll_fd, 0, got);  // at once: no new bytes needed
    EXPECT(n == 1 && (got.events & EPOLLIN),
           "right after EPOLL_CTL_MOD re-armed it, " + outcome_text(n, got));
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "after that one report, disarmed again: " + outcome_text(n, got));
#endif
}

// scope: linux; wine skips: Windows has no epoll (WSAPoll or IOCP instead)
//
// elsewhere: epoll(7) says an interest list entry goes only when every descriptor of the open file
// description is closed (epoll(7), Linux man-pages 6.03: read); kqueue keys an event on the
// descriptor itself, and close() on a descriptor removes the events that reference it (kqueue(2),
// FreeBSD: read, not run)
TEST_CASE("epoll-dup-keeps-closed-descriptor-registered") {
#ifndef __linux__
    harness::skip("Windows has no epoll (WSAPoll or IOCP instead)");
#else
    // epoll registers the open file description (the socket), keyed by the
    // descriptor number it was added with. A dup() of the descriptor keeps
    // the socket open after close(), so the registration stays, and its
    // reports still carry the closed number, one the process may reuse.
    harness::Pair p = harness::connected_pair();
    int original = p.client.get();
    net::Socket epoll_fd = watch(original, EPOLLIN);
    net::Socket copy(must(::dup(original), "dup"));
    p.client.reset();  // close(original): the socket lives on in `copy`
    send_text(p.server.get(), "still here");
    epoll_event got{};
    int n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && (got.events & EPOLLIN) && got.data.fd == original,
           "after close(" + std::to_string(original) + ") with a dup open: " +
               outcome_text(n, got) + ", data.fd " + std::to_string(got.data.fd));

    // Nor can it be taken out: the closed number is no descriptor now, and
    // the dup was never added.
    epoll_event unused{};
    int rc = ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, original, &unused);
    int err = errno;
    EXPECT(rc == -1 && err == EBADF, "EPOLL_CTL_DEL on the closed number returned " +
                                         std::to_string(rc) + " (" + describe(err) + ")");
    rc = ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, copy.get(), &unused);
    err = errno;
    EXPECT(rc == -1 && err == ENOENT,
           "EPOLL_CTL_DEL on the dup returned " + std::to_string(rc) + " (" + describe(err) + ")");
    n = wait_once(epoll_fd, 0, got);
    EXPECT(n == 1 && got.data.fd == original, "still registered: " + outcome_text(n, got));

    copy.reset();  // the socket's last descriptor: now it leaves the set
    n = wait_once(epoll_fd, quiet_ms, got);
    EXPECT(n == 0, "after closing the dup too, " + outcome_text(n, got));
#endif
}

// scope: linux; wine skips: Windows has no epoll (WSAPoll or IOCP instead)
//
// elsewhere: kqueue's EVFILT_READ sets EV_EOF in flags when the socket's read direction has shut
// down, possibly with data still to read (kqueue(2), FreeBSD: read, not run); EPOLLRDHUP is a
// stream socket peer that closed or shut down writing (epoll_ctl(2), Linux man-pages 6.03: read)
TEST_CASE("epoll-rdhup-on-half-close") {
#ifndef __linux__
    harness::skip("Windows has no epoll (WSAPoll or IOCP instead)");
#else
    // EPOLLRDHUP tells a FIN from data without a recv: bytes alone are
    // EPOLLIN; the peer's shutdown(SHUT_WR) is EPOLLIN and EPOLLRDHUP, and
    // the recv after it returns 0.
    harness::Pair p = harness::connected_pair();
    int fd = p.client.get();
    net::Socket epoll_fd = watch(fd, EPOLLIN | EPOLLRDHUP);
    send_text(p.server.get(), "data");
    epoll_event got{};
    int n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && got.events == EPOLLIN, "the peer sent 4 bytes: " + outcome_text(n, got));
    char buffer[16];
    must(::recv(fd, buffer, sizeof buffer, 0), "recv the 4 bytes");

    must(::shutdown(p.server.get(), net::shut_wr), "shutdown(SHUT_WR)");
    n = wait_once(epoll_fd, report_ms, got);
    EXPECT(n == 1 && got.events == (EPOLLIN | EPOLLRDHUP),
           "the peer shut down writing: " + outcome_text(n, got));
    long got_bytes = ::recv(fd, buffer, sizeof buffer, 0);
    EXPECT(got_bytes == 0, "recv after EPOLLRDHUP returned " + std::to_string(got_bytes) + " (" +
                               harness::last_error_text() + ")");
#endif
}

// Lab 3 starter: chapter 3 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab3 && ./lab3       runs, and stops at the first step not written
//   make check-lab3             numbered checks of your program, and a score
//
// (Made from ../chapter3.cpp by tests/lab_starters.py --write.)
//
// Chapter 3 - select: the tutorial's program, done right.
//
// The tutorial's program runs its socket on a thread of its own, connects
// with a 5-second timeout, switches the socket to non-blocking, sends
// "GET /", waits in a select() loop, reads once, and shuts down and closes.
// This chapter keeps that shape, step by step, and fixes what goes wrong:
//
// clang-format off
//   tutorial                                  here
//   ----------------------------------------  ---------------------------------------------
//   select(..., 0) in a loop: spins a core    select with the time left until the deadline:
//                                             the thread sleeps until data comes
//   one recv(4096): responses get cut short   recv until the response is complete (its
//                                             Content-Length, last chunk or FIN), streamed
//   sendall on a non-blocking socket can      send loop that waits for writability
//     fail half way (BlockingIOError)
//   "a non-blocking connect does not help"    it is the portable way to bound a connect
//   bare except: hides why connect failed     every error named, exit status 1
//   nothing reports how the fetch ended       main joins the thread, learns how it ended,
//                                             and shows progress meanwhile
// clang-format on
//
// Run it:  make chapter3 && ./chapter3
//          ./chapter3 --scenario slow:3          (watch the status line; top shows ~0% CPU)
//          ./chapter3 --scenario slow:3 --busy-wait   (the tutorial's loop: a whole core)

#include "chapter.h"
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using Clock = std::chrono::steady_clock;

namespace {

// 64 KiB: the fastest size measured on loopback against our lab server, and as
// fast as any against nginx (tests/bench/buffer_sizes.sh and nginx_download.sh;
// table and the reasons in README.md). Smaller buffers cost a system call per
// few bytes; what decides the speed past that is how often the reader sleeps
// and is woken, which SO_RCVLOWAT cuts (chapter::gather_before_waking).
constexpr std::size_t default_buffer_size = 64 * 1024;

std::string buffer_size_text;  // --buffer-size, checked in main
bool busy_wait = false;        // --busy-wait

const chapter::Program program = {
    "chapter3",
    "Chapter 3: the tutorial's select() client done right (thread, connect timeout, no busy wait).",
    "hello",
    {{"buffer-size", "BYTES", "recv buffer size, 1 to 67108864 (default 65536)", &buffer_size_text,
      nullptr},
     {"busy-wait", nullptr,
      "wait like the tutorial: select() with a zero timeout in a loop (do not do this)", nullptr,
      &busy_wait}}};

// What the socket thread shares with the main thread.
struct Progress {
    std::atomic<std::uint64_t> bytes{0};
    std::mutex mutex;
    std::condition_variable finished_changed;
    bool finished = false;
    std::optional<Failure> failure;  // why the socket thread gave up, if it did
};

// ---------------------------------------------------------------------------
// Waiting with select().

enum class Ready { yes, timed_out, failed };

// Wait until `fd` is readable (or writable), or the deadline passes.
//
// select() takes three sets of descriptors and a timeout, sleeps until one
// descriptor is ready or the time is up, and returns how many are ready,
// counted per set (one socket ready in two sets counts 2), or 0 when the time
// ran out [claim:select-timeout-returns-zero]. It overwrites the sets with the
// ready ones, clearing the rest [claim:select-clears-sets], and Linux also
// writes the time not slept back into the timeout
// [claim:linux-select-updates-timeout], so both are rebuilt before every call.
// The third set is for exceptional conditions, out-of-band data, not for
// "sockets that have errors" as the tutorial says: a reset shows in the read
// set [claim:select-exceptfds-means-oob]. A signal ends the wait early with
// EINTR, even for a handler installed with SA_RESTART, as it does poll
// [claim:poll-eintr-returns-early]: we go round again with the time that is
// left, so the total wait stays one deadline, however often we wake.
//
// Python's select.select() is this same call. On 64-bit Linux, glibc 2.33
// and later make both it and ours with the pselect6 system call, which is the
// name strace shows [claim:python-select-is-pselect6] (seen with glibc 2.36);
// glibc 2.32 and earlier on x86-64 make the select system call (glibc commit
// 2433d39b69, "linux: Add time64 select support": read). (Likewise recv and
// send reach the kernel as recvfrom and sendto; --trace prints the names in
// this source.)
//
// Windows reports a failed non-blocking connect in the exception set, not as
// writable [claim:windows-failed-connect-in-exceptfds]; POSIX reports it as
// writable, and SO_ERROR tells which it was. We watch both sets either way.
Ready wait_until(net::socket_t fd, bool for_writing, Clock::time_point deadline) {
    // TODO 1: select() until fd is ready or the deadline passes; retry on EINTR.
    chapter::todo(1, "select() until fd is ready or the deadline passes; retry on EINTR");
}

// The tutorial's wait: select with a zero timeout, over and over. Each call
// returns at once, so the loop never sleeps and burns a whole core until the
// data comes. Bounded by the deadline, so it cannot spin forever.
Ready busy_wait_until_readable(net::socket_t fd, Clock::time_point deadline, std::uint64_t& spins) {
    while (Clock::now() < deadline) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(fd, &readable);
        timeval zero{};  // the tutorial's select.select([sock], [], [], 0)
        ++spins;
        int ready = ::select(static_cast<int>(fd) + 1, &readable, nullptr, nullptr, &zero);
        if (ready > 0) return Ready::yes;
        if (ready < 0 && !net::is_interrupted(net::last_error()))
            throw Failure("select", net::last_error());
    }
    return Ready::timed_out;
}

// ---------------------------------------------------------------------------
// Step 1 - connect, with a timeout.

// Python: sock.settimeout(5); sock.connect((host, port)).
// The tutorial connects in blocking mode because "a non-blocking call does
// not help". It does: it is the portable way to put a limit on a connect.
// connect() on a non-blocking socket returns at once with EINPROGRESS (on
// Windows WSAEWOULDBLOCK) while the handshake goes on; we wait for the socket
// to become writable, up to the timeout, and then ask SO_ERROR how it ended:
// 0 for connected [claim:nonblocking-connect-writable-so-error-zero], or the
// error, e.g. ECONNREFUSED [claim:nonblocking-connect-refused-via-so-error].
// CPython's settimeout() does the same inside sock.connect(), waiting with
// poll(POLLOUT|POLLERR) where we use select [claim:python-connect-timeout-polls].
std::optional<Failure> connect_within_timeout(const Options& options, net::socket_t fd,
                                              const addrinfo* address) {
    // TODO 2: connect() without blocking, wait until writable, then ask SO_ERROR.
    chapter::todo(2, "connect() without blocking, wait until writable, then ask SO_ERROR");
}

// Resolve (chapter::resolve: getaddrinfo, as in chapter 1), then try every
// address in turn, IPv6 and IPv4, until one connects.
net::Socket connect_to_host(const Options& options) {
    chapter::AddressList addresses = chapter::resolve(options);
    std::optional<Failure> last_failure;
    for (const addrinfo* address = addresses.get(); address; address = address->ai_next) {
        net::Socket sock(traced(
            ::socket(address->ai_family, address->ai_socktype, address->ai_protocol), "socket",
            address->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
        if (!sock.valid()) {
            last_failure = Failure("socket", net::last_error());
            continue;
        }
        // An fd_set on POSIX is a bitmap of FD_SETSIZE (1024) bits: FD_SET on a
        // larger descriptor is out of bounds. Built with _FORTIFY_SOURCE, glibc's
        // FD_SET stops the program ("bit out of range 0 - FD_SETSIZE on
        // fd_set"); without it, FD_SET writes past the set (chapter 5's README
        // shows both). A program with that many files open needs poll()
        // instead; we stop with a clear error.
        std::string why = net::why_select_cannot_watch(sock.get(), 0);
        if (!why.empty()) {
            last_failure = Failure("select", why + "; select() cannot watch it");
            break;
        }
        net::no_sigpipe(sock.get());
        // Python: sock.setblocking(False), or settimeout(t) which does it too:
        // one ioctl(FIONBIO) on Linux [claim:python-setblocking-is-fionbio],
        // where we use fcntl (chapter 2 says why).
        if (net::set_nonblocking(sock.get(), true) != 0) {  // traced as fcntl (ioctlsocket)
            last_failure = Failure("set O_NONBLOCK", net::last_error());
            continue;
        }
        narrate(options, "trying %s", text::address_text(address->ai_addr).c_str());
        last_failure = connect_within_timeout(options, sock.get(), address);
        if (!last_failure) {
            narrate(options, "connected to %s", text::address_text(address->ai_addr).c_str());
            return sock;
        }
        narrate(options, "%s", last_failure->what());
    }
    throw last_failure.value_or(Failure("connect " + options.host, "no address to try"));
}

// ---------------------------------------------------------------------------
// Step 2 - send the request on the non-blocking socket.

// Python: sock.sendall(request) - after setblocking(False) it can raise
// BlockingIOError half way, having sent part of the data, and the tutorial
// does not catch that. A non-blocking send takes what fits in the send buffer
// and returns that count; when the buffer is full it fails with EWOULDBLOCK
// [claim:nonblocking-send-partial-then-would-block]. We then wait until the
// socket is writable again and send the rest.
void send_all(const Options& options, net::socket_t fd, const std::string& data) {
    // TODO 3: send it all; when send() would block, wait until writable.
    chapter::todo(3, "send it all; when send() would block, wait until writable");
}

// ---------------------------------------------------------------------------
// Step 3 - wait for data and read the whole response.

// The tutorial waits for select to report the socket readable, then calls
// recv(4096) once: a longer response is cut short. Here we call recv first
// and wait only when it would block: a non-blocking recv on an empty socket
// fails at once with EWOULDBLOCK [claim:nonblocking-recv-would-block], and
// that is the moment to sleep in select until data comes. We read until the
// response is complete (chapter::ResponseReader, common/response.h: its
// Content-Length, its last chunk, or the server's FIN, as chapter 1
// explains). select also reports readable at EOF, when the server has
// closed; recv then returns 0 [claim:select-readable-at-eof].
void receive_response(const Options& options, net::socket_t fd, std::size_t buffer_size,
                      Progress& progress) {
    // TODO 4: recv() until complete; when recv() would block, wait until readable.
    chapter::todo(4, "recv() until complete; when recv() would block, wait until readable");
}

// ---------------------------------------------------------------------------
// The socket thread: the tutorial's tcpSocketThreadClassNonBlocking.run().

void socket_thread(const Options& options, std::size_t buffer_size, Progress& progress) {
    try {
        net::Socket sock = connect_to_host(options);
        send_all(options, sock.get(), chapter::http_request(options));
        receive_response(options, sock.get(), buffer_size, progress);

        // Step 4 - shut down and close. The tutorial calls shutdown(SHUT_RD)
        // and says it disallows "further ends"; SHUT_RD only stops further
        // receives and tells the server nothing. SHUT_WR sends our FIN: "no
        // more requests". Then close() releases the descriptor. Chapter 4
        // shows every way to end a connection and what the server sees.
        // TODO 5: shutdown(SHUT_WR), then close the socket.
        chapter::todo(5, "shutdown(SHUT_WR), then close the socket");
    } catch (const Failure& failure) {
        std::lock_guard<std::mutex> lock(progress.mutex);
        progress.failure = failure;
    }
    std::lock_guard<std::mutex> lock(progress.mutex);
    progress.finished = true;
    progress.finished_changed.notify_all();
}

// The main thread, while the socket thread works: "do any other action here,
// like updating the UI". It sleeps on a condition variable between updates
// (ten a second on a terminal, one a second otherwise), so it costs no CPU.
void show_progress_until_finished(const Options& options, Progress& progress) {
    bool terminal = net::stderr_is_terminal();
    auto tick = std::chrono::milliseconds(terminal ? 100 : 1000);
    auto start = Clock::now();
    std::unique_lock<std::mutex> lock(progress.mutex);
    while (!progress.finished_changed.wait_for(lock, tick, [&] { return progress.finished; })) {
        char status[96];
        std::snprintf(status, sizeof status, "[main thread] %.1f s, %llu bytes received",
                      chapter::seconds_since(start),
                      static_cast<unsigned long long>(progress.bytes.load()));
        lock.unlock();
        if (terminal)
            chapter::show_status(options, status);
        else
            narrate(options, "%s", status);
        lock.lock();
    }
    lock.unlock();
    chapter::show_status(options, "");
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;
    std::size_t buffer_size = default_buffer_size;
    if (!buffer_size_text.empty()) {
        char* end = nullptr;
        unsigned long long value = std::strtoull(buffer_size_text.c_str(), &end, 10);
        if (buffer_size_text[0] == '-' || *end != '\0' || value < 1 || value > 64 * 1024 * 1024)
            return chapter::usage_error(program,
                                        "--buffer-size: '" + buffer_size_text +
                                            "' is not a number of bytes from 1 to 67108864");
        buffer_size = static_cast<std::size_t>(value);
    }
    if (busy_wait)
        narrate(options, "--busy-wait: waiting the tutorial's way, spinning on select()");

    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST

        // Python: socketThread = tcpSocketThreadClassNonBlocking(host, port); .start()
        Progress progress;
        std::thread worker(socket_thread, std::cref(options), buffer_size, std::ref(progress));
        show_progress_until_finished(options, progress);
        worker.join();  // the tutorial never joins (Python waits for it at exit, unasked)
        if (progress.failure) throw *progress.failure;
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
    return 0;
}

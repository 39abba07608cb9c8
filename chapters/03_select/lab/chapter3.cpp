// Lab 3 starter: chapter 3 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab3 && ./lab3       runs, and stops at the first step not written
//   make check-lab3             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. A run reaches them in the order 2, 1, 3, 4, 5 (the connect
// of step 2 waits with step 1's select).
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
//   nothing reports how the fetch ended       main waits for the thread (Python's join
//                                             with a timeout), shows the time meanwhile,
//                                             and gets the thread's result or its error
// clang-format on
//
// One lesson in speed is opt-in: --low-water asks the kernel to gather data
// before waking us (SO_RCVLOWAT). Its section, before step 3, says what that
// gains and what it costs.
//
// Run it:  make chapter3 && ./chapter3
//          ./chapter3 --scenario slow:3          (watch the status line; top shows ~0% CPU)
//          ./chapter3 --scenario slow:3 --busy-wait   (the tutorial's loop: a whole core)

#include "chapter.h"
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using Clock = std::chrono::steady_clock;

namespace {

// 64 KiB: a smaller buffer costs a system call per few kilobytes, and from
// nginx no larger one was faster. From our lab server, which sends faster
// than we read, 1 MiB was: fewer, larger calls. README.md, "Choosing the
// buffer size", has the figures (tests/bench/buffer_sizes.sh and
// nginx_download.sh) and the reasons.
constexpr std::size_t default_buffer_size = 64 * 1024;

// The receive buffer, starting on a page boundary (std::align finds it in
// storage one page longer). recv's time is mostly the kernel copying into it,
// and from the lab server, which sends from one block in memory, that copy
// ran twice as fast into a page-aligned buffer as into the one a std::vector
// on this thread got, 3,328 bytes into a page: medians of 3,241 against 1,545
// MiB/s. From nginx (sendfile) it made no difference. docs/benchmarks.md,
// "Download from the lab server: chapter 3", has the runs.
struct ReceiveBuffer {
    static constexpr std::size_t page = 4096;
    explicit ReceiveBuffer(std::size_t size) : storage(size + page), size(size) {
        void* start = storage.data();
        std::size_t room = storage.size();
        data = static_cast<char*>(std::align(page, size, start, room));
    }
    std::vector<char> storage;
    std::size_t size;
    char* data = nullptr;
};

std::string buffer_size_text;  // --buffer-size, checked by read_settings
std::string low_water_text;    // --low-water, checked by read_settings
bool busy_wait = false;        // --busy-wait

const chapter::Program program = {
    "chapter3",
    "Chapter 3: the tutorial's select() client done right (thread, connect timeout, no busy wait).",
    "hello",
    {{"buffer-size", "BYTES", "recv buffer size, 1 to 67108864 (default 65536)", &buffer_size_text,
      nullptr},
     {"low-water", "BYTES",
      "SO_RCVLOWAT: do not wake for fewer bytes, 1 to 1048576 (default: off; README, performance)",
      &low_water_text, nullptr},
     {"busy-wait", nullptr,
      "wait like the tutorial: select() with a zero timeout in a loop (do not do this)", nullptr,
      &busy_wait}}};

// What the command line asks of the socket thread, beyond chapter::Options.
struct Settings {
    std::size_t buffer_size = default_buffer_size;  // --buffer-size
    int low_water = 0;                              // --low-water; 0: off, the default
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
// an older glibc makes the select system call (docs/python-underneath.md has
// the source). Likewise recv and send reach the kernel as recvfrom and sendto;
// --trace prints the names in this source.
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
// Throws Failure when the connect fails or gets no answer.
void connect_within_timeout(const Options& options, net::socket_t fd, const addrinfo* address) {
    // TODO 2: connect() without blocking, wait until writable, then ask SO_ERROR.
    chapter::todo(2, "connect() without blocking, wait until writable, then ask SO_ERROR");
}

// A TCP socket for `address`, non-blocking, that select() can watch.
net::Socket open_socket(const addrinfo* address) {
    net::Socket sock(
        traced(::socket(address->ai_family, address->ai_socktype, address->ai_protocol), "socket",
               address->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
    if (!sock.valid()) throw Failure("socket", net::last_error());
    // An fd_set on POSIX is a bitmap of FD_SETSIZE (1024) bits: FD_SET on a
    // larger descriptor is out of bounds. Built with _FORTIFY_SOURCE, glibc's
    // FD_SET stops the program ("bit out of range 0 - FD_SETSIZE on
    // fd_set"); without it, FD_SET writes past the set (chapter 5's README
    // shows both). A program with that many files open needs poll()
    // instead; we stop with a clear error.
    std::string why = net::why_select_cannot_watch(sock.get(), 0);
    if (!why.empty()) throw Failure("select", why + "; select() cannot watch it");
    net::no_sigpipe(sock.get());
    // Python: sock.setblocking(False), or settimeout(t) which does it too:
    // one ioctl(FIONBIO) on Linux [claim:python-setblocking-is-fionbio],
    // where we use fcntl (chapter 2 says why).
    if (net::set_nonblocking(sock.get(), true) != 0)  // traced as fcntl (ioctlsocket)
        throw Failure("set O_NONBLOCK", net::last_error());
    return sock;
}

// Resolve (chapter::resolve: getaddrinfo, as in chapter 1), then try every
// address in turn, IPv6 and IPv4, until one connects. A failure only moves
// on to the next address; when none is left, the last failure is thrown. That
// is the loop of Python's socket.create_connection() (Lib/socket.py: read),
// whose "except OSError" is our catch.
net::Socket connect_to_host(const Options& options) {
    chapter::AddressList addresses = chapter::resolve(options);
    Failure last_failure("connect " + options.host, "no address to try");
    for (const addrinfo* address = addresses.get(); address; address = address->ai_next) {
        std::string where = text::address_text(address->ai_addr);
        try {
            net::Socket sock = open_socket(address);
            narrate(options, "trying %s", where.c_str());
            connect_within_timeout(options, sock.get(), address);
            narrate(options, "connected to %s", where.c_str());
            return sock;
        } catch (const Failure& failure) {
            narrate(options, "%s", failure.what());
            last_failure = failure;
        }
    }
    throw last_failure;
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
// Performance: --low-water BYTES, an opt-in lesson (off by default).
//
// A reader that sleeps in select until data comes is woken for every few
// kilobytes that arrive, and each wake-up costs a recv call here and work
// for the sender (README.md, "Choosing the buffer size"). SO_RCVLOWAT, the
// receive low-water mark, asks the kernel not to wake a reader (recv,
// select, poll) for fewer than BYTES queued bytes; the FIN, an error or a
// timeout still wake it [claim:rcvlowat-gathers-before-waking]. The gain:
// fewer wake-ups and recv calls for a large download. The costs:
//
//   - The mark must never ask for more than will come, or the last bytes
//     would leave us waiting for ones that never arrive: it is set only once
//     the response has said how long it is (Content-Length), and to the body
//     bytes still to come when they are fewer than BYTES.
//   - select() is blind to the bytes below the mark, so a server that sends
//     slower than the mark, or stops part way, would look silent though bytes
//     came, and --timeout would no longer mean what it says. So we wait in
//     slices of a quarter of --timeout and look between them
//     (wait_under_low_water): more wake-ups for a slow server, and its bytes
//     read up to a slice late.
//   - On Windows it gains nothing: Winsock's TCP ignores the option, and the
//     shim's net::set_receive_low_water does nothing there.

// The mark this chapter wants (--low-water) and the one in force.
struct LowWater {
    int asked = 0;  // 0: off
    int now = 1;    // the kernel's default: wake for 1 byte
};

// setsockopt(SO_RCVLOWAT), shown by --trace (net::set_receive_low_water).
void set_low_water(net::socket_t fd, LowWater& mark, int bytes) {
    if (bytes == mark.now) return;
    if (net::set_receive_low_water(fd, bytes) != 0)
        throw Failure("setsockopt SO_RCVLOWAT", net::last_error());
    mark.now = bytes;
}

// After each recv that got data: once the response has said how long it
// is, the mark is --low-water, or the body bytes still to come if fewer.
void follow_response(net::socket_t fd, LowWater& mark, const chapter::ResponseReader& response) {
    std::uint64_t coming = response.body_bytes_coming();  // 0: not known (yet)
    if (mark.asked == 0 || coming == 0) return;
    set_low_water(fd, mark, static_cast<int>(std::min<std::uint64_t>(coming, mark.asked)));
}

// Wait for data with the mark up, in slices of a quarter of --timeout. After
// a slice that ran out, ask how many bytes wait below the mark (FIONREAD:
// net::bytes_waiting) [claim:fionread-counts-bytes-below-low-water]. Some:
// the server is alive, only slower than the mark; we put the mark back to 1
// byte, so that the next recv surely takes them, and go and read them (the
// recv loop raises the mark again). None, slice after slice, until the
// deadline: that is silence, as without the mark.
Ready wait_under_low_water(const Options& options, net::socket_t fd, Clock::time_point deadline,
                           LowWater& mark) {
    auto slice = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options.timeout / 4));
    for (;;) {
        Ready ready = wait_until(fd, false, std::min(deadline, Clock::now() + slice));
        if (ready != Ready::timed_out) return ready;
        long waiting = net::bytes_waiting(fd);
        if (waiting < 0) throw Failure("ioctl FIONREAD", net::last_error());
        if (waiting > 0) {
            set_low_water(fd, mark, 1);
            return Ready::yes;
        }
        if (Clock::now() >= deadline) return Ready::timed_out;
    }
}

// ---------------------------------------------------------------------------
// Step 3 - wait for data and read the whole response.

// When recv would block: wait until there is data, the FIN, or --timeout of
// silence. select with the time left (wait_until); with --busy-wait the
// tutorial's spin; with --low-water in slices (wait_under_low_water).
Ready wait_for_data(const Options& options, net::socket_t fd, LowWater& mark,
                    std::uint64_t& spins) {
    auto deadline = chapter::wait_deadline(options);
    if (busy_wait) return busy_wait_until_readable(fd, deadline, spins);
    if (mark.now > 1) return wait_under_low_water(options, fd, deadline, mark);
    return wait_until(fd, false, deadline);
}

// The tutorial waits for select to report the socket readable, then calls
// recv(4096) once: a longer response is cut short. Here we call recv first
// and wait only when it would block: a non-blocking recv on an empty socket
// fails at once with EWOULDBLOCK [claim:nonblocking-recv-would-block], and
// that is the moment to sleep in select until data comes. We read until the
// response is complete (chapter::ResponseReader, common/response.h: its
// Content-Length, its last chunk, or the server's FIN, as chapter 1
// explains). select also reports readable at EOF, when the server has
// closed; recv then returns 0 [claim:select-readable-at-eof].
//
// Two helpers above do the rest: wait_for_data waits (as --busy-wait or
// --low-water ask), and follow_response moves the --low-water mark after
// each piece that came.
void receive_response(const Options& options, net::socket_t fd, const Settings& settings) {
    // TODO 4: recv() until complete; when recv() would block, wait until readable.
    chapter::todo(4, "recv() until complete; when recv() would block, wait until readable");
}

// ---------------------------------------------------------------------------
// The socket thread: the tutorial's tcpSocketThreadClassNonBlocking.run().
// A Failure thrown here ends the thread; main gets it from the thread's
// future (future.get() throws it there), as it would the thread's result.

void fetch(const Options& options, Settings settings) {
    net::Socket sock = connect_to_host(options);
    send_all(options, sock.get(), chapter::http_request(options));
    receive_response(options, sock.get(), settings);

    // Step 4 - shut down and close. The tutorial calls shutdown(SHUT_RD)
    // and says it disallows "further ends"; SHUT_RD only stops further
    // receives and tells the server nothing. SHUT_WR sends our FIN: "no
    // more requests". Then close() releases the descriptor. Chapter 4
    // shows every way to end a connection and what the server sees.
    // TODO 5: shutdown(SHUT_WR), then close the socket.
    chapter::todo(5, "shutdown(SHUT_WR), then close the socket");
}

// The main thread, while the socket thread works: "do any other action here,
// like updating the UI". Python: thread.join(0.1), and while
// thread.is_alive(), draw and join again. wait_for() is that join with a
// timeout: it sleeps until the thread ends or the time is up, so the loop
// costs no CPU. The status line (ten a second on a terminal, a line a
// second otherwise) says what this thread knows itself: how long it has
// waited. A live byte count would be data both threads touch at once, which
// needs a lock or an atomic; the socket thread's narration says how the
// bytes came instead.
void show_progress_until_done(const Options& options, const std::future<void>& socket_thread) {
    bool terminal = net::stderr_is_terminal();
    auto tick = std::chrono::milliseconds(terminal ? 100 : 1000);
    auto start = Clock::now();
    while (socket_thread.wait_for(tick) == std::future_status::timeout) {
        char status[96];
        std::snprintf(status, sizeof status,
                      "[main thread] %.1f s, the socket thread still at work",
                      chapter::seconds_since(start));
        if (terminal)
            chapter::show_status(options, status);
        else
            narrate(options, "%s", status);
    }
    chapter::show_status(options, "");
}

// A whole number of bytes from 1 to `most`, or 0 when `text` is not one.
std::size_t bytes_from(const std::string& text, unsigned long long most) {
    char* end = nullptr;
    unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])) || *end != '\0' ||
        value < 1 || value > most)
        return 0;
    return static_cast<std::size_t>(value);
}

// --buffer-size and --low-water. Returns -1 to go on, or 2 after a usage error.
int read_settings(Settings& settings) {
    if (!buffer_size_text.empty()) {
        settings.buffer_size = bytes_from(buffer_size_text, 64 * 1024 * 1024);
        if (settings.buffer_size == 0)
            return chapter::usage_error(program,
                                        "--buffer-size: '" + buffer_size_text +
                                            "' is not a number of bytes from 1 to 67108864");
    }
    if (!low_water_text.empty()) {
        settings.low_water = static_cast<int>(bytes_from(low_water_text, 1024 * 1024));
        if (settings.low_water == 0)
            return chapter::usage_error(
                program,
                "--low-water: '" + low_water_text + "' is not a number of bytes from 1 to 1048576");
        if (busy_wait)
            return chapter::usage_error(program,
                                        "--low-water: not with --busy-wait, which never "
                                        "sleeps: there is no wake-up to save");
    }
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;
    Settings settings;
    status = read_settings(settings);
    if (status >= 0) return status;
    if (busy_wait)
        narrate(options, "--busy-wait: waiting the tutorial's way, spinning on select()");

    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST

        // Python: socketThread = tcpSocketThreadClassNonBlocking(host, port); .start()
        std::future<void> socket_thread =
            std::async(std::launch::async, fetch, std::cref(options), settings);
        show_progress_until_done(options, socket_thread);
        // Python: socketThread.join(), which the tutorial never calls. get()
        // gives the thread's result: it returns, or throws the thread's Failure.
        socket_thread.get();
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
    return 0;
}

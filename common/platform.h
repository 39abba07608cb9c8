// platform.h - the only place where POSIX sockets and Winsock differ for us.
//
// Everything the two APIs share (socket, connect, send, recv, select, shutdown,
// getaddrinfo, setsockopt...) is called directly by the chapters under its real
// name. This header covers only what is spelled differently, and each name it
// declares is in this table:
//
// clang-format off
//   what: the names declared below      POSIX                          Winsock
//   ----------------------------------  -----------------------------  ---------------------------------
//   socket_t, invalid_socket, Socket    int, -1                        SOCKET, INVALID_SOCKET
//   close_socket                        close()                        closesocket()
//   last_error, set_last_error          errno                          WSAGetLastError(), WSASetLastError()
//   error_text                          strerror()                     FormatMessage()
//   error_name                          "ECONNREFUSED"                 "WSAECONNREFUSED"
//   is_would_block                      EAGAIN, EWOULDBLOCK            WSAEWOULDBLOCK
//   is_in_progress (a connect)          EINPROGRESS                    WSAEWOULDBLOCK, WSAEINPROGRESS
//   is_interrupted                      EINTR                          WSAEINTR
//   is_out_of_descriptors               EMFILE, ENFILE                 WSAEMFILE, WSAENOBUFS
//   is_timed_out (SO_RCVTIMEO ran out)  EAGAIN, EWOULDBLOCK            WSAETIMEDOUT
//   set_nonblocking, _untraced          fcntl(F_SETFL, O_NONBLOCK)     ioctlsocket(FIONBIO)
//   Startup                             ignore SIGPIPE                 WSAStartup(), binary stdout
//   set_timeout_option, get_...         struct timeval                 DWORD of milliseconds
//   send_flags, no_sigpipe              MSG_NOSIGNAL, SO_NOSIGPIPE     0 (no signals)
//   shut_rd, shut_wr, shut_rdwr         SHUT_RD, SHUT_WR, SHUT_RDWR    SD_RECEIVE, SD_SEND, SD_BOTH
//   poll_one, poll_many, pollfd_t       poll(), struct pollfd          WSAPoll(), WSAPOLLFD
//   bytes_waiting                       ioctl(FIONREAD)                ioctlsocket(FIONREAD)
//   set_receive_low_water               setsockopt(SO_RCVLOWAT)        nothing: its TCP ignores it
//   why_select_cannot_watch             fd < FD_SETSIZE (1024)         at most FD_SETSIZE (64) sockets
//   wake_blocked_calls                  shutdown(SHUT_RDWR)            closesocket()
//   raise_descriptor_limit              setrlimit(RLIMIT_NOFILE)       none for sockets
//   write_stdout, stderr_is_terminal    write(1), isatty(2)            _write(1), _isatty
//   set_call_reporter (--trace)         fcntl(F_GETFL), fcntl(F_SETFL)  ioctlsocket(FIONBIO)
//   NET_PRINTF_FORMAT (printf checks)   format(printf)                 format(__MINGW_PRINTF_FORMAT)
//   for the lab server (the section at the end of this file):
//   accept_nonblocking                  accept4(SOCK_NONBLOCK) *       accept(), FIONBIO
//   set_listener_options                SO_REUSEADDR                   SO_EXCLUSIVEADDRUSE
//   is_connection_reset                 ECONNRESET, EPIPE              WSAECONNRESET, WSAECONNABORTED
//   file_in_memory, send_file_part      memfd_create, sendfile() *     none; send()
//   write_stderr                        write(2)                       _write(2)
//   (* on Linux; the other POSIX systems: accept() and ioctl(FIONBIO); no file, send())
// clang-format on
//
// Text for people (escaping, seconds, the lines on stderr) is in text.h, and
// --trace in trace.h, both over this file.
#pragma once

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cerrno>
#endif

#include <cstddef>
#include <cstdint>
#include <string>

// printf-style argument checking for a function whose format is parameter
// `f` and whose arguments start at `a`: MinGW's printf has its own format
// rules (__MINGW_PRINTF_FORMAT); other compilers without the attribute get none.
#if defined(__MINGW32__)
#define NET_PRINTF_FORMAT(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#elif defined(__GNUC__)
#define NET_PRINTF_FORMAT(f, a) __attribute__((format(printf, f, a)))
#else
#define NET_PRINTF_FORMAT(f, a)
#endif

namespace net {

#ifdef _WIN32
using socket_t = SOCKET;
constexpr socket_t invalid_socket = INVALID_SOCKET;
constexpr int shut_rd = SD_RECEIVE;
constexpr int shut_wr = SD_SEND;
constexpr int shut_rdwr = SD_BOTH;
constexpr int send_flags = 0;  // Winsock raises no signal on a broken connection
#else
using socket_t = int;
constexpr socket_t invalid_socket = -1;
constexpr int shut_rd = SHUT_RD;
constexpr int shut_wr = SHUT_WR;
constexpr int shut_rdwr = SHUT_RDWR;
#ifdef MSG_NOSIGNAL
constexpr int send_flags = MSG_NOSIGNAL;  // EPIPE instead of a deadly SIGPIPE (Linux, BSD)
#else
constexpr int send_flags = 0;  // macOS: no_sigpipe() sets SO_NOSIGPIPE on the socket instead
#endif
#endif

// errno, or WSAGetLastError(). Read it right after the call that failed.
int last_error();
void set_last_error(int err);

// "Connection refused": strerror(), or FormatMessage() on Windows.
std::string error_text(int err);

// "ECONNREFUSED", or "WSAECONNREFUSED" on Windows; "E<number>" when unknown.
std::string error_name(int err);

// close() or closesocket(). Returns 0 or -1 like close().
int close_socket(socket_t fd);
// --diagram: a function told of each socket just before close_socket closes it
// (what it sends, a FIN or an RST, depends on the socket's state then).
void set_close_watcher(void (*watcher)(socket_t fd));

// Turn O_NONBLOCK (FIONBIO on Windows) on or off. On POSIX this reads the file
// status flags first and changes only O_NONBLOCK, keeping the others
// [claim:nonblocking-keeps-other-flags]; a plain F_SETFL of O_NONBLOCK would
// clear them. --trace shows the real calls: fcntl(F_GETFL) and fcntl(F_SETFL),
// or ioctlsocket(FIONBIO).
// Returns 0 or -1 (error in last_error()).
int set_nonblocking(socket_t fd, bool on);

// SO_RCVTIMEO or SO_SNDTIMEO in seconds (0 = no timeout), converted to a
// timeval, or to a DWORD of milliseconds on Windows. Returns 0 or -1.
int set_timeout_option(socket_t fd, int option, double seconds);
// The same option read back with getsockopt [claim:timeout-option-reads-back];
// -1 on failure.
double get_timeout_option(socket_t fd, int option);

// SO_RCVLOWAT: do not wake a reader (recv, select, poll) for fewer than
// `bytes` queued bytes; the FIN, an error or a timeout still wake it
// [claim:rcvlowat-gathers-before-waking]. Traced. Winsock keeps the option
// only for BSD compatibility: Microsoft's SOL_SOCKET options page says its
// TCP/IP provider does not support it (read, not run), so on Windows this
// does nothing and returns 0.
int set_receive_low_water(socket_t fd, int bytes);

// Where send_flags cannot prevent SIGPIPE (macOS), set SO_NOSIGPIPE; no-op elsewhere.
void no_sigpipe(socket_t fd);

// Wake a thread blocked in connect, recv or send on `fd`, from another thread.
// POSIX: shutdown(SHUT_RDWR) does it [claim:shutdown-wakes-blocked-recv]; the
// socket stays open, for its owner to close. Winsock's shutdown wakes nobody;
// only closesocket() does [claim:windows-closesocket-wakes-blocked-recv], so
// there the socket is closed here, and its owner must release() it instead of
// closing it again. Either way a blocked connect fails at once
// [claim:wake-aborts-blocking-connect]. Returns true if it closed the socket.
bool wake_blocked_calls(socket_t fd);

// poll() one socket, or WSAPoll() on Windows: wait up to timeout_ms (-1:
// forever) for `events` (POLLIN, POLLOUT). Returns what poll returns; the
// events that happened go to *revents.
int poll_one(socket_t fd, short events, int timeout_ms, short* revents);

// poll() many sockets, or WSAPoll() on Windows; the two structures have the
// same fields (fd, events, revents).
#ifdef _WIN32
using pollfd_t = WSAPOLLFD;
#else
using pollfd_t = pollfd;
#endif
int poll_many(pollfd_t* fds, std::size_t count, int timeout_ms);

// O_NONBLOCK on, with one call (ioctl FIONBIO, as CPython does; ioctlsocket on
// Windows) and no --trace line: for the lab server, whose calls are not the
// chapter's. Returns 0 or -1.
int set_nonblocking_untraced(socket_t fd);

// The error classes that the platforms spell differently.
bool is_would_block(int err);         // EAGAIN, EWOULDBLOCK / WSAEWOULDBLOCK
bool is_in_progress(int err);         // EINPROGRESS / WSAEWOULDBLOCK (a connect under way)
bool is_interrupted(int err);         // EINTR / WSAEINTR
bool is_out_of_descriptors(int err);  // EMFILE, ENFILE / WSAEMFILE, WSAENOBUFS
bool is_timed_out(int err);  // what a kernel timeout (SO_RCVTIMEO) reports: EAGAIN / WSAETIMEDOUT

// Can select() watch `fd` as well as `watched` other sockets? "" when it
// can; else why not. POSIX fd_sets are bitmaps of FD_SETSIZE bits: fd must be
// < FD_SETSIZE, however few are watched. A Winsock fd_set is a list of at most
// FD_SETSIZE sockets (64, unless the program defines FD_SETSIZE before
// including winsock2.h, as Microsoft's select() page says), whatever their
// values.
std::string why_select_cannot_watch(socket_t fd, std::size_t watched);

// How many received bytes wait in the socket's buffer: ioctl FIONREAD
// (ioctlsocket on Windows). -1 on failure.
long bytes_waiting(socket_t fd);

// stderr is a terminal (isatty, or _isatty on Windows).
bool stderr_is_terminal();

// Write all of data to stdout (descriptor 1) with write(2), or _write on
// Windows, where Startup puts stdout in binary mode; retried after EINTR and
// after a short write. Returns 0, or -1 with `error` set: "Broken pipe (EPIPE)"
// on POSIX, the system's own message and number on Windows (the C library
// maps a closed pipe, ERROR_NO_DATA, to EINVAL there).
int write_stdout(const char* data, std::size_t size, std::string& error);

// --trace for the calls made inside the shim (fcntl F_GETFL and F_SETFL in
// set_nonblocking, ioctlsocket, setsockopt SO_RCVLOWAT): each is handed to
// `reporter` as one line, "fcntl(3, F_GETFL) = 2", when one is set; trace.cpp
// sets it while --trace is on. The shim itself prints nothing.
void set_call_reporter(void (*reporter)(const std::string& line));

// How many descriptors this process may open, after raising the soft
// RLIMIT_NOFILE to the hard limit (POSIX; on macOS at most the sysctl
// kern.maxfilesperproc, the most its setrlimit accepts), and the hard limit
// first to `needed` where the process may (root). `before` is the soft
// limit we found, `now` the one in force afterwards, as getrlimit reads it.
// Windows has no such limit for sockets: both are 0 there.
struct DescriptorLimit {
    std::uint64_t before = 0, now = 0;
};
DescriptorLimit raise_descriptor_limit(std::uint64_t needed = 0);

// WSAStartup()/WSACleanup() on Windows; also puts stdout in binary mode there,
// so the bytes we copy from the socket reach it unchanged. On POSIX: ignore
// SIGPIPE, so a write to a closed stdout pipe fails with EPIPE.
struct Startup {
    Startup();
    ~Startup();
    Startup(const Startup&) = delete;
    Startup& operator=(const Startup&) = delete;
};

// Owns one socket: closes it when it goes out of scope, on every path.
class Socket {
public:
    Socket() = default;
    explicit Socket(socket_t fd) : fd_(fd) {}
    ~Socket() { reset(); }
    Socket(Socket&& other) noexcept : fd_(other.release()) {}
    Socket& operator=(Socket&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    socket_t get() const { return fd_; }
    bool valid() const { return fd_ != invalid_socket; }
    socket_t release() {
        socket_t fd = fd_;
        fd_ = invalid_socket;
        return fd;
    }
    void reset() {
        if (valid()) close_socket(release());
    }

private:
    socket_t fd_ = invalid_socket;
};

// ---- For the lab server ----
// Its own platform differences (common/labserver*.cpp).

// accept() a connection and make it non-blocking: on Linux in one call,
// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC); elsewhere accept() and then
// set_nonblocking_untraced(). The client's address goes to `peer`. Returns
// the new socket, or invalid_socket (last_error(): EWOULDBLOCK when none is
// waiting; EMFILE when out of descriptors).
socket_t accept_nonblocking(socket_t listener, sockaddr_storage& peer);

// The options a listening socket needs before bind(). POSIX: SO_REUSEADDR,
// to listen again at once on a port whose last connections still sit in
// TIME_WAIT. Windows: SO_EXCLUSIVEADDRUSE, since Winsock's SO_REUSEADDR would
// let another socket bind the port while we listen. Returns 0 or -1.
int set_listener_options(socket_t listener);

// Did the peer reset the connection? ECONNRESET (or EPIPE, a send after the
// reset) on POSIX; WSAECONNRESET or WSAECONNABORTED on Windows.
bool is_connection_reset(int err);

// A file in memory holding `bytes`, for send_file_part: memfd_create on Linux.
// -1 where there is none (other systems, or if it fails).
int file_in_memory(const char* name, const std::string& bytes);

// Send `size` bytes at `offset` of a file_in_memory to a socket. On Linux,
// sendfile(): the kernel hands the file's pages to the socket instead of
// copying bytes into it. Without a file (-1), send() of the same bytes from
// `copy`. Returns what send() returns.
long send_file_part(socket_t fd, int file, const std::string& copy, std::size_t offset,
                    std::size_t size);

// Write all of `data` to stderr with the system call itself: write(2), or
// _write on Windows. No stdio lock, which a blocked write would hold while
// the process exits. Retried after EINTR and after a short write; false if
// it fails.
bool write_stderr(const char* data, std::size_t size);

}  // namespace net

// platform.cpp - the POSIX and Winsock halves of platform.h.
#include "platform.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#else
#include <sys/ioctl.h>
#include <sys/resource.h>
#ifdef __APPLE__
#include <sys/sysctl.h>  // sysctlbyname
#endif
#endif

namespace net {

namespace {
struct ErrorName {
    int code;
    const char* name;
};
#define NET_ERROR(code) \
    { code, #code }
#ifdef _WIN32
const ErrorName error_names[] = {
    NET_ERROR(WSAEWOULDBLOCK),  NET_ERROR(WSAEINPROGRESS),    NET_ERROR(WSAEALREADY),
    NET_ERROR(WSAEINTR),        NET_ERROR(WSAECONNREFUSED),   NET_ERROR(WSAECONNRESET),
    NET_ERROR(WSAECONNABORTED), NET_ERROR(WSAETIMEDOUT),      NET_ERROR(WSAENOTCONN),
    NET_ERROR(WSAEISCONN),      NET_ERROR(WSAESHUTDOWN),      NET_ERROR(WSAEBADF),
    NET_ERROR(WSAEINVAL),       NET_ERROR(WSAEADDRINUSE),     NET_ERROR(WSAEADDRNOTAVAIL),
    NET_ERROR(WSAENETUNREACH),  NET_ERROR(WSAEHOSTUNREACH),   NET_ERROR(WSAEAFNOSUPPORT),
    NET_ERROR(WSAEMFILE),       NET_ERROR(WSAENOBUFS),        NET_ERROR(WSAENOTSOCK),
    NET_ERROR(WSAEFAULT),       NET_ERROR(WSAEACCES),         NET_ERROR(WSAEMSGSIZE),
    NET_ERROR(WSAENOPROTOOPT),  NET_ERROR(WSANOTINITIALISED), NET_ERROR(WSAHOST_NOT_FOUND),
    NET_ERROR(WSATRY_AGAIN),    NET_ERROR(WSANO_DATA),
};
#else
const ErrorName error_names[] = {
    NET_ERROR(EAGAIN),        NET_ERROR(EWOULDBLOCK),  NET_ERROR(EINPROGRESS),
    NET_ERROR(EALREADY),      NET_ERROR(EINTR),        NET_ERROR(ECONNREFUSED),
    NET_ERROR(ECONNRESET),    NET_ERROR(ECONNABORTED), NET_ERROR(ETIMEDOUT),
    NET_ERROR(EPIPE),         NET_ERROR(ENOTCONN),     NET_ERROR(EISCONN),
    NET_ERROR(EBADF),         NET_ERROR(EINVAL),       NET_ERROR(EADDRINUSE),
    NET_ERROR(EADDRNOTAVAIL), NET_ERROR(ENETUNREACH),  NET_ERROR(EHOSTUNREACH),
    NET_ERROR(EAFNOSUPPORT),  NET_ERROR(EMFILE),       NET_ERROR(ENFILE),
    NET_ERROR(ENOBUFS),       NET_ERROR(ENOTSOCK),     NET_ERROR(EFAULT),
    NET_ERROR(EACCES),        NET_ERROR(EPERM),        NET_ERROR(ENOMEM),
    NET_ERROR(EMSGSIZE),      NET_ERROR(ENOPROTOOPT),  NET_ERROR(ENOENT),
    NET_ERROR(ENOSPC),        NET_ERROR(EIO),
};
#endif
#undef NET_ERROR

void (*call_reporter)(const std::string&) = nullptr;

// A call made inside the shim, shown by --trace as trace.h shows the
// chapters' calls: "fcntl(3, F_GETFL) = 2", or "= -1 EBADF (Bad file descriptor)".
template <class Result>
Result reported(Result result, const std::string& call) {
    if (!call_reporter) return result;
    int err = last_error();  // before anything below can change it
    call_reporter(call + " = " +
                  (result == static_cast<Result>(-1)
                       ? "-1 " + error_name(err) + " (" + error_text(err) + ")"
                       : std::to_string(result)));
    set_last_error(err);
    return result;
}
}  // namespace

void set_call_reporter(void (*reporter)(const std::string& line)) {
    call_reporter = reporter;
}

void (*close_watcher)(socket_t) = nullptr;
void set_close_watcher(void (*watcher)(socket_t fd)) {
    close_watcher = watcher;
}

std::string error_name(int err) {
    for (const ErrorName& e : error_names)
        if (e.code == err) return e.name;
    return "E" + std::to_string(err);
}

#ifdef _WIN32

int last_error() {
    return WSAGetLastError();
}
void set_last_error(int err) {
    WSASetLastError(err);
}

std::string error_text(int err) {
    int saved = WSAGetLastError();  // FormatMessage would overwrite it
    char text[512] = "";
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                             static_cast<DWORD>(err), 0, text, sizeof text, nullptr);
    while (n > 0 &&
           (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '.'))
        text[--n] = '\0';
    WSASetLastError(saved);
    if (n == 0) return "Winsock error " + std::to_string(err);
    return text;
}

int close_socket(socket_t fd) {
    if (close_watcher) close_watcher(fd);
    return ::closesocket(fd) == 0 ? 0 : -1;
}

int set_nonblocking(socket_t fd, bool on) {
    u_long value = on ? 1 : 0;
    int result =
        reported(::ioctlsocket(fd, FIONBIO, &value),
                 "ioctlsocket(" + std::to_string(fd) + ", FIONBIO, " + std::to_string(value) + ")");
    return result == 0 ? 0 : -1;
}

int set_timeout_option(socket_t fd, int option, double seconds) {
    DWORD ms = static_cast<DWORD>(seconds * 1000 + 0.5);
    if (seconds > 0 && ms == 0) ms = 1;  // 0 would mean "no timeout"
    return ::setsockopt(fd, SOL_SOCKET, option, reinterpret_cast<const char*>(&ms), sizeof ms);
}

double get_timeout_option(socket_t fd, int option) {
    DWORD ms = 0;
    int len = sizeof ms;
    if (::getsockopt(fd, SOL_SOCKET, option, reinterpret_cast<char*>(&ms), &len) != 0) return -1;
    return ms / 1000.0;
}

void no_sigpipe(socket_t) {}

int set_receive_low_water(socket_t, int) {
    return 0;
}

bool wake_blocked_calls(socket_t fd) {
    ::closesocket(fd);
    return true;
}

int poll_one(socket_t fd, short events, int timeout_ms, short* revents) {
    WSAPOLLFD p{};
    p.fd = fd;
    p.events = events;
    int n = ::WSAPoll(&p, 1, timeout_ms);
    *revents = p.revents;
    return n;
}

int poll_many(pollfd_t* fds, std::size_t count, int timeout_ms) {
    return ::WSAPoll(fds, static_cast<ULONG>(count), timeout_ms);
}

int set_nonblocking_untraced(socket_t fd) {
    u_long on = 1;
    return ::ioctlsocket(fd, FIONBIO, &on) == 0 ? 0 : -1;
}

bool is_would_block(int err) {
    return err == WSAEWOULDBLOCK;
}
bool is_in_progress(int err) {
    return err == WSAEWOULDBLOCK || err == WSAEINPROGRESS;
}
bool is_interrupted(int err) {
    return err == WSAEINTR;
}
bool is_out_of_descriptors(int err) {
    return err == WSAEMFILE || err == WSAENOBUFS;
}
bool is_timed_out(int err) {
    return err == WSAETIMEDOUT;
}
std::string why_select_cannot_watch(socket_t, std::size_t watched) {
    if (watched < FD_SETSIZE) return "";
    return std::to_string(watched) + " sockets already fill an fd_set (FD_SETSIZE " +
           std::to_string(FD_SETSIZE) + " on Windows)";
}

long bytes_waiting(socket_t fd) {
    u_long count = 0;
    return ::ioctlsocket(fd, FIONREAD, &count) == 0 ? static_cast<long>(count) : -1;
}

bool stderr_is_terminal() {
    return _isatty(_fileno(stderr)) != 0;
}

int write_stdout(const char* data, std::size_t size, std::string& error) {
    while (size > 0) {
        int n = ::_write(1, data, static_cast<unsigned>(std::min<std::size_t>(size, 1u << 30)));
        if (n < 0) {
            // The C library maps a closed pipe (ERROR_NO_DATA) to EINVAL; the
            // system's own error, from GetLastError(), says what happened.
            int err = static_cast<int>(::GetLastError());
            error = error_text(err) + " (Windows error " + std::to_string(err) + ")";
            return -1;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

Startup::Startup() {
    WSADATA data;
    int err = WSAStartup(MAKEWORD(2, 2), &data);
    if (err != 0) {
        std::fprintf(stderr, "WSAStartup failed: %s\n", error_text(err).c_str());
        std::exit(1);
    }
    _setmode(_fileno(stdout), _O_BINARY);
}
Startup::~Startup() {
    WSACleanup();
}

#else  // POSIX

int last_error() {
    return errno;
}
void set_last_error(int err) {
    errno = err;
}

std::string error_text(int err) {
    return std::strerror(err);
}

int close_socket(socket_t fd) {
    // Never retried on EINTR: on Linux the descriptor is already released
    // then, and a retry could close a descriptor another thread just opened.
    if (close_watcher) close_watcher(fd);
    return ::close(fd);
}

int set_nonblocking(socket_t fd, bool on) {
    // Read-modify-write: keep O_APPEND and friends. Traced by their real
    // names, as strace shows them.
    std::string fd_text = std::to_string(fd);
    int flags = reported(::fcntl(fd, F_GETFL, 0), "fcntl(" + fd_text + ", F_GETFL)");
    if (flags == -1) return -1;
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted == flags) return 0;
    return reported(::fcntl(fd, F_SETFL, wanted), "fcntl(" + fd_text + ", F_SETFL, flags" +
                                                      (on ? "|O_NONBLOCK)" : "&~O_NONBLOCK)"));
}

int set_timeout_option(socket_t fd, int option, double seconds) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(seconds);
    tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
    if (seconds > 0 && tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;  // 0 means "none"
    return ::setsockopt(fd, SOL_SOCKET, option, reinterpret_cast<const char*>(&tv), sizeof tv);
}

double get_timeout_option(socket_t fd, int option) {
    timeval tv{};
    socklen_t len = sizeof tv;
    if (::getsockopt(fd, SOL_SOCKET, option, reinterpret_cast<char*>(&tv), &len) != 0) return -1;
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

int set_receive_low_water(socket_t fd, int bytes) {
    return reported(
        ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes),
        "setsockopt(" + std::to_string(fd) + ", SO_RCVLOWAT, " + std::to_string(bytes) + ")");
}

void no_sigpipe(socket_t fd) {
#ifdef SO_NOSIGPIPE
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
    (void)fd;
#endif
}

bool wake_blocked_calls(socket_t fd) {
    ::shutdown(fd, SHUT_RDWR);
    return false;
}

int poll_one(socket_t fd, short events, int timeout_ms, short* revents) {
    pollfd p{};
    p.fd = fd;
    p.events = events;
    int n = ::poll(&p, 1, timeout_ms);
    *revents = p.revents;
    return n;
}

int poll_many(pollfd_t* fds, std::size_t count, int timeout_ms) {
    return ::poll(fds, static_cast<nfds_t>(count), timeout_ms);
}

int set_nonblocking_untraced(socket_t fd) {
    int on = 1;
    return ::ioctl(fd, FIONBIO, &on);
}

bool is_would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK;
}
bool is_in_progress(int err) {
    return err == EINPROGRESS;
}
bool is_interrupted(int err) {
    return err == EINTR;
}
bool is_out_of_descriptors(int err) {
    return err == EMFILE || err == ENFILE;
}
bool is_timed_out(int err) {
    return err == EAGAIN || err == EWOULDBLOCK;
}
std::string why_select_cannot_watch(socket_t fd, std::size_t) {
    if (fd >= 0 && fd < FD_SETSIZE) return "";
    return "descriptor " + std::to_string(fd) + " is beyond FD_SETSIZE (" +
           std::to_string(FD_SETSIZE) + ")";
}

long bytes_waiting(socket_t fd) {
    int count = 0;
    return ::ioctl(fd, FIONREAD, &count) == 0 ? count : -1;
}

bool stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) != 0;
}

int write_stdout(const char* data, std::size_t size, std::string& error) {
    while (size > 0) {
        long n = ::write(STDOUT_FILENO, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = error_text(errno) + " (" + error_name(errno) + ")";
            return -1;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

// Writing to a pipe whose reader is gone raises SIGPIPE, which kills the
// process by default; ignored, the write fails with EPIPE instead
// [claim:closed-pipe-write-fails-epipe], and the chapter reports it. CPython
// ignores SIGPIPE at start-up too [claim:python-ignores-sigpipe], which is why
// Python code needs no MSG_NOSIGNAL.
// Sockets do not rely on this: their sends use MSG_NOSIGNAL (send_flags).
Startup::Startup() {
    std::signal(SIGPIPE, SIG_IGN);
}
Startup::~Startup() {}

#endif

DescriptorLimit raise_descriptor_limit(std::uint64_t needed) {
    DescriptorLimit limit;
#ifndef _WIN32
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) != 0) return limit;
    limit.before = limit.now = files.rlim_cur;
    // A hard limit below `needed` can be raised by root (CAP_SYS_RESOURCE on
    // Linux, up to fs.nr_open); anyone else is refused (EPERM), and keeps it.
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < needed) {
        rlimit more = files;
        more.rlim_max = static_cast<rlim_t>(needed);
        if (::setrlimit(RLIMIT_NOFILE, &more) == 0) files = more;
    }
    rlim_t wanted = files.rlim_max;
#ifdef __APPLE__
    // macOS reports an unlimited hard limit, but its setrlimit refuses a soft
    // limit above the sysctl kern.maxfilesperproc with EINVAL: Apple's
    // getrlimit(2) man page, COMPATIBILITY ("It no longer accepts rlim_cur =
    // RLIM_INFINITY for RLIM_NOFILE"), and xnu's dosetrlimit() in
    // bsd/kern/kern_resource.c. Go caps it at that sysctl for the same reason
    // (adjustFileLimit in src/syscall/rlimit_darwin.go). Read, not run: we
    // ask for at most kern.maxfilesperproc.
    int per_process = 0;
    std::size_t length = sizeof per_process;
    if (::sysctlbyname("kern.maxfilesperproc", &per_process, &length, nullptr, 0) == 0 &&
        per_process > 0 && static_cast<rlim_t>(per_process) < wanted)
        wanted = static_cast<rlim_t>(per_process);
#endif
    // Any other unlimited hard limit cannot be the soft one either: stop at 2^20.
    if (wanted == RLIM_INFINITY) wanted = rlim_t{1} << 20;
    if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < wanted) {
        files.rlim_cur = wanted;
        // Refused (EINVAL, EPERM): the limit in force is still the one we
        // found. Accepted: read back what is in force, not what we asked for.
        if (::setrlimit(RLIMIT_NOFILE, &files) != 0) return limit;
        if (::getrlimit(RLIMIT_NOFILE, &files) == 0) limit.now = files.rlim_cur;
    }
#else
    (void)needed;
#endif
    return limit;
}

// ---- For the lab server ----
// Its system headers are included here, outside the namespace, to keep the
// section in one place.
}  // namespace net

#ifdef __linux__
#include <sys/mman.h>      // memfd_create
#include <sys/sendfile.h>  // sendfile
#endif

namespace net {

socket_t accept_nonblocking(socket_t listener, sockaddr_storage& peer) {
    socklen_t length = sizeof peer;
    sockaddr* where = reinterpret_cast<sockaddr*>(&peer);
#ifdef __linux__
    // Non-blocking (and closed on exec) from the start: a call saved per connection.
    return ::accept4(listener, where, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    socket_t fd = ::accept(listener, where, &length);
    if (fd == invalid_socket || set_nonblocking_untraced(fd) == 0) return fd;
    int err = last_error();
    close_socket(fd);
    set_last_error(err);
    return invalid_socket;
#endif
}

int set_listener_options(socket_t listener) {
    int one = 1;
#ifdef _WIN32
    int option = SO_EXCLUSIVEADDRUSE;
#else
    // Linux lets a new listener bind a port in TIME_WAIT when the old
    // connections set SO_REUSEADDR too, as every run of ours does
    // [claim:reuseaddr-rebinds-port-in-time-wait].
    int option = SO_REUSEADDR;
#endif
    return ::setsockopt(listener, SOL_SOCKET, option, reinterpret_cast<const char*>(&one),
                        sizeof one) == 0
               ? 0
               : -1;
}

bool is_connection_reset(int err) {
#ifdef _WIN32
    return err == WSAECONNRESET || err == WSAECONNABORTED;
#else
    return err == ECONNRESET || err == EPIPE;
#endif
}

int file_in_memory(const char* name, const std::string& bytes) {
#ifdef __linux__
    int file = ::memfd_create(name, MFD_CLOEXEC);
    if (file >= 0 &&
        ::write(file, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()))
        return file;
    if (file >= 0) ::close(file);
#else
    (void)name;
    (void)bytes;
#endif
    return -1;
}

long send_file_part(socket_t fd, int file, const std::string& copy, std::size_t offset,
                    std::size_t size) {
#ifdef __linux__
    if (file >= 0) {
        off_t at = static_cast<off_t>(offset);
        return ::sendfile(fd, file, &at, size);
    }
#else
    (void)file;
#endif
    return ::send(fd, copy.data() + offset, static_cast<int>(size), send_flags);
}

bool write_stderr(const char* data, std::size_t size) {
    while (size > 0) {
#ifdef _WIN32
        int n = ::_write(2, data, static_cast<unsigned>(std::min<std::size_t>(size, 1u << 30)));
#else
        long n = ::write(STDERR_FILENO, data, size);
        if (n < 0 && errno == EINTR) continue;
#endif
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace net

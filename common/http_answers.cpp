// http_answers.cpp - the lab server's HTTP: reading a request head, writing answers.
#include "http_answers.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

namespace lab {

namespace {

bool is_token_char(char c) {  // RFC 9110, 5.6.2: the characters of a method or field name
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_visible(char c) {
    return c > 0x20 && c < 0x7f;
}  // no space, control or non-ASCII byte

// Can `line` (or its start, while it is still arriving) be a request line?
// METHOD SP TARGET [SP HTTP/d.d] (RFC 9112, 3), each space a single one, or
// the tutorial's HTTP/0.9 "GET /path" with no version.
bool request_line_so_far(const std::string& line, bool whole, Request& request) {
    std::size_t first_space = line.find(' ');
    std::string method = line.substr(0, first_space);
    for (char c : method)
        if (!is_token_char(c)) return false;
    if (first_space == std::string::npos) return !whole;  // still in the method
    if (method.empty()) return false;
    std::size_t second_space = line.find(' ', first_space + 1);
    std::string target = line.substr(first_space + 1, second_space - first_space - 1);
    for (char c : target)
        if (!is_visible(c)) return false;
    if (second_space == std::string::npos) {
        if (!whole) return true;
        request.http09 = true;  // HTTP/0.9 knew one method, and no headers
        request.target = target;
        return method == "GET" && !target.empty();
    }
    std::string version = line.substr(second_space + 1);
    static const std::string form = "HTTP/1.1";  // its shape: HTTP/ DIGIT . DIGIT
    if (target.empty() || version.size() > form.size() || (whole && version.size() < form.size()))
        return false;
    for (std::size_t i = 0; i < version.size(); ++i) {
        bool digit = std::isdigit(static_cast<unsigned char>(version[i])) != 0;
        if (i == 5 || i == 7 ? !digit : version[i] != form[i]) return false;
    }
    request.http09 = false;
    request.target = target;
    return true;
}

// A header line: NAME ":" value, the name a token with no space before the
// colon (RFC 9112, 5.1), no line folding (5.2), no bare CR (2.2).
bool is_field_line(const std::string& line) {
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string::npos) return false;
    for (std::size_t i = 0; i < colon; ++i)
        if (!is_token_char(line[i])) return false;
    return line.find('\r') == std::string::npos;
}

}  // namespace

HeadStatus parse_head(const std::string& head, Request& request) {
    // A client may send an empty line or two (CRLF, or a bare LF) before the
    // request line (RFC 9112, 2.2); a third, or a bare CR, is not a request.
    std::size_t at = 0;
    for (int empty_lines = 0;; ++empty_lines) {
        std::size_t size = head.compare(at, 1, "\n") == 0     ? 1
                           : head.compare(at, 2, "\r\n") == 0 ? 2
                                                              : 0;
        if (size == 0) break;
        if (empty_lines == 2) return HeadStatus::bad;
        at += size;
    }
    if (at == head.size() || head.compare(at, std::string::npos, "\r") == 0)
        return HeadStatus::incomplete;  // nothing yet, or a CR whose LF may follow
    std::size_t end = head.find('\n', at);
    std::string line = head.substr(at, end == std::string::npos ? std::string::npos : end - at);
    bool whole = end != std::string::npos;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // the CR of CRLF
    if (!request_line_so_far(line, whole, request) || line.find('\r') != std::string::npos)
        return HeadStatus::bad;
    if (!whole) return HeadStatus::incomplete;
    request.line = line;
    if (request.http09) return HeadStatus::complete;
    // Then header lines, up to the first empty line.
    for (at = end + 1;; at = end + 1) {
        end = head.find('\n', at);
        if (end == std::string::npos) return HeadStatus::incomplete;
        line = head.substr(at, end - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) return HeadStatus::complete;
        if (!is_field_line(line)) return HeadStatus::bad;
    }
}

std::string response_head(std::uint64_t content_length, const char* status,
                          const char* content_type, const char* connection) {
    return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + content_type +
           "\r\nContent-Length: " + std::to_string(content_length) +
           "\r\nConnection: " + connection + "\r\n\r\n";
}

std::string short_answer(const char* status, const std::string& body) {
    return response_head(body.size(), status) + body;
}

std::string hello_body(const Request& request) {
    return "Hello from the lab server.\nYou asked for " + request.target + "\n";
}

std::string hello_response(const Request& request, const char* connection) {
    std::string body = hello_body(request);
    return request.http09 ? body
                          : response_head(body.size(), "200 OK", "text/plain", connection) + body;
}

std::string chunked_response(const std::string& body, std::uint64_t cut) {
    std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
    std::size_t at = 0;
    for (std::size_t size = 1; at < body.size(); size *= 2) {
        std::size_t chunk = std::min(size, body.size() - at);
        char line[32];
        std::snprintf(line, sizeof line, "%zX%s\r\n", chunk, at == 0 ? ";lab=first" : "");
        answer += line;
        if (at + chunk > cut) return answer + body.substr(at, cut - at);
        answer += body.substr(at, chunk) + "\r\n";
        at += chunk;
    }
    if (cut != Scenario::no_cut) return answer;
    return answer + "0\r\nLab-Trailer: the end\r\n\r\n";
}

char big_body_byte(std::uint64_t offset) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::uint64_t column = offset % 64, line = (offset / 64) % 64;
    return column == 63 ? '\n' : alphabet[(line + column) % 64];
}

const std::string& big_block() {
    static const std::string block = [] {
        std::string bytes(big_block_size, '\0');
        for (std::uint64_t i = 0; i < bytes.size(); ++i)
            bytes[i] = big_body_byte(i);
        return bytes;
    }();
    return block;
}

char binary_body_byte(std::uint64_t offset) {
    if (offset % 7 == 3) return '\0';
    std::uint64_t m = offset - (offset + 3) / 7;  // the bytes before it not forced to 0
    unsigned v = static_cast<unsigned>((m * 167 + (m >> 8) * 73 + 1) & 0xff);
    v ^= v >> 4;
    return static_cast<char>(v * 29 & 0xff);
}

std::string binary_response(const Request& request, std::uint64_t kibibytes) {
    // Built once, binary_most KiB: every body is the start of it.
    static const std::string block = [] {
        std::string bytes(binary_most * 1024, '\0');
        for (std::uint64_t i = 0; i < bytes.size(); ++i)
            bytes[i] = binary_body_byte(i);
        return bytes;
    }();
    std::uint64_t size = std::min(kibibytes, binary_most) * 1024;
    std::string head =
        request.http09 ? "" : response_head(size, "200 OK", "application/octet-stream");
    return head + block.substr(0, static_cast<std::size_t>(size));
}

}  // namespace lab

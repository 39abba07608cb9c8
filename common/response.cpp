// response.cpp - following an HTTP response as it streams past (response.h).
#include "response.h"

#include "text.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace chapter {

using text::Failure;

namespace {

constexpr std::uint64_t max_head_size = 64 * 1024;     // status line + headers; more is refused
constexpr std::size_t max_chunk_line_size = 8 * 1024;  // a chunk-size line, extensions included
constexpr int max_chunk_size_digits = 15;  // significant hex digits: up to 2^60 - 1 bytes

std::string lower(std::string text) {
    for (char& c : text)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string trimmed(const std::string& text) {
    std::size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// The characters of a header name (RFC 9110, 5.6.2: a "token").
bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string("!#$%&'*+-.^_`|~").find(c) != std::string::npos;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// "HTTP/1.1 200 OK" or "HTTP/1.1 200": HTTP/1.DIGIT SP 3DIGIT, then SP and a
// reason or nothing (RFC 9112, 4). Not "HTTP/1.1 2000 OK", and not another
// major version: HTTP/2 and HTTP/3 never answer in this text form.
bool is_status_line(const std::string& line) {
    return line.size() >= 12 && line.compare(0, 7, "HTTP/1.") == 0 && line[6] == '.' &&
           is_digit(line[7]) && line[8] == ' ' && line[9] >= '1' && line[9] <= '9' &&
           is_digit(line[10]) && is_digit(line[11]) && (line.size() == 12 || line[12] == ' ');
}

// "1234" -> 1234; false for anything but decimal digits, or for more than 18
// of them after any leading zeros (a length that would not fit).
bool parse_decimal(const std::string& text, std::uint64_t& value) {
    if (text.empty()) return false;
    value = 0;
    int significant = 0;
    for (char c : text) {
        if (!is_digit(c)) return false;
        if ((value > 0 || c != '0') && ++significant > 18) return false;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

}  // namespace

void ResponseReader::malformed(const std::string& what) const {
    throw Failure("response malformed", what);
}

// Lines end in CRLF, or in a bare LF, which RFC 9112 (2.2) lets a recipient
// accept. A CR anywhere else is refused: 2.2 says to treat it as invalid or as
// a space, and a parser that silently keeps it can be told apart from one
// that does not (response splitting). A header line's length is bounded by
// the head's; a chunk-size line's by max_chunk_line_size.
bool ResponseReader::take_line_byte(char c) {
    bool chunk_line = state_ == State::chunk_size || state_ == State::chunk_end;
    if (c == '\n') {
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.find('\r') != std::string::npos)
            malformed("a CR inside a line, not before its LF: '" + text::printable(line_) + "'");
        // RFC 9110 (5.5): a NUL in a field must be refused or read as a space;
        // a parser that stops at it would read another header than ours.
        if (line_.find('\0') != std::string::npos)
            malformed("a NUL byte in a line: '" + text::printable(line_) + "'");
        if (!chunk_line || line_.size() <= max_chunk_line_size) return true;
    }
    // One byte over the limit is still room for the CR of CRLF.
    if (chunk_line && line_.size() >= max_chunk_line_size + (c == '\n' ? 0 : 1))
        malformed("a chunk-size line over " + std::to_string(max_chunk_line_size) +
                  " bytes: " + text::printable(line_));
    line_ += c;
    return false;
}

void ResponseReader::take(const char* data, std::size_t size) {
    std::size_t at = 0;
    while (at < size) {
        switch (state_) {
            case State::start: {
                // A response starts with "HTTP/". Anything else is an answer
                // with no status line (HTTP/0.9, or an echo): all of it is
                // body, up to the server's FIN. Decided as soon as a byte
                // differs from "HTTP/", or after five bytes.
                static const std::string prefix = "HTTP/";
                line_ += data[at++];
                ++bytes_taken_;
                if (prefix.compare(0, line_.size(), line_) != 0) {
                    if (interim_responses_ > 0)
                        malformed("after a " + std::to_string(last_interim_status_) +
                                  " interim response, bytes that are not a status line: '" +
                                  text::printable(line_) + "'");
                    state_ = State::until_eof;
                    ending_ = Ending::no_status_line;
                    body_bytes_ += line_.size();
                    line_.clear();
                } else if (line_.size() == prefix.size()) {
                    state_ = State::head;
                    head_bytes_ = line_.size();
                }
                break;
            }
            case State::head:
            case State::trailers: {
                char c = data[at++];
                ++bytes_taken_;
                if (++head_bytes_ > max_head_size)
                    malformed("status line and headers over " + std::to_string(max_head_size) +
                              " bytes");
                if (!take_line_byte(c)) break;
                std::string line;
                line.swap(line_);
                if (state_ == State::trailers) {
                    if (line.empty()) state_ = State::done;  // trailer fields are ignored
                } else if (status_ == 0) {
                    status_line(line);
                } else if (line.empty()) {
                    field_line(field_);
                    end_of_head();
                } else if (line[0] == ' ' || line[0] == '\t') {
                    // obs-fold: the previous field's value goes on in this line.
                    // A user agent must read it as one space (RFC 9112, 5.2).
                    if (field_.empty())
                        malformed("whitespace before the first header line (RFC 9112, 2.2)");
                    field_ += " " + trimmed(line);
                } else {
                    field_line(field_);  // a field is judged once we know it is not folded
                    field_ = line;
                }
                break;
            }
            case State::body_by_length:
            case State::chunk_data: {
                std::uint64_t n = std::min<std::uint64_t>(left_, size - at);
                at += static_cast<std::size_t>(n);
                bytes_taken_ += n;
                body_bytes_ += n;
                left_ -= n;
                if (left_ == 0)
                    state_ = state_ == State::chunk_data ? State::chunk_end : State::done;
                break;
            }
            case State::chunk_size:
            case State::chunk_end: {
                ++bytes_taken_;
                if (!take_line_byte(data[at++])) break;
                std::string line;
                line.swap(line_);
                if (state_ == State::chunk_size) {
                    chunk_size_line(line);
                } else if (!line.empty()) {
                    malformed("chunk " + std::to_string(chunks_) +
                              " is longer than its size line said");
                } else {
                    state_ = State::chunk_size;
                }
                break;
            }
            case State::until_eof:
                body_bytes_ += size - at;
                bytes_taken_ += size - at;
                at = size;
                break;
            case State::done: {
                std::size_t extra = size - at;
                throw Failure("response too long",
                              std::to_string(extra) + (extra == 1 ? " more byte" : " more bytes") +
                                  " after the end of the response (" + how_it_ended() + ")");
            }
        }
    }
}

// "HTTP/1.1 200 OK", the first line of every response (interim ones too).
void ResponseReader::status_line(const std::string& line) {
    if (!is_status_line(line)) malformed("status line '" + text::printable(line) + "'");
    status_ = std::stoi(line.substr(9, 3));
    // 101 Switching Protocols answers a request to upgrade; ours never asks,
    // and what follows it would not be HTTP/1.1.
    if (status_ == 101) malformed("101 Switching Protocols, but the request asked for no upgrade");
    status_line_ = line;
}

// "Name: value". Only the two that frame the body matter here.
void ResponseReader::field_line(const std::string& line) {
    if (line.empty()) return;  // no field pending
    std::size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
        malformed("header line '" + text::printable(line) + "'");
    for (std::size_t i = 0; i < colon; ++i) {
        if (line[i] == ' ' || line[i] == '\t')  // RFC 9112, 5.1: must be refused
            malformed("whitespace before the colon in header line '" + text::printable(line) + "'");
        if (!is_token_char(line[i]))
            malformed("header name in '" + text::printable(line) + "' is not a token");
    }
    std::string name = lower(line.substr(0, colon));
    std::string value = trimmed(line.substr(colon + 1));
    if (name == "content-length") {
        std::uint64_t length = 0;
        if (!parse_decimal(value, length))
            malformed("Content-Length '" + text::printable(value) + "' is not a number of bytes");
        if (has_length_ && length != content_length_)
            malformed("two different Content-Length headers");
        has_length_ = true;
        content_length_ = length;
    } else if (name == "transfer-encoding") {
        // Two Transfer-Encoding lines are one list (RFC 9110, 5.3):
        // "gzip" then "chunked" is "gzip, chunked".
        codings_ += (codings_.empty() ? "" : ", ") + lower(value);
        has_codings_ = true;
    }
}

void ResponseReader::end_of_head() {
    if (status_ >= 100 && status_ < 200) {
        // An interim response (100 Continue, 103 Early Hints): the real one
        // follows, and nothing of this head applies to it.
        ++interim_responses_;
        last_interim_status_ = status_;
        status_ = 0;
        has_length_ = has_codings_ = false;
        content_length_ = 0;
        codings_.clear();
        field_.clear();
        head_bytes_ = 0;
        state_ = State::start;
        return;
    }
    // RFC 9112, 6.3: which of the three ways ends this body, in this order.
    if (status_ == 204 || status_ == 304) {
        state_ = State::done;
        ending_ = Ending::no_body;
    } else if (has_codings_) {
        // Transfer-Encoding overrides Content-Length (6.3, rule 3). The last
        // coding decides: "gzip, chunked" is chunked; "gzip" alone ends only
        // when the server closes (rule 4).
        std::size_t comma = codings_.rfind(',');
        bool chunked =
            trimmed(comma == std::string::npos ? codings_ : codings_.substr(comma + 1)) ==
            "chunked";
        state_ = chunked ? State::chunk_size : State::until_eof;
        ending_ = chunked ? Ending::chunks : Ending::eof;
    } else if (has_length_) {
        left_ = content_length_;
        state_ = content_length_ == 0 ? State::done : State::body_by_length;
        ending_ = Ending::length;
    } else {
        state_ = State::until_eof;
        ending_ = Ending::eof;
    }
}

// "1a2f" or "1a2f;name=value": the size of the next chunk, in hex.
void ResponseReader::chunk_size_line(const std::string& line) {
    // Hex digits only: no sign, no "0x", no "_" (as Python's int(size, 16)
    // would take). Leading zeros are allowed and do not count.
    std::size_t digits = 0;
    int significant = 0;
    std::uint64_t chunk = 0;
    while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[digits])));
        if (chunk > 0 || c != '0') ++significant;
        if (significant > max_chunk_size_digits)
            malformed("chunk size '" + text::printable(line) + "' is too large");
        chunk = chunk * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        ++digits;
    }
    std::string rest = trimmed(line.substr(digits));
    if (digits == 0 || (!rest.empty() && rest[0] != ';'))
        malformed("chunk size line '" + text::printable(line) + "' is not a hex number");
    if (chunk == 0) {
        state_ = State::trailers;
        head_bytes_ = 0;
        return;
    }
    ++chunks_;
    left_ = chunk;
    state_ = State::chunk_data;
}

void ResponseReader::at_eof(const std::string& why) {
    switch (state_) {
        case State::done:
            return;
        case State::until_eof:
            state_ = State::done;
            return;
        case State::start:
            if (bytes_taken_ == 0)
                throw Failure("recv", "the server closed the connection without answering");
            [[fallthrough]];
        case State::head:
            throw Failure("response truncated",
                          "the server closed after " + std::to_string(bytes_taken_) +
                              " bytes, before the end of the headers (" + why + ")");
        case State::body_by_length:
            throw Failure("response truncated", std::to_string(body_bytes_) + " of " +
                                                    std::to_string(content_length_) +
                                                    " body bytes (" + why + ")");
        case State::trailers:
            throw Failure("response truncated",
                          std::to_string(body_bytes_) + " body bytes in " +
                              std::to_string(chunks_) +
                              " chunks and the last chunk, but the trailer section did not end (" +
                              why + ")");
        default:  // in the chunks
            throw Failure("response truncated", std::to_string(body_bytes_) + " body bytes in " +
                                                    std::to_string(chunks_) +
                                                    " chunks, and no last chunk (" + why + ")");
    }
}

// A response with both framings is one that RFC 9112 (6.3) says a server must
// not send and a client "ought to handle as an error": say so.
std::string ResponseReader::overridden_length() const {
    if (!has_length_ || !has_codings_) return "";
    return "; it also had a Content-Length, which Transfer-Encoding overrides (RFC 9112, 6.3)";
}

std::string ResponseReader::how_it_ended() const {
    std::string body = std::to_string(body_bytes_) + " body bytes";
    switch (ending_) {
        case Ending::length:
            return "the response ended at its Content-Length: " + body;
        case Ending::chunks:
            return "the response ended with its last chunk: " + body + " in " +
                   std::to_string(chunks_) + " chunks" + overridden_length();
        case Ending::eof:
            if (has_codings_)
                return "the response ended at the server's FIN (Transfer-Encoding '" +
                       text::printable(codings_) + "' does not end in chunked): " + body +
                       overridden_length();
            return "the response ended at the server's FIN (no Content-Length, not chunked): " +
                   body;
        case Ending::no_status_line:
            return "the answer had no status line (HTTP/0.9 style) and ended at the server's "
                   "FIN: " +
                   std::to_string(body_bytes_) + " bytes";
        case Ending::no_body:
            return "the response has no body (status " + std::to_string(status_) + ")";
        case Ending::none:
            break;
    }
    return "the response is not complete: " + std::to_string(bytes_taken_) + " bytes so far";
}

}  // namespace chapter

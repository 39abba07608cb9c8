// diagram.h - `--diagram` and `--mermaid FILE`: after the run, a sequence chart
// of what each side of each connection did, with time going down.
//
//      time  client               us -> them / them -> us      server
//     0.000  connect              ----------- SYN ---------->
//     0.000                       <--------- SYN-ACK --------
//     0.000                       ----------- ACK ---------->  accept
//     0.001  send                 ========== 60 B ==========>  read 60 B: the request
//
// It is drawn from two records, both taken while the program runs:
//   - the client's calls: every line --trace would print (trace.cpp hands each
//     one over, printed or not), and, just before each close, what the socket
//     holds: unread bytes (FIONREAD) and SO_LINGER, which decide whether close
//     sends a FIN or an RST [claim:close-with-unread-data-sends-rst];
//   - offline, the built-in lab server's side, which runs in this process:
//     what it accepted, read, sent, shut down and closed, and what its recv saw
//     (the client's FIN, a reset).
// With a HOST there is no server record: its lane shows only what the client
// learned (data arrived, recv returned 0 for its FIN, ECONNRESET for an RST).
//
// The arrows are segments that crossed the wire: SYN, SYN-ACK, ACK, data (a
// run of sends drawn once, with its bytes), FIN, RST. Pure ACKs and window
// updates are not drawn. Everything else is a note on a side's lane. Two
// threads record (ours and the lab server's); an event that needs another
// (the server reading bytes the client's send has not been recorded for yet)
// is drawn after it, so the chart keeps cause before effect.
// tests/capture_check.py compares the arrows with a tcpdump capture.
#pragma once

#include "platform.h"

#include <cstdint>
#include <string>

namespace diagram {

// Turn recording on: `text` for --diagram (on stderr), `mermaid_file` for
// --mermaid FILE ("" for none). The chart is drawn when the program exits
// (std::atexit), after the lab server has closed its side.
void start(const char* program, bool text, const std::string& mermaid_file);
bool recording();

// One line of --trace: "recv(3, 65536) = 140", "shutdown(3, SHUT_WR) = 0".
void client_call(const std::string& line);
// The run's error line (chapter::report), drawn at the end.
void client_failed(const std::string& error);

// The lab server's side, when it runs in this process. `client` is the
// client's address as the server knows it ("127.0.0.1:51234").
void server_started(const std::string& address);
void server_accepted(net::socket_t fd, const std::string& client);
// What one recv returned: bytes (> 0), 0 (the client's FIN), or -1 with `err`.
void server_received(net::socket_t fd, long result, int err);
void server_sent(net::socket_t fd, std::uint64_t bytes);
void server_shut_down(net::socket_t fd);  // shutdown(SHUT_WR): its FIN
// A note on the server's lane ("request GET /", "scenario reset").
void server_note(const std::string& client, const std::string& text);

}  // namespace diagram

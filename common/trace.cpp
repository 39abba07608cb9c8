// trace.cpp - where --trace lines go: to stderr with --trace, and to the
// diagram's record with --diagram or --mermaid (diagram.h), or both.
#include "trace.h"

#include "diagram.h"
#include "text.h"

namespace trace {
namespace {
bool tracing = false;
}
void enable(bool on) {
    tracing = on;
    // The shim's own calls too.
    net::set_call_reporter(on || diagram::recording() ? line : nullptr);
}
bool enabled() {
    return tracing || diagram::recording();
}
void line(const std::string& text) {
    if (tracing) text::print_line("  " + text);
    diagram::client_call(text);
}
}  // namespace trace

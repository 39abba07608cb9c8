// trace.cpp - where --trace lines go.
#include "trace.h"

#include "text.h"

namespace trace {
namespace {
bool tracing = false;
}
void enable(bool on) {
    tracing = on;
    net::set_call_reporter(on ? line : nullptr);  // the shim's own calls too
}
bool enabled() {
    return tracing;
}
void line(const std::string& text) {
    if (tracing) text::print_line("  " + text);
}
}  // namespace trace

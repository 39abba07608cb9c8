// llhttp_verdict.js - what Node.js's HTTP client (its parser is llhttp) makes
// of each raw response in a set of files: one line per file,
//
//   NAME VERDICT BODYLEN DETAIL
//
// in the words of tests/differential/response_verdict.cpp (complete,
// truncated, malformed, empty), plus one of its own:
//   upgrade     a 101 response: Node hands the connection over ('upgrade'
//               event); what follows is no longer HTTP
// BODYLEN is the body's length for complete, "-" otherwise; DETAIL is the
// error code Node gave (HPE_INVALID_CHUNK_SIZE, ECONNRESET, ...) or "-".
//
// This is Node's real client, not the parser alone: http.request() sends a
// GET with "Connection: close" as our chapters do, and the response arrives
// in one piece followed by the end of the stream (the server's FIN), so
// Node's own 1xx handling ('information' events), its 101 handling and its
// reaction to bytes after the end all take part.
//
// Where the bytes come from:
//   default  a stand-in for the socket: a Duplex stream, handed to
//            http.request() through its documented `createConnection` option,
//            that answers the request with the file's bytes and then ends.
//            No network at all, and the bytes always arrive in one piece.
//   --tcp    a real server on 127.0.0.1 (ephemeral port) that writes the
//            file's bytes and closes: a cross-check that the stand-in changes
//            nothing. Slower; not used by the test.
//
// How Node's outcome maps to a verdict (see judge() below):
//   an error whose code starts with HPE_ (llhttp's parse errors), on the
//     request or the response, at any time       -> malformed
//   an 'upgrade' event (status 101)              -> upgrade
//   a response whose 'end' came with res.complete -> complete
//   otherwise ('socket hang up', 'aborted')      -> truncated (empty: no bytes)
//
// Usage: node llhttp_verdict.js [--lenient] [--tcp] FILE_OR_DIRECTORY...
//   --lenient  insecureHTTPParser: true (llhttp's lenient flags, all of them)
"use strict";

const fs = require("fs");
const http = require("http");
const net = require("net");
const path = require("path");
const { Duplex } = require("stream");

// The files to judge: each argument, or the files in a directory, by name.
function listFiles(args) {
    const files = [];
    for (const arg of args) {
        if (fs.statSync(arg).isDirectory()) {
            const names = fs.readdirSync(arg).sort();
            for (const name of names) files.push(path.join(arg, name));
        } else {
            files.push(arg);
        }
    }
    return files;
}

// A stand-in for a TCP connection: when the client writes its request, the
// "server" answers with `response` and closes (push(null) is the FIN).
function fakeConnection(response) {
    let answered = false;
    return new Duplex({
        read() {},
        write(chunk, encoding, callback) {
            if (!answered) {
                answered = true;
                if (response.length > 0) this.push(response);
                this.push(null);
            }
            callback();
        },
    });
}

// Send one GET and watch what Node reports. `connect` is the request's
// options for where the bytes come from. Resolves to [verdict, bodyLength, detail].
function judge(response, lenient, connect) {
    return new Promise((resolve) => {
        const seen = { errors: [], res: null, bodyBytes: 0, ended: false, upgraded: false };
        let requestClosed = false;
        let responseClosed = false;

        const options = Object.assign(
            {
                method: "GET",
                path: "/",
                headers: { Host: "differential.test", Connection: "close" },
                insecureHTTPParser: lenient,
            },
            connect
        );
        const req = http.request(options);
        req.on("error", (err) => seen.errors.push(err));
        req.on("upgrade", (res, socket) => {
            seen.upgraded = true;
            socket.destroy();
        });
        req.on("response", (res) => {
            seen.res = res;
            res.on("data", (data) => (seen.bodyBytes += data.length));
            res.on("end", () => (seen.ended = true));
            res.on("error", (err) => seen.errors.push(err));
            res.on("close", () => {
                responseClosed = true;
                settle();
            });
        });
        req.on("close", () => {
            requestClosed = true;
            settle();
        });
        req.end();

        // Decide once the request is closed and the response (if any) too,
        // after the events already queued have run.
        let decided = false;
        function settle() {
            if (decided || !requestClosed || (seen.res && !responseClosed)) return;
            decided = true;
            setImmediate(() => resolve(verdictOf(seen, response.length)));
        }
        // A response Node neither finishes nor fails would hang the whole
        // run: give up on it after two seconds and say so.
        setTimeout(() => {
            if (!decided) {
                decided = true;
                resolve(["hang", "-", "-"]);
            }
        }, 2000).unref();
    });
}

function verdictOf(seen, byteCount) {
    const parseError = seen.errors.find((err) => String(err.code).startsWith("HPE_"));
    if (parseError) return ["malformed", "-", parseError.code];
    if (seen.upgraded) return ["upgrade", "-", "-"];
    if (seen.res && seen.res.complete && seen.ended) return ["complete", String(seen.bodyBytes), "-"];
    if (byteCount === 0) return ["empty", "-", "-"];
    const other = seen.errors.find((err) => err.code !== "ECONNRESET");
    if (other) return ["error", "-", String(other.code || other.message).replace(/\s+/g, "_")];
    const detail = seen.errors.length ? seen.errors[0].message.replace(/\s+/g, "_") : "-";
    return ["truncated", "-", detail];
}

// --tcp: a server on 127.0.0.1 that answers each request with the file its
// path names (/0, /1, ...) and closes. Only loopback, ephemeral port.
function startServer(responses) {
    return new Promise((resolve) => {
        const server = net.createServer((socket) => {
            let request = "";
            socket.on("data", (data) => {
                request += data.toString("latin1");
                if (!request.includes("\r\n\r\n")) return;
                const index = Number(request.split(" ")[1].slice(1));
                socket.end(responses[index]);  // write, then FIN
            });
            socket.on("error", () => {});  // the client may reset: no matter
        });
        server.listen(0, "127.0.0.1", () => resolve(server));
    });
}

async function main() {
    const args = process.argv.slice(2);
    const lenient = args.includes("--lenient");
    const tcp = args.includes("--tcp");
    const files = listFiles(args.filter((arg) => !arg.startsWith("--")));
    if (files.length === 0) {
        process.stderr.write("usage: node llhttp_verdict.js [--lenient] [--tcp] FILE_OR_DIRECTORY...\n");
        process.exit(2);
    }
    const responses = files.map((file) => fs.readFileSync(file));
    const server = tcp ? await startServer(responses) : null;

    const lines = [];
    for (let i = 0; i < files.length; i++) {
        const connect = tcp
            ? { host: "127.0.0.1", port: server.address().port, path: "/" + i, agent: false }
            : { createConnection: () => fakeConnection(responses[i]) };
        const [verdict, bodyLength, detail] = await judge(responses[i], lenient, connect);
        lines.push(`${path.basename(files[i])} ${verdict} ${bodyLength} ${detail}`);
    }
    if (server) server.close();
    process.stdout.write(lines.join("\n") + "\n");
}

main();

#!/usr/bin/env python3
"""Load generator for `mqan serve`.

Replays a decaNLP-format JSONL file ({"context", "question", ...} per line) as genienlp-style
requests over N concurrent connections, JSON-lines over TCP or HTTP (POST /v1/predict, keep-alive),
closed loop (each connection sends its next request when the last is answered) or at a fixed total
rate (JSON-lines only, requests pipelined on each connection and matched by id). Prints requests,
errors, wall time, throughput and p50/p90/p99 latency; --json prints the same as one JSON object.
Only loopback addresses are accepted. Standard library only.

  tools/loadgen/loadgen.py --input sst/validation.jsonl --task sst --protocol lines --port 8401 \
      --connections 64 --requests 2000
"""
import argparse
import asyncio
import ipaddress
import json
import os
import socket
import sys
import time


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Run:
    def __init__(self, args, examples):
        self.args = args
        self.examples = examples
        self.next = 0
        self.latencies = []
        self.errors = {}
        self.answers = {}
        self.rss = []
        self.done = 0

    def take(self):
        if self.next >= self.args.requests:
            return None
        i = self.next
        self.next += 1
        return i

    def body(self, i):
        ex = self.examples[i % len(self.examples)]
        req = {"id": i, "task": self.args.task, "context": ex["context"], "question": ex["question"]}
        if self.args.timeout_ms:
            req["timeout_ms"] = self.args.timeout_ms
        return json.dumps(req).encode() + b"\n"

    def record(self, i, start, reply):
        self.latencies.append(time.perf_counter() - start)
        try:
            obj = json.loads(reply)
        except ValueError:
            obj = {"error": "unparsable reply"}
        if "error" in obj:
            kind = obj["error"].split(":")[0]
            self.errors[kind] = self.errors.get(kind, 0) + 1
        elif self.args.answers:
            self.answers[i] = obj.get("answer")
        self.done += 1
        pid = self.args.server_pid
        if pid and self.done % max(1, self.args.requests // 20) == 0:
            self.rss.append((self.done, rss_kib(pid)))
            if not self.args.json:
                print(f"  {self.done} requests, server RSS {self.rss[-1][1]} KiB", file=sys.stderr)


async def lines_closed(run, host, port):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    while (i := run.take()) is not None:
        start = time.perf_counter()
        writer.write(run.body(i))
        await writer.drain()
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        run.record(i, start, line)
    writer.close()


async def lines_open(run, host, port, rate_per_connection):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    pending = {}

    async def read():
        while pending or run.next < run.args.requests:
            line = await reader.readline()
            if not line:
                return
            obj = json.loads(line)
            start = pending.pop(obj.get("id"), None)
            if start is not None:
                run.record(obj.get("id"), start, line)

    reader_task = asyncio.ensure_future(read())
    interval = 1.0 / rate_per_connection
    t = time.perf_counter()
    while (i := run.take()) is not None:
        t += interval
        delay = t - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending[i] = time.perf_counter()
        writer.write(run.body(i))
        await writer.drain()
    await reader_task
    writer.close()


async def http_closed(run, host, port):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    while (i := run.take()) is not None:
        body = run.body(i)
        head = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        start = time.perf_counter()
        writer.write(head + body)
        await writer.drain()
        status = await reader.readline()
        if not status:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (h := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = h.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        reply = await reader.readexactly(length)
        run.record(i, start, reply)
    writer.close()


async def main_async(args, examples):
    run = Run(args, examples)
    port = args.port
    if args.protocol == "lines":
        if args.rate:
            jobs = [lines_open(run, args.host, port, args.rate / args.connections) for _ in range(args.connections)]
        else:
            jobs = [lines_closed(run, args.host, port) for _ in range(args.connections)]
    else:
        if args.rate:
            sys.exit("error: --rate works with --protocol lines (requests pipelined by id)")
        jobs = [http_closed(run, args.host, port) for _ in range(args.connections)]
    if args.server_pid:
        run.rss.append((0, rss_kib(args.server_pid)))
    start = time.perf_counter()
    await asyncio.gather(*jobs)
    return run, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="decaNLP-format JSONL (context, question per line)")
    p.add_argument("--task", default="generic")
    p.add_argument("--protocol", choices=["lines", "http"], default="lines")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8401)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--requests", type=int, default=None, help="total requests (default: one per input line)")
    p.add_argument("--rate", type=float, default=None, help="total requests/s, open loop (default: closed loop)")
    p.add_argument("--timeout-ms", type=int, default=None)
    p.add_argument("--server-pid", type=int, default=None, help="sample this process' RSS 20 times during the run")
    p.add_argument("--answers", default=None, help="write {id: answer} as JSON here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not ipaddress.ip_address(socket.gethostbyname(args.host)).is_loopback:
        sys.exit(f"error: --host {args.host} is not a loopback address")
    with open(args.input) as f:
        examples = [json.loads(line) for line in f if line.strip()]
    if not examples:
        sys.exit(f"error: {args.input}: no examples")
    if args.requests is None:
        args.requests = len(examples)
    if args.connections < 1 or args.requests < 1:
        sys.exit("error: --connections and --requests must be >= 1")
    run, seconds = asyncio.run(main_async(args, examples))
    lat = sorted(x * 1000 for x in run.latencies)
    result = {
        "protocol": args.protocol, "connections": args.connections, "requests": len(lat),
        "errors": run.errors, "seconds": round(seconds, 3), "throughput": round(len(lat) / seconds, 2),
        "p50_ms": round(percentile(lat, 50), 2), "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2),
    }
    if run.rss:
        result["rss_kib"] = run.rss
    if args.answers:
        with open(args.answers, "w") as f:
            json.dump({str(k): v for k, v in sorted(run.answers.items())}, f)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.protocol} x{args.connections}: {result['requests']} requests, errors {run.errors or 'none'}, "
              f"{seconds:.2f} s, {result['throughput']} req/s, p50 {result['p50_ms']} ms, "
              f"p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms")
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A served model's first answer: launch a server, send one streamed chat completion the moment its port accepts
a connection, and time launch -> the first chunk that carries answer text. Servers are alternated run by run, so the
machine's spells fall on all of them alike.

  python3 bench/start/first-answer.py --rounds 6 \\
      'enclave=./enclave serve --model FILE --port {port}' \\
      'llama-server=../shared/anchors/llama.cpp/bin/llama-server -m FILE --port {port} -np 8 -c 16384 -t 2'

Each command gets a free port as {port}; it is stopped (SIGTERM) after the answer. A server that answers 503 while
its model loads (llama-server) is asked again until it answers. Prints each run and the medians (JSON with --json).
"""
import argparse, json, os, signal, socket, statistics, subprocess, sys, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def first_answer(command, timeout):
    port = free_port()
    body = json.dumps({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "stream": True}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (port, len(body))) + body
    t0 = time.perf_counter()
    proc = subprocess.Popen(command.replace("{port}", str(port)), shell=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the server exited (%d) before its port opened" % proc.returncode)
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError("no port within %d s" % timeout)
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                time.sleep(0.005)
        opened = time.perf_counter() - t0
        conn.sendall(request)
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data and buf.startswith(b"HTTP/1.1 503"):
                # a server that opens its port before its model is loaded (llama-server): ask again
                conn.close()
                time.sleep(0.005)
                conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                conn.sendall(request)
                buf = b""
                continue
            if not data:
                raise RuntimeError("the stream ended without answer text: %r" % buf[-300:])
            buf += data
            for line in buf.split(b"\n"):
                line = line.strip()
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                try:
                    chunk = json.loads(line[6:])
                except ValueError:
                    continue  # a line still arriving
                for choice in chunk.get("choices", []):
                    if (choice.get("delta") or {}).get("content"):
                        conn.close()
                        return time.perf_counter() - t0, opened
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("servers", nargs="+", help="NAME=COMMAND with {port}")
    a = ap.parse_args()
    servers = [s.split("=", 1) for s in a.servers]
    if any(len(s) != 2 or "{port}" not in s[1] for s in servers):
        sys.exit("first-answer.py: each server is NAME=COMMAND, the command with {port}")
    runs = {name: [] for name, _ in servers}
    for r in range(a.rounds):
        for name, command in servers:
            answer, opened = first_answer(command, a.timeout)
            runs[name].append((answer, opened))
            if not a.json:
                print("round %d %-14s first answer %.3f s (port %.3f s)" % (r + 1, name, answer, opened), flush=True)
    result = {name: {"first_answer_s": [round(x[0], 3) for x in v], "median_s": round(statistics.median(x[0] for x in v), 3),
                     "port_median_s": round(statistics.median(x[1] for x in v), 3)} for name, v in runs.items()}
    if a.json:
        print(json.dumps(result))
    else:
        for name, v in result.items():
            print("%-14s median %.3f s (port open %.3f s)" % (name, v["median_s"], v["port_median_s"]))

if __name__ == "__main__":
    main()

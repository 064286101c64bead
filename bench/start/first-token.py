#!/usr/bin/env python3
"""Launch to first token of a command-line run: start each command, time it to the first byte of standard output
after the first --skip bytes (the prompt's echo), alternate the commands run by run, print medians.

  python3 bench/start/first-token.py --rounds 13 --skip 5 \\
      'enclave=./enclave generate --model FILE --prompt Hello -n 1'

The rest of each run's output is read and discarded; standard error is ignored.
"""
import argparse, json, shlex, statistics, subprocess, sys, time

def first_token(command, skip):
    t0 = time.perf_counter()
    proc = subprocess.Popen(shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    got = 0
    while got <= skip:
        if not proc.stdout.read(1):
            proc.wait()
            raise RuntimeError("%s: no token on standard output (exit %d)" % (command, proc.returncode))
        got += 1
    t = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait()
    return t

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=13)
    ap.add_argument("--skip", type=int, default=5, help="bytes of standard output before the first token (default 5: Hello)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("commands", nargs="+", help="NAME=COMMAND")
    a = ap.parse_args()
    commands = [c.split("=", 1) for c in a.commands]
    if any(len(c) != 2 for c in commands):
        sys.exit("first-token.py: each command is NAME=COMMAND")
    runs = {name: [] for name, _ in commands}
    for r in range(a.rounds):
        for name, command in commands:
            runs[name].append(first_token(command, a.skip))
    result = {name: {"first_token_s": [round(t, 3) for t in v], "median_s": round(statistics.median(v), 3)} for name, v in runs.items()}
    if a.json:
        print(json.dumps(result))
    else:
        for name, v in result.items():
            print("%-12s %s  median %.3f s" % (name, " ".join("%.3f" % t for t in v["first_token_s"]), v["median_s"]))

if __name__ == "__main__":
    main()

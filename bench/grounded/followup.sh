#!/usr/bin/env bash
# Grounded-chat follow-up TTFT, two builds alternated on the same model and documents:
#   bench/grounded/followup.sh MODEL.gguf JAR_A JAR_B [ROUNDS] [TOKENS]
# Each round starts a fresh server from each jar (quarkus-run.jar), uploads the TinyStories validation stories from
# ../shared as 40 documents into one collection, runs `./enclave loadtest --workload grounded` (2 clients, 4 turns
# each, TOKENS per answer, default 64) and prints its JSON. The load generator is JAR_B's own `loadtest` (JAR_A may be a
# build from before the grounded workload existed).
set -euo pipefail
model=$1; jar_a=$2; jar_b=$3; rounds=${4:-2}; tokens=${5:-64}
root="$(cd "$(dirname "$0")/../.." && pwd)"
java="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
docs=$(mktemp -d)
awk -v dir="$docs" 'BEGIN{n=0} /^$/{next} {f=sprintf("%s/story-%02d.txt", dir, int(n/12)); print >> f; n++}' \
  "$root/../shared/datasets/text/tinystories-valid-801-900.txt"
port=18600
for r in $(seq 1 "$rounds"); do
  for jar in "$jar_a" "$jar_b"; do
    data=$(mktemp -d)
    "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmn32m \
      -jar "$jar" serve --model "$model" --port "$port" --data-dir "$data" > "$data/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/q/health/ready" >/dev/null 2>&1 && break; sleep 0.5; done
    curl -sf -XPOST "http://127.0.0.1:$port/rag/collections" -H 'Content-Type: application/json' -d '{"name":"stories"}' >/dev/null
    args=(); for f in "$docs"/*.txt; do args+=(-F "file=@$f"); done
    curl -sf "http://127.0.0.1:$port/rag/collections/stories/documents" "${args[@]}" >/dev/null
    echo -n "$jar round $r: "
    "$java" -jar "$jar_b" loadtest --url "http://127.0.0.1:$port" --workload grounded --collection stories --clients 2 \
      --max-tokens "$tokens" --json
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
rm -rf "$docs"

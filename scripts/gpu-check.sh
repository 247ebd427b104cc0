#!/usr/bin/env bash
# Real-GPU checks for fleet, the two things only a GPU shows:
#   A. `smi`:   the exact nvidia-smi commands the agent runs (agent/src/gpu/collector.ts), captured raw in
#               the banner format of test/fixtures/nvidia-smi (so test/helpers/fake-nvidia-smi can answer
#               from it), one poll timed, and the agent's own GpuCollector run over the real nvidia-smi.
#   B. `infer`: the inference server (dist/inference/src/server.js) on node-llama-cpp's prebuilt CUDA
#               binary (@node-llama-cpp/linux-x64-cuda, CUDA 13), the tiny GGUF, /health, streamed
#               /v1/chat/completions and TeleChat /telechat/gptDialog/v2, TTFT and tokens/s, and a
#               getLlama({gpu: 'cuda'}) probe that says whether llama.cpp really runs on CUDA.
# docs/gpu-check.md has what was measured on an H200 with it.
#
# How it is sent. The device machine (reached only through the session tool `run`) gets the git working
# tree plus at most 8 `carry` paths, 64 MiB per call in all; it has no Node and no network. The CUDA
# binary alone is ~110 MiB compressed, so `pack` (run HERE) cuts everything into parts of at most
# GPU_CHECK_PART_MIB (58) MiB under .devgpu/ (ignored through .git/info/exclude), and the parts go in
# consecutive calls to the same warm machine (it stays warm only ~30 s after a call, so each call is made
# as soon as the last one returns):
#   here:    bash scripts/gpu-check.sh pack                 # → .devgpu/p1 .devgpu/p2 … (prints the plan)
#   call 1:  run carry=[".devgpu/p1"]  "bash scripts/gpu-check.sh receive 1 && bash scripts/gpu-check.sh smi"
#   call k:  run carry=[".devgpu/pk"]  "bash scripts/gpu-check.sh receive k"
#   last:    run carry=[".devgpu/pN"]  "bash scripts/gpu-check.sh receive N && bash scripts/gpu-check.sh infer"
# `receive` copies its part to /tmp/gpuchk/in (outside the checkout) and checks it against the part's
# SHA256SUMS; `infer` checks that every part of the CUDA tarball is there (a replaced machine has lost
# them: it then says so and stops, and A's results stand). Results go to $OUT (at most 8 files come
# back): h200-capture.txt, agent-collect.json, poll-timing.txt, infer-results.json, server.log,
# chat-stream.txt, telechat-stream.txt, steps.log. After fetching, `mask FILE…` (here) replaces the GPU
# UUID and serial with zeros, as the other captures are.
#
# Local dry run (no GPU here): GPU_CHECK_LOCAL=1 OUT=/tmp/out bash scripts/gpu-check.sh receive 1 … smi
# uses the fake nvidia-smi over the H100 capture, and `infer` falls back to node-llama-cpp's CPU binary;
# everything but CUDA itself is exercised.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${GPU_CHECK_DIR:-/tmp/gpuchk}
IN=$W/in
APP=$W/app
NODE=$W/bin/node
OUT=${OUT:-$W/out}
PART_MIB=${GPU_CHECK_PART_MIB:-58}
NODE_SRC=${GPU_CHECK_NODE:-/var/cache/fleet/node-20.19.5-linux-x64}
MODEL_SRC=${GPU_CHECK_MODEL:-/var/lib/fleet/models/tiny.gguf}
PORT=${GPU_CHECK_PORT:-8071}

# What the agent asks (agent/src/gpu/parse.ts GPU_QUERY_FIELDS, collector.ts COMPUTE_APPS_ARGS) and what
# the inference server's /health asks (inference/src/gpus.ts FIELDS). Checked against the sources by
# `pack` so they cannot drift silently.
FLEET_FIELDS=index,uuid,name,pci.bus_id,driver_version,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,compute_cap,mig.mode.current,ecc.errors.uncorrected.volatile.total,retired_pages.pending,remapped_rows.pending,clocks_event_reasons.active,pstate,fan.speed
APPS_FIELDS=gpu_uuid,pid,process_name,used_memory
INFER_FIELDS=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu

log() { printf '[gpu-check %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/steps.log" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# ----------------------------------------------------------------------------------------------- here
pack() {
  local D=$ROOT/.devgpu B=$ROOT/.devgpu/build
  mkdir -p "$B"
  grep -q '^/.devgpu/' "$ROOT/.git/info/exclude" 2>/dev/null || die ".devgpu/ is not in .git/info/exclude"
  # The field lists above must be the sources' own.
  local f
  f=$(sed -n "/^export const GPU_QUERY_FIELDS = \[/,/\]/p" "$ROOT/agent/src/gpu/parse.ts" | grep -o "'[^']*'" | tr -d "'" | paste -sd,)
  [ "$f" = "$FLEET_FIELDS" ] || die "FLEET_FIELDS differs from GPU_QUERY_FIELDS: $f"
  grep -q "query-compute-apps=$APPS_FIELDS'" "$ROOT/agent/src/gpu/collector.ts" || die "APPS_FIELDS drifted"
  grep -q "FIELDS = '$INFER_FIELDS'" "$ROOT/inference/src/gpus.ts" || die "INFER_FIELDS drifted"

  log "compiling (tsc → $B/dist)"
  (cd "$ROOT" && npx tsc -p tsconfig.json --outDir "$B/dist") >"$B/tsc.log" 2>&1 || log "tsc reported errors (see $B/tsc.log); using what it emitted"
  for f in inference/src/server.js inference/src/main.js agent/src/gpu/collector.js; do
    [ -f "$B/dist/$f" ] || die "tsc did not emit dist/$f"
  done

  log "app.tar.xz: dist/inference + dist/agent/src/gpu + package.json"
  rm -rf "$B/app" && mkdir -p "$B/app/dist/agent/src"
  cp -r "$B/dist/inference" "$B/app/dist/"
  cp -r "$B/dist/agent/src/gpu" "$B/app/dist/agent/src/"
  printf '{ "name": "fleet-gpu-check", "private": true, "type": "module" }\n' >"$B/app/package.json"
  tar -C "$B" -cf - app | xz -9 -T0 >"$B/app.tar.xz"

  if [ ! -f "$B/nm.tar.xz" ] || [ "$ROOT/package-lock.json" -nt "$B/nm.tar.xz" ]; then
    log "nm.tar.xz: node_modules without the dev tools and other platforms' binaries (CPU linux-x64 kept)"
    tar -C "$ROOT/node_modules" -cf - \
      --exclude='./@node-llama-cpp/linux-x64-cuda' --exclude='./@node-llama-cpp/linux-x64-cuda-ext' \
      --exclude='./@node-llama-cpp/linux-x64-vulkan' --exclude='./@node-llama-cpp/linux-arm*' \
      --exclude=./typescript --exclude=./@biomejs --exclude=./@bufbuild --exclude=./dprint-node \
      --exclude=./openai --exclude=./better-sqlite3 --exclude=./@types --exclude=./fast-check \
      --exclude=./ts-proto --exclude='./node-llama-cpp/llama/gitRelease.bundle' . |
      xz -9 -T0 >"$B/nm.tar.xz"
  fi
  if [ ! -f "$B/cuda.tar.xz" ]; then
    log "cuda.tar.xz: @node-llama-cpp/linux-x64-cuda (xz -9e, minutes)"
    tar -C "$ROOT/node_modules" -cf - @node-llama-cpp/linux-x64-cuda | xz -9e -T0 >"$B/cuda.tar.xz.tmp" &&
      mv "$B/cuda.tar.xz.tmp" "$B/cuda.tar.xz"
  fi
  if [ ! -f "$B/node.xz" ]; then
    log "node.xz: $NODE_SRC"
    xz -9 -T0 -c "$NODE_SRC" >"$B/node.xz"
  fi
  if [ -f "$MODEL_SRC" ]; then
    cp "$MODEL_SRC" "$B/tiny.gguf"
  else
    node "$ROOT/dist/test/helpers/tiny-gguf.js" "$B/tiny.gguf"
  fi

  # Part 1: everything A needs plus the rest of B's small files, then as much of the CUDA tarball as
  # fits; later parts: the CUDA tarball only.
  rm -rf "$D"/p[0-9]* && mkdir -p "$D/p1"
  cp "$B/node.xz" "$B/app.tar.xz" "$B/nm.tar.xz" "$B/tiny.gguf" "$D/p1/"
  local limit=$((PART_MIB * 1024 * 1024)) used first
  used=$(du -cb "$D/p1"/* | tail -1 | cut -f1)
  local chunk=$((limit - 65536)) # room for SHA256SUMS, PARTS and the folder itself
  first=$((chunk - used))
  [ "$first" -gt 0 ] || die "part 1 is full before the CUDA tarball ($used bytes)"
  rm -f "$B"/cuda.part.*
  head -c "$first" "$B/cuda.tar.xz" >"$B/cuda.part.00"
  tail -c +"$((first + 1))" "$B/cuda.tar.xz" | split -b "$chunk" -d -a 2 --numeric-suffixes=1 - "$B/cuda.part."
  local n=1 p
  mv "$B/cuda.part.00" "$D/p1/"
  for p in "$B"/cuda.part.*; do
    n=$((n + 1))
    mkdir -p "$D/p$n" && mv "$p" "$D/p$n/"
  done
  (cd "$B" && sha256sum cuda.tar.xz) >"$D/p$n/CUDA.SHA256"
  echo "$n" >"$D/p$n/PARTS"
  for p in "$D"/p*; do (cd "$p" && sha256sum -- * >SHA256SUMS); done
  log "parts ($n):"
  du -sh "$D"/p* >&2
  du -b "$D"/p* | awk -v l="$limit" '$1 > l { print "too big: " $2; bad = 1 } END { exit bad }' || die "a part is over ${PART_MIB} MiB"
}

# ------------------------------------------------------------------------------------- device: receive
receive() {
  local n=$1 src=$ROOT/.devgpu/p$1
  mkdir -p "$IN" "$OUT"
  log "receive part $n; already in $IN: $(cd "$IN" && ls | paste -sd' ')"
  [ -d "$src" ] || die "no $src in the checkout"
  cp "$src"/* "$IN/" || die "copy"
  (cd "$IN" && cp SHA256SUMS "SHA256SUMS.p$n" && sha256sum -c --quiet "SHA256SUMS.p$n") || die "part $n is corrupt"
  log "part $n ok ($(du -sh "$src" | cut -f1))"
}

unpack_node() {
  [ -x "$NODE" ] && return 0
  [ -f "$IN/node.xz" ] || die "no node.xz in $IN (part 1 not received on this machine)"
  mkdir -p "$W/bin" && xz -dc "$IN/node.xz" >"$NODE" && chmod +x "$NODE" || die "node unpack"
  "$NODE" --version >/dev/null || die "node does not run here"
}

unpack_app() {
  [ -f "$APP/package.json" ] && return 0
  [ -f "$IN/app.tar.xz" ] || die "no app.tar.xz in $IN"
  tar -C "$W" -xJf "$IN/app.tar.xz" || die "app unpack"
}

# The nvidia-smi to use: the real one, or in a local dry run the fake over a capture.
smi_setup() {
  if [ -n "${GPU_CHECK_LOCAL:-}" ]; then
    export FAKE_NVIDIA_SMI_CAPTURE=${FAKE_NVIDIA_SMI_CAPTURE:-$ROOT/test/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt}
    export PATH=$ROOT/test/helpers/fake-nvidia-smi:$(dirname "$NODE"):$PATH
  fi
  command -v nvidia-smi >/dev/null || die "no nvidia-smi on PATH"
}

BAR=$(printf '#%.0s' $(seq 80))
# cap FILE "phase :: key" "description" ARGS… : one section in the fixtures' banner format.
cap() {
  local file=$1 key=$2 desc=$3 t0 t1 rc body
  shift 3
  t0=$(date +%s%N)
  body=$(timeout 60 nvidia-smi "$@" 2>&1)
  rc=$?
  t1=$(date +%s%N)
  {
    printf '%s\n# %s (%s)\n# $ nvidia-smi %s\n# exit: %s, %s ms\n%s\n' "$BAR" "$key" "$desc" "$*" "$rc" $(((t1 - t0) / 1000000)) "$BAR"
    printf '%s\n\n\n' "$body"
  } >>"$file"
}

capture_phase() {
  local file=$1 phase=$2
  cap "$file" "$phase :: nvidia-smi" "default table" 
  cap "$file" "$phase :: query-gpu" "fleet's fields, csv with header and units" --query-gpu=$FLEET_FIELDS --format=csv
  cap "$file" "$phase :: fleet-query-gpu" "the agent's exact poll command" --query-gpu=$FLEET_FIELDS --format=csv,noheader,nounits
  cap "$file" "$phase :: query-compute-apps" "fleet's fields, csv with header and units" --query-compute-apps=$APPS_FIELDS --format=csv
  cap "$file" "$phase :: fleet-query-compute-apps" "the agent's exact poll command" --query-compute-apps=$APPS_FIELDS --format=csv,noheader,nounits
  cap "$file" "$phase :: inference-query-gpu" "the inference server's /health probe" --query-gpu=$INFER_FIELDS --format=csv,noheader,nounits
  cap "$file" "$phase :: query" "-q" -q
}

# A node script that drives the agent's own GpuCollector (ExecFileRunner, the real nvidia-smi) and
# times each collect and each command in it.
write_collect_js() {
  cat >"$W/collect.mjs" <<'EOF'
import { performance } from 'node:perf_hooks';
const { ExecFileRunner, GpuCollector } = await import(process.argv[2]);
const phase = process.argv[3] ?? 'idle';
const polls = Number(process.argv[4] ?? 10);
const inner = new ExecFileRunner();
let cmds = [];
const runner = {
  async run(cmd, args, timeoutMs) {
    const t = performance.now();
    const r = await inner.run(cmd, args, timeoutMs);
    cmds.push({ args: args.map((a) => (a.length > 40 ? `${a.slice(0, 37)}...` : a)).join(' '), code: r.code, ms: +(performance.now() - t).toFixed(1) });
    return r;
  },
};
const c = new GpuCollector({ runner, timeoutMs: 5000 });
const runs = [];
let first;
for (let i = 0; i <= polls; i++) {
  cmds = [];
  const t = performance.now();
  const s = await c.collect();
  runs.push({ ms: +(performance.now() - t).toFixed(1), status: s.status, commands: cmds });
  if (i === 0) first = s;
}
const steady = runs.slice(1).map((r) => r.ms).sort((a, b) => a - b);
const q = (p) => steady[Math.min(steady.length - 1, Math.floor(p * steady.length))];
console.log(JSON.stringify({
  phase, node: process.version, queryFields: c.queryFields, state: first,
  pollMs: { first: runs[0].ms, steadyMin: steady[0], steadyMedian: q(0.5), steadyMax: steady.at(-1), n: steady.length },
  runs,
}, null, 2));
EOF
}

# ----------------------------------------------------------------------------------------- device: A
smi() {
  mkdir -p "$OUT"
  unpack_node
  unpack_app
  smi_setup
  local CAP=$OUT/h200-capture.txt
  log "A: captures → $CAP"
  {
    echo "$BAR"
    echo "# fleet scripts/gpu-check.sh nvidia-smi capture"
    echo "$BAR"
    echo "# Same banner format as the nvidia_gpu_exporter captures beside it; sections are fleet's own"
    echo "# commands (agent/src/gpu, inference/src/gpus.ts). 'load' = the inference server running on the GPU."
    echo "collected_at:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "masked:         no"
    echo "os:             linux ($(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"))"
    echo "kernel:         $(uname -r)"
    echo "arch:           $(uname -m)"
    echo "cpus:           $(nproc)"
    echo "load:           idle sections here; infer appends load sections while the inference server generates on the GPU"
    echo
    echo
  } >"$CAP"
  cap "$CAP" "capabilities :: version" "--version" --version
  cap "$CAP" "capabilities :: list" "-L" -L
  cap "$CAP" "capabilities :: help-query-gpu" "--help-query-gpu" --help-query-gpu
  cap "$CAP" "capabilities :: help-query-compute-apps" "--help-query-compute-apps" --help-query-compute-apps
  capture_phase "$CAP" idle

  log "A: one poll timed (bash, 10 reps): steady = query-gpu + compute-apps; first = + --version + -L"
  local T=$OUT/poll-timing.txt i a b c d e
  echo "# ms per nvidia-smi command, as the agent runs them (steady poll: query-gpu, compute-apps; first poll adds --version, -L)" >"$T"
  echo "rep query_gpu compute_apps version list steady_total first_total" >>"$T"
  for i in $(seq 1 10); do
    a=$(ms_now)
    nvidia-smi --query-gpu=$FLEET_FIELDS --format=csv,noheader,nounits >/dev/null 2>&1
    b=$(ms_now)
    nvidia-smi --query-compute-apps=$APPS_FIELDS --format=csv,noheader,nounits >/dev/null 2>&1
    c=$(ms_now)
    nvidia-smi --version >/dev/null 2>&1
    d=$(ms_now)
    nvidia-smi -L >/dev/null 2>&1
    e=$(ms_now)
    echo "$i $((b - a)) $((c - b)) $((d - c)) $((e - d)) $((c - a)) $((e - a))" >>"$T"
  done
  awk 'NR>2 { n++; s+=$6; f+=$7; if (min==""||$6<min) min=$6; if ($6>max) max=$6 } END { printf "# steady poll: mean %.1f ms, min %d, max %d; first poll mean %.1f ms (n=%d)\n", s/n, min, max, f/n, n }' "$T" >>"$T"
  cat "$T" >&2

  log "A: the agent's GpuCollector on the real nvidia-smi (node $("$NODE" --version))"
  write_collect_js
  "$NODE" "$W/collect.mjs" "$APP/dist/agent/src/gpu/collector.js" idle 10 >"$W/collect-idle.json" 2>>"$OUT/steps.log" ||
    log "collector run failed"
  cp "$W/collect-idle.json" "$OUT/agent-collect.json"
  "$NODE" -e 'const s=require(process.argv[1]); console.error(JSON.stringify({status:s.state.status,gpus:s.state.gpus.map(g=>[g.name,g.memoryTotalMiB,g.driverVersion,g.migMode]),cuda:s.state.cudaVersion,pollMs:s.pollMs}))' "$W/collect-idle.json"
  log "A done"
}

# ----------------------------------------------------------------------------------------- device: B
# Directories holding the CUDA 13 runtime libraries (pip's nvidia-* wheels or a toolkit) and the driver's
# libcuda/libnvidia-ml, for LD_LIBRARY_PATH; never a stubs/ folder (its libcuda.so would shadow the driver).
cuda_lib_dirs() {
  local dirs=() sp f
  for sp in $(python3 -c 'import site,sys; print(" ".join(site.getsitepackages()+[p for p in sys.path if p.endswith("-packages")]))' 2>/dev/null); do
    [ -d "$sp/nvidia" ] || continue
    while IFS= read -r f; do dirs+=("$(dirname "$f")"); done < <(find "$sp/nvidia" -name 'libcudart.so.13*' -o -name 'libcublas.so.13*' -o -name 'libcublasLt.so.13*' 2>/dev/null)
  done
  if [ ${#dirs[@]} -eq 0 ]; then
    while IFS= read -r f; do dirs+=("$(dirname "$f")"); done < <(find /usr/local /opt /usr/lib -name 'libcudart.so.13*' -not -path '*/stubs/*' 2>/dev/null; find /usr/local /opt /usr/lib -name 'libcublas.so.13*' -not -path '*/stubs/*' 2>/dev/null)
  fi
  while IFS= read -r f; do dirs+=("$(dirname "$f")"); done < <(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 |libnvidia-ml\.so\.1 / { print $NF }')
  for f in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -e "$f/libcuda.so.1" ] && dirs+=("$f"); done
  printf '%s\n' "${dirs[@]}" | grep -v /stubs | awk '!seen[$0]++' | paste -sd:
}

write_probe_js() {
  cat >"$APP/probe.mjs" <<'EOF'
// getLlama with a given gpu setting (cuda | false), then the tiny model with every layer offloaded,
// and a timed completion: what llama.cpp really ran on, VRAM before/after, TTFT and tokens/s.
import { performance } from 'node:perf_hooks';
import { getLlama, getLlamaGpuTypes, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp';
const [gpuArg, modelPath, maxTokensArg] = process.argv.slice(2);
const gpu = gpuArg === 'false' ? false : gpuArg;
const out = { asked: gpuArg };
const logs = [];
try {
  out.supportedGpuTypes = await getLlamaGpuTypes('supported');
  let t = performance.now();
  const llama = await getLlama({ gpu, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
    logLevel: LlamaLogLevel.info, logger: (level, m) => { const s = m.trim(); if (s && /cuda|gpu|vram|offload|device|CUDA|buffer|compute/i.test(s)) logs.push(`${level}: ${s}`); } });
  out.getLlamaMs = +(performance.now() - t).toFixed(0);
  out.gpu = llama.gpu;
  out.buildType = llama.buildType;
  out.llamaCppRelease = llama.llamaCppRelease;
  out.supportsGpuOffloading = llama.supportsGpuOffloading;
  out.gpuDeviceNames = await llama.getGpuDeviceNames();
  out.vramBefore = await llama.getVramState();
  t = performance.now();
  const model = await llama.loadModel({ modelPath, gpuLayers: gpu ? 'max' : 0 });
  out.loadModelMs = +(performance.now() - t).toFixed(0);
  out.gpuLayers = model.gpuLayers;
  const ctx = await model.createContext({ contextSize: 512, threads: 1 });
  out.threads = 1;
  out.vramLoaded = await llama.getVramState();
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const seq = ctx.getSequence();
    const comp = new LlamaCompletion({ contextSequence: seq });
    let first = null, n = 0;
    const t0 = performance.now();
    await comp.generateCompletion('The quick brown fox jumps over the lazy dog. Once upon a time', {
      maxTokens: Number(maxTokensArg ?? 400), temperature: 0,
      onToken: (toks) => { if (first === null) first = performance.now(); n += toks.length; },
    });
    const t1 = performance.now();
    runs.push({ tokens: n, ttftMs: +((first ?? t1) - t0).toFixed(2), totalMs: +(t1 - t0).toFixed(1),
      decodeTokPerS: n > 1 && first ? +((n - 1) / ((t1 - first) / 1000)).toFixed(0) : null });
    comp.dispose(); seq.dispose();
  }
  out.runs = runs;
  out.systemInfo = llama.systemInfo;
  await ctx.dispose(); await model.dispose();
} catch (err) {
  out.error = String(err?.stack ?? err);
  // getLlama says only NoBinaryFoundError: load the CUDA addon by hand for the dynamic linker's own words.
  if (gpu === 'cuda') {
    try {
      const bins = new URL('./node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/', import.meta.url).pathname;
      const m = { exports: {} };
      process.dlopen(m, `${bins}llama-addon.node`);
      out.dlopen = 'llama-addon.node loaded';
      try { await m.exports.loadBackends?.(); out.dlopenBackends = 'loadBackends ok'; } catch (e) { out.dlopenBackends = String(e); }
    } catch (e) { out.dlopen = String(e?.message ?? e); }
  }
}
out.llamaLog = logs.slice(0, 60);
console.log(JSON.stringify(out));
process.exit(0);
EOF
}

write_bench_js() {
  cat >"$APP/bench.mjs" <<'EOF'
// Streamed requests against the running server: TTFT (first content byte after the request), total,
// completion tokens (usage) and tokens/s, per request.
import { performance } from 'node:perf_hooks';
const [base, nArg, maxArg] = process.argv.slice(2);
const results = [];
async function one(kind, i) {
  const chat = kind === 'chat';
  const url = chat ? `${base}/v1/chat/completions` : `${base}/telechat/gptDialog/v2`;
  const body = chat
    ? { model: 'tiny', stream: true, stream_options: { include_usage: true }, max_tokens: Number(maxArg), temperature: 0,
        messages: [{ role: 'user', content: `Tell me a story, number ${i}.` }] }
    : { seqid: `bench-${i}`, dialog: [{ role: 'user', content: `Tell me a story, number ${i}.` }], max_length: Number(maxArg) };
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  let first = null, text = '', usage = null, chunks = 0;
  const dec = new TextDecoder();
  let buf = '';
  for await (const part of res.body) {
    const s = dec.decode(part, { stream: true });
    if (!chat) { if (s && first === null) first = performance.now(); text += s; chunks++; continue; }
    buf += s;
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      const c = j.choices?.[0]?.delta?.content;
      if (c) { if (first === null) first = performance.now(); text += c; chunks++; }
    }
  }
  const t1 = performance.now();
  const tokens = usage?.completion_tokens ?? null;
  results.push({ kind, status: res.status, ttftMs: first ? +(first - t0).toFixed(1) : null, totalMs: +(t1 - t0).toFixed(1),
    completionTokens: tokens, chunks, chars: text.length,
    tokPerS: tokens && first ? +((tokens - 1) / ((t1 - first) / 1000)).toFixed(0) : null });
}
for (let i = 0; i < Number(nArg); i++) await one('chat', i);
for (let i = 0; i < 2; i++) await one('telechat', i);
const chat = results.filter((r) => r.kind === 'chat' && r.status === 200).slice(1); // first is warm-up
const med = (xs) => { const s = xs.filter((x) => x != null).sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
console.log(JSON.stringify({ results, chatMedian: { ttftMs: med(chat.map((r) => r.ttftMs)), tokPerS: med(chat.map((r) => r.tokPerS)), completionTokens: med(chat.map((r) => r.completionTokens)) } }));
EOF
}

infer() {
  mkdir -p "$OUT"
  local R=$W/infer-results.json
  unpack_node
  unpack_app
  smi_setup
  # All parts of the CUDA tarball, else this machine is not the one the earlier parts went to.
  local nparts sumfile
  sumfile=$(ls "$IN"/CUDA.SHA256 2>/dev/null) || die "no CUDA.SHA256 (last part not received)"
  nparts=$(cat "$IN/PARTS")
  local p missing=""
  for p in $(seq 0 $((nparts - 1))); do
    [ -f "$IN/cuda.part.$(printf %02d "$p")" ] || missing="$missing $p"
  done
  [ -z "$missing" ] || die "CUDA tarball parts missing:$missing (the machine was replaced between calls?)"
  cat "$IN"/cuda.part.* >"$W/cuda.tar.xz" && (cd "$W" && sha256sum -c --quiet "$sumfile") || die "CUDA tarball checksum"
  log "B: unpacking node_modules and the CUDA binary"
  if [ ! -d "$APP/node_modules/node-llama-cpp" ]; then
    mkdir -p "$APP/node_modules" && tar -C "$APP/node_modules" -xJf "$IN/nm.tar.xz" || die "node_modules unpack"
  fi
  tar -C "$APP/node_modules" -xJf "$W/cuda.tar.xz" || die "CUDA unpack"
  rm -f "$W/cuda.tar.xz"
  cp "$IN/tiny.gguf" "$W/tiny.gguf"

  local LIBS
  LIBS=$(cuda_lib_dirs)
  export LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  local BINS=$APP/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
  {
    echo "== ldd libggml-cuda.so"
    ldd "$BINS/libggml-cuda.so" 2>&1 | grep -E 'cuda|cublas|not found'
    echo "== cuobjdump --list-elf (SASS targets) / --list-ptx"
    if command -v cuobjdump >/dev/null; then
      cuobjdump --list-elf "$BINS/libggml-cuda.so" 2>&1 | grep -o 'sm_[0-9a-z]*' | sort | uniq -c
      cuobjdump --list-ptx "$BINS/libggml-cuda.so" 2>&1 | grep -o 'sm_[0-9a-z]*' | sort | uniq -c
    else echo "no cuobjdump"; fi
  } >"$W/ldd.txt" 2>&1
  {
    # A GPU with no SASS of its own in the fatbins (see above) runs the PTX, which the driver can only JIT
    # when its CUDA version is at least the toolkit's that built the binary.
    echo "== built with: $(strings -n 6 "$BINS/libggml-cuda.so" | grep -m1 -o 'Cuda compilation tools, release [0-9.]*')"
    echo "== driver: $(nvidia-smi --version 2>&1 | grep -i 'CUDA Version'); compute cap $(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>&1 | head -1)"
  } >>"$W/ldd.txt" 2>&1
  cat "$W/ldd.txt" >&2

  log "B: getLlama probes (cuda, then CPU for comparison)"
  write_probe_js
  (cd "$APP" && timeout 90 "$NODE" "$APP/probe.mjs" cuda "$W/tiny.gguf" 256) >"$W/probe-cuda.json" 2>"$W/probe-cuda.err" || log "cuda probe exited $?"
  (cd "$APP" && timeout 90 "$NODE" "$APP/probe.mjs" false "$W/tiny.gguf" 256) >"$W/probe-cpu.json" 2>"$W/probe-cpu.err" || log "cpu probe exited $?"
  head -c 1500 "$W/probe-cuda.json" >&2; echo >&2; tail -5 "$W/probe-cuda.err" >&2

  log "B: inference server (GPU_LAYERS=auto, PORT=$PORT)"
  local t0 pid health="" code=000
  t0=$(ms_now)
  (cd "$APP" && MODEL_PATH=$W/tiny.gguf HOST=127.0.0.1 PORT=$PORT PARALLEL=2 CONTEXT_SIZE=512 GPU_LAYERS=auto \
    NVIDIA_SMI=$(command -v nvidia-smi) LOG_LEVEL=info exec "$NODE" dist/inference/src/server.js) >"$OUT/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    code=$(curl -s -o "$W/health.json" -w '%{http_code}' "http://127.0.0.1:$PORT/health" 2>/dev/null)
    [ "$code" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  local readyMs=$(($(ms_now) - t0))
  log "health $code after ${readyMs} ms: $(head -c 600 "$W/health.json" 2>/dev/null)"
  if [ "$code" = 200 ]; then
    curl -sN --max-time 60 -D - "http://127.0.0.1:$PORT/v1/chat/completions" -H 'content-type: application/json' \
      -d '{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"max_tokens":48,"temperature":0,"messages":[{"role":"user","content":"Hello from the H200"}]}' \
      >"$OUT/chat-stream.txt" 2>&1
    echo "# curl exit $?" >>"$OUT/chat-stream.txt"
    curl -sN --max-time 60 -D - "http://127.0.0.1:$PORT/telechat/gptDialog/v2" -H 'content-type: application/json' \
      -d '{"seqid":"gpu-check-1","dialog":[{"role":"user","content":"Hello from the H200"}],"max_length":48}' \
      >"$OUT/telechat-stream.txt" 2>&1
    echo "# curl exit $?" >>"$OUT/telechat-stream.txt"
    write_bench_js
    timeout 150 "$NODE" "$APP/bench.mjs" "http://127.0.0.1:$PORT" 5 256 >"$W/bench.json" 2>"$W/bench.err" || log "bench failed: $(tail -3 "$W/bench.err")"
    # Load-phase captures and the agent's collector while the model sits on the GPU (only if it still does).
    if kill -0 "$pid" 2>/dev/null; then
      capture_phase "$OUT/h200-capture.txt" load
      write_collect_js
      "$NODE" "$W/collect.mjs" "$APP/dist/agent/src/gpu/collector.js" load 3 >"$W/collect-load.json" 2>>"$OUT/steps.log" || true
    else
      log "the server is gone (crashed during the requests): no load-phase capture"
    fi
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^inference_(tokens|prompt|time_to_first|model_load|requests_total)' >"$W/metrics.txt" 2>&1
    curl -s -o "$W/health2.json" "http://127.0.0.1:$PORT/health"
  fi
  kill -TERM "$pid" 2>/dev/null
  local stopped=no
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { stopped=yes; break; }; sleep 0.25; done
  [ $stopped = yes ] || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local exitCode=$?
  log "server stopped (SIGTERM honoured: $stopped, exit $exitCode)"

  # One JSON with everything B measured.
  RESULTS_OUT=$OUT/infer-results.json "$NODE" -e '
    const fs = require("fs"); const W = process.argv[1];
    const rd = (f, j = true) => { try { const s = fs.readFileSync(`${W}/${f}`, "utf8"); return j ? JSON.parse(s) : s; } catch (e) { return null; } };
    const r = { ldLibraryPath: process.env.LD_LIBRARY_PATH, ldd: rd("ldd.txt", false),
      probeCuda: rd("probe-cuda.json"), probeCudaStderr: (rd("probe-cuda.err", false) || "").slice(-2000),
      probeCpu: rd("probe-cpu.json"),
      server: { readyMs: +process.argv[2], healthCode: process.argv[3], health: rd("health.json"), healthAfter: rd("health2.json"),
        sigtermStopped: process.argv[4], exitCode: +process.argv[5] },
      bench: rd("bench.json"), benchStderr: rd("bench.err", false), metrics: rd("metrics.txt", false),
      agentCollectLoad: rd("collect-load.json") };
    fs.writeFileSync(process.env.RESULTS_OUT, JSON.stringify(r, null, 2));
  ' "$W" "$readyMs" "$code" "$stopped" "$exitCode" || log "results JSON failed"
  # The load-phase collector run goes into agent-collect.json beside the idle one.
  if [ -f "$W/collect-idle.json" ] && [ -s "$W/collect-load.json" ]; then
    "$NODE" -e 'const fs=require("fs"); const [a,b,o]=process.argv.slice(1); fs.writeFileSync(o, JSON.stringify({idle: JSON.parse(fs.readFileSync(a)), load: JSON.parse(fs.readFileSync(b))}, null, 2))' \
      "$W/collect-idle.json" "$W/collect-load.json" "$OUT/agent-collect.json"
  fi
  log "B done: backend=$("$NODE" -e 'try{const h=require(process.argv[1]);console.log(h.model.backend)}catch{console.log("?")}' "$W/health.json")"
}

# ------------------------------------------------------------------------------------------- here: mask
# Replaces the GPU's UUID(s), serial number and PDI with zeros in fetched files, as the exporter's captures are.
mask() {
  local f uuids
  uuids=$(grep -ohE 'GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$@" | sort -u | grep -v '^GPU-00000000-0000-0000-0000-000000000000$')
  for f in "$@"; do
    for u in $uuids; do sed -i "s/$u/GPU-00000000-0000-0000-0000-000000000000/g" "$f"; done
    sed -i -E 's/^(    Serial Number +: )[0-9A-Za-z]+$/\10000000000000/; s/^(    GPU PDI +: )0x[0-9a-fA-F]+$/\10x0000000000000000/' "$f"
    sed -i -E 's/^(masked: +)no$/\1yes (GPU UUID, serial number and PDI zeroed)/' "$f"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
pack) pack ;;
receive) receive "$@" ;;
smi) smi ;;
infer) infer ;;
mask) mask "$@" ;;
*)
  echo "usage: $0 pack | receive N | smi | infer | mask FILE..." >&2
  exit 2
  ;;
esac

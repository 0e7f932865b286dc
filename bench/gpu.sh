#!/usr/bin/env bash
# The GPU benchmarks in one command, on a CUDA machine that has PyTorch but maybe no network.
#
#   bench/gpu.sh wheels [DIR]  Here, with keyart's .venv (make setup) and a package index: download
#                              into DIR (default .whl) the wheels the benchmarks import beyond a CUDA
#                              PyTorch image (diffusers, transformers, peft, torchao, pydantic, ...),
#                              at the versions the tests ran with, for the GPU machine's Python.
#   bench/gpu.sh check [OUT]   There: install DIR's wheels as run does, then the engine's GPU checks
#                              (pytest -m gpu tests/test_gpu.py: compiled fast against standard, LoRA
#                              changes without a recompile, fp8, memory modes, no syncs in the loop);
#                              with OUT, their log is copied there.
#   bench/gpu.sh run [OUT]     There, in a copy of this checkout (DIR beside it): install DIR's
#                              wheels, if any, into a folder ahead of the machine's own packages;
#                              run bench/engine.py --full --save, then bench/dataprep.py --full
#                              --save; each under a time limit, every line kept as it is printed.
#                              The results are bench/results-<gpu>.md, the file to commit; with
#                              OUT, it and both logs are copied there too.
#
# Environment (defaults in brackets):
#   PYTHON [python3]                the GPU machine's Python, the one with CUDA PyTorch
#   WHEELS [.whl]                   the wheel folder, for every verb
#   PY_VERSION [3.12]               wheels: the GPU machine's Python version
#   ENGINE_ARGS [--full --save]     run: bench/engine.py's arguments
#   DATAPREP_ARGS [--rounds 1 --full --limit 4 --save]
#                                   run: bench/dataprep.py's (4 items: 20 images at draft quality)
#   ENGINE_LIMIT [420] DATAPREP_LIMIT [120] CHECK_LIMIT [240]
#                                   run, check: seconds each may take before it is stopped (SIGINT)
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
# What bench/engine.py and bench/dataprep.py import that a CUDA PyTorch image may lack or hold at
# other versions (read off both benchmarks' imports); torch, numpy, pillow, scipy, safetensors,
# accelerate, tokenizers and huggingface_hub are the image's.
PACKAGES="diffusers transformers peft torchao langchain-core pydantic pydantic-core annotated-types typing-inspection typing-extensions"

usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
}

wheels() {
    local dir=${1:-$WHEELS} venv=.venv/bin/python
    [ -x "$venv" ] || { echo "bench/gpu.sh wheels: no .venv here; run make setup first" >&2; exit 2; }
    # Each package at its version in .venv; torchao (the gpu extra, not installed by make setup) at its pin.
    local pins
    pins=$("$venv" - $PACKAGES <<'EOF'
import importlib.metadata as md
import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]
pinned = dict(req.split("==", 1) for reqs in extras.values() for req in reqs if "==" in req)
for name in sys.argv[1:]:
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        if name not in pinned:
            sys.exit(f"bench/gpu.sh wheels: {name} is neither in .venv nor pinned in pyproject.toml")
        print(f"{name}=={pinned[name]}")
EOF
) || exit 2
    mkdir -p "$dir"
    local platforms=()
    for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
        platforms+=(--platform "$tag")
    done
    # shellcheck disable=SC2086
    "$venv" -m pip download -q --no-deps --only-binary=:all: --python-version "${PY_VERSION:-3.12}" --implementation cp "${platforms[@]}" -d "$dir" $pins || exit 1
    echo "bench/gpu.sh wheels: $(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1), in $dir:"
    echo "$pins" | tr '\n' ' '
    echo
}

close_block() {
    # A benchmark stopped at its limit leaves its block open: close it, saying so.
    local file
    for file in bench/results-*.md; do
        [ -f "$file" ] || continue
        if [ $(( $(grep -c '^```' "$file") % 2 )) -eq 1 ]; then
            printf '(stopped here: %s)\n```\n' "$1" >>"$file"
        fi
    done
}

step() {
    # step NAME LIMIT ARGS...: one benchmark under its time limit, its output also in logs/NAME.log.
    local name=$1 limit=$2
    shift 2
    echo "== bench/$name.py $* (limit ${limit} s)"
    timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" "bench/$name.py" "$@" 2>&1 | tee "$logs/$name.log"
    local code=${PIPESTATUS[0]}
    case $code in
        0) ;;
        124 | 130 | 137) echo "== bench/$name.py stopped at its limit of ${limit} s"; close_block "the ${limit} s limit" ;;
        *) echo "== bench/$name.py failed (exit $code)"; close_block "exit $code" ;;
    esac
    status=$(( status || code ))
}

install() {
    # DIR's wheels, if any, into a folder ahead of the machine's own packages.
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        local site
        site=$(mktemp -d -t keyart-site-XXXX)
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$WHEELS"/*.whl || exit 1
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
        echo "== $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS installed ahead of $PYTHON's own packages"
    fi
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
}

check() {
    local out=${1:-} limit=${CHECK_LIMIT:-240} logs code
    install
    logs=$(mktemp -d -t keyart-check-XXXX)
    echo "== pytest -m gpu tests/test_gpu.py (limit ${limit} s)"
    timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider 2>&1 | tee "$logs/check.log"
    code=${PIPESTATUS[0]}
    if [ -n "$out" ]; then
        mkdir -p "$out"
        cp "$logs/check.log" "$out"/
    fi
    exit "$code"
}

run() {
    local out=${1:-}
    install
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    # Every import the benchmarks make, before either starts: a missing package fails here, in one line.
    "$PYTHON" - <<'EOF' || exit 1
import sys
sys.path.insert(0, ".")
import diffusers, torch, transformers
import bench.results, bench.sdxl_full, imagegen.engines.sdxl, assistant.workflows.stages, assistant.workflows.service
try:
    import torchao
    ao = f"torchao {torchao.__version__}"
except ImportError as exc:
    ao = f"no torchao ({exc})"
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA GPU"
print(f"== python {sys.version.split()[0]}, torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}, {ao}; {gpu}")
EOF
    logs=$(mktemp -d -t keyart-bench-XXXX)
    status=0
    # shellcheck disable=SC2086
    step engine "${ENGINE_LIMIT:-420}" ${ENGINE_ARGS:---full --save}
    # shellcheck disable=SC2086
    step dataprep "${DATAPREP_LIMIT:-120}" ${DATAPREP_ARGS:---rounds 1 --full --limit 4 --save}
    if [ -n "$out" ]; then
        mkdir -p "$out"
        cp "$logs"/*.log "$out"/
        compgen -G "bench/results-*.md" >/dev/null && cp bench/results-*.md "$out"/
        echo "== copied to $out: $(ls "$out" | tr '\n' ' ')"
    fi
    exit "$status"
}

case "${1:-}" in
    wheels) shift; wheels "$@" ;;
    check) shift; check "$@" ;;
    run) shift; run "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac

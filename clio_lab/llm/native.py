"""Loading llama.cpp so that it cannot take the process down: safe model settings and a crash probe.

Two things can kill a Python process from inside llama.cpp, where no ``try`` reaches:

* **Weight repacking.** llama.cpp copies a model's weights into "extra buffer types" laid out for the CPU's
  matrix units (AMX on Intel Xeons since Sapphire Rapids, AVX2/AVX-512 "repack" layouts elsewhere). On an
  AMX machine the first decode of the bundled Gemma GGUF segfaults in that path (llama.cpp#20824; DSPy's CI
  hit the same crash), and repacking crashes have been reported on AVX2 machines too (llama.cpp#16479).
  The fix chosen here is a **runtime setting**, ``use_extra_bufts = False`` on the model parameters: it holds
  for whatever wheel is installed. A build-flag fix alone (turning AMX off in ``CMAKE_ARGS``) is defeated by a
  wheel that pip built earlier and keeps in its cache by version, and by any wheel built with
  ``GGML_NATIVE`` on a machine with AMX. For a 270M model the repacked layouts buy little: the throughput
  benchmark is measured with them off (BENCHMARKS.md). ``CLIO_LAB_LLAMA_EXTRA_BUFFERS=1`` turns them back on
  where the probe shows they work.
* **Anything else native** (a wheel built for another CPU, a broken build). So before the model is first
  loaded on a machine, a **one-token probe runs in a child process** with the exact settings the parent will
  use. If the child dies, the parent raises :class:`LocalModelError` naming the signal, the CPU and the fix,
  instead of dying itself. The verdict is kept in the cache folder under a key made of the llama-cpp-python
  version, a hash of its native libraries, the model file and the CPU's feature flags, so the probe runs once
  per machine and build (about two seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

PROBE_VERSION = 1
EXTRA_BUFFERS_ENV = "CLIO_LAB_LLAMA_EXTRA_BUFFERS"
PROBE_TIMEOUT_S = 300.0
REBUILD_HINT = ("rebuild llama-cpp-python for a generic CPU: CMAKE_ARGS='-DGGML_NATIVE=OFF' "
                ".venv/bin/pip install --force-reinstall --no-cache-dir 'llama-cpp-python>=0.3,<0.4'")


class LocalModelError(RuntimeError):
    """The embedded model cannot run on this machine (its probe crashed, hung or failed); says why and what to do."""


def extra_buffers_wanted() -> bool:
    """Whether llama.cpp may repack weights into extra buffer types (off unless the environment asks)."""
    return os.environ.get(EXTRA_BUFFERS_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def model_params(*, extra_buffers: bool) -> Iterator[None]:
    """Make ``llama_cpp.Llama(...)`` load with ``use_extra_bufts = extra_buffers``.

    llama-cpp-python does not take this field as an argument: ``Llama.__init__`` reads the library's
    ``llama_model_default_params()`` once while loading, so the function is wrapped for that moment only.
    Callers hold the local model's lock, so no other load sees the wrapper.
    """
    import llama_cpp.llama as module

    real = module.llama_cpp.llama_model_default_params

    def params():
        p = real()
        if hasattr(p, "use_extra_bufts"):  # llama.cpp builds before the field existed have no repacking switch
            p.use_extra_bufts = extra_buffers
        return p

    module.llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_cpp.llama_model_default_params = real


@cache
def cpu_flags() -> tuple[str, ...]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; the processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return tuple(sorted(set(line.split(":", 1)[1].split())))
    except OSError:
        pass
    return (platform.machine(), platform.processor())


def cpu_summary() -> str:
    """The CPU model and the flags that decide llama.cpp's code paths, for messages and run records."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "neon", "sve")
    return f"{name} ({', '.join(f for f in wanted if f in cpu_flags()) or 'no AVX2'})"


@cache
def build_fingerprint() -> dict[str, Any]:
    """llama-cpp-python's version and a hash of the native libraries it loads (a rebuild changes it)."""
    from importlib.metadata import version

    import llama_cpp

    h = hashlib.sha256()
    lib = Path(llama_cpp.__file__).parent / "lib"
    for path in sorted(lib.glob("*")) if lib.is_dir() else []:
        if path.suffix in (".so", ".dylib", ".dll") or ".so." in path.name:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return {"llama_cpp_python": version("llama_cpp_python"), "libraries_sha256": h.hexdigest()}


def _verdict_path(model_path: str, extra_buffers: bool) -> Path:
    from ..cache import default_cache_dir, make_key

    stat = os.stat(model_path)
    key = make_key(step="llama_probe", version=PROBE_VERSION, build=build_fingerprint(), cpu=list(cpu_flags()),
                   machine=platform.machine(), python=platform.python_version(), extra_buffers=extra_buffers,
                   model={"name": os.path.basename(model_path), "size": stat.st_size})
    return default_cache_dir() / "native_probe" / f"{key}.json"


def probe_command(model_path: str, extra_buffers: bool) -> list[str]:
    """The child that loads the model with these settings and decodes one token."""
    return [sys.executable, "-m", "clio_lab.llm._probe_child", model_path, "1" if extra_buffers else "0"]


def run_probe(model_path: str, extra_buffers: bool, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Run the one-token probe in a child process; the verdict as a dict (never raises for a crash)."""
    start = time.perf_counter()
    try:
        # the child finds this very copy of clio_lab, installed or not
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.run(probe_command(model_path, extra_buffers), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "outcome": f"no answer within {timeout:.0f} s (killed)", "extra_buffers": extra_buffers}
    seconds = round(time.perf_counter() - start, 2)
    tail = (proc.stderr or "").strip().splitlines()[-3:]
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.Signals._value2member_map_ \
            else f"signal {-proc.returncode}"
        return {"ok": False, "outcome": f"crashed with {name}", "extra_buffers": extra_buffers, "seconds": seconds,
                "stderr_tail": tail}
    last = (proc.stdout or "").strip().splitlines()[-1:] or [""]
    try:
        info = json.loads(last[0])
    except ValueError:
        info = None
    if proc.returncode != 0 or not isinstance(info, dict):
        return {"ok": False, "outcome": f"exited with status {proc.returncode}", "extra_buffers": extra_buffers,
                "seconds": seconds, "stderr_tail": tail}
    return {"ok": True, "outcome": "answered one token", "extra_buffers": extra_buffers, "seconds": seconds,
            "system_info": info.get("system_info", "")}


def _verdict(model_path: str, extra_buffers: bool) -> dict[str, Any]:
    path = _verdict_path(model_path, extra_buffers)
    try:
        return {**json.loads(path.read_text()), "cached": True}
    except (OSError, ValueError):
        pass
    verdict = run_probe(model_path, extra_buffers)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(verdict))
    except OSError:  # a read-only cache folder: probe again next time rather than fail
        pass
    return {**verdict, "cached": False, "verdict_file": str(path)}


def checked_settings(model_path: str) -> dict[str, Any]:
    """Settings under which the model has been seen to answer on this machine, probing first if needed.

    Extra buffer types are off unless ``CLIO_LAB_LLAMA_EXTRA_BUFFERS=1``; if they were asked for and the
    probe crashes with them, the model runs without them. Raises :class:`LocalModelError` when no setting works.
    """
    tried = []
    for extra in ((True, False) if extra_buffers_wanted() else (False,)):
        verdict = _verdict(model_path, extra)
        if verdict["ok"]:
            if tried:
                warnings.warn(f"{EXTRA_BUFFERS_ENV}=1: llama.cpp {tried[0]['outcome']} with weight repacking on "
                              f"this CPU ({cpu_summary()}); the local model runs without it", stacklevel=3)
            return {"extra_buffers": extra, "probe": verdict, "tried": tried}
        tried.append(verdict)
    outcome = "; ".join(f"{v['outcome']} with weight repacking {'on' if v['extra_buffers'] else 'off'}"
                        for v in tried)
    where = tried[-1].get("verdict_file") or str(_verdict_path(model_path, False))
    raise LocalModelError(
        f"the embedded model (llama-cpp-python {build_fingerprint()['llama_cpp_python']}) {outcome} in a one-token "
        f"test on this CPU, {cpu_summary()}; it was not loaded in this process, so nothing else was lost. "
        f"Fix: {REBUILD_HINT}; or use a hosted model (--model / LLM(model=...)). The verdict is kept in {where}: "
        "a rebuilt library is probed afresh.")

"""``python -m clio_lab.llm.serve``: llama-cpp-python's OpenAI-compatible server, safe on every CPU.

``python -m llama_cpp.server`` loads its model with llama.cpp's defaults, weight repacking included, so on an
Intel Xeon with AMX the server starts, lists its model, and dies with a segmentation fault at the first
completion (the crash :mod:`clio_lab.llm.native` describes). This command takes the same arguments and runs
the same server, after two things the plain one does not do:

* the one-token probe in a child process, for the model given with ``--model`` (its verdict cached as for the
  in-process model), so a build that cannot run on this CPU stops here with one line that says why, exit 2;
* ``use_extra_bufts`` set as the probe chose while the server loads its models (off unless
  ``CLIO_LAB_LLAMA_EXTRA_BUFFERS=1`` and the probe saw repacking work).

Without ``--model`` (or ``--config_file``) it serves the bundled Gemma 3 270M. Example::

    python -m clio_lab.llm.serve --host 127.0.0.1 --port 8000 --model_alias gemma
    clio-lab run datasets/clio_demo.jsonl --model text-completion-openai/gemma --api-base http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .native import LocalModelError, checked_settings, extra_buffers_wanted, model_params


def _model_argument(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from llama_cpp.server.__main__ import main as server_main
    except ImportError:
        print("clio-lab serve: the server needs `pip install 'clio-lab[server]'` (llama-cpp-python[server])",
              file=sys.stderr)
        return 2
    model = _model_argument(argv)
    if model is None and not any(a.split("=", 1)[0] == "--config_file" for a in argv):
        from .local import DEFAULT_LOCAL_MODEL, model_path

        model = model_path(DEFAULT_LOCAL_MODEL)
        argv = ["--model", model, *argv]
    try:
        # A server started from a config file (--config_file) names its models there: those load with
        # repacking as the environment asks, unprobed.
        extra = checked_settings(model)["extra_buffers"] if model else extra_buffers_wanted()
    except LocalModelError as exc:
        print(f"clio-lab serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no such model file
        print(f"clio-lab serve: --model {model}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    sys.argv = [f"{sys.executable} -m llama_cpp.server", *argv]
    # The server loads its models and serves inside this block: the setting holds for the process's life.
    with model_params(extra_buffers=extra):
        server_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

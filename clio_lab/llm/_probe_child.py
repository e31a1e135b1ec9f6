"""The crash probe's child process (see native.py): load a GGUF with the settings the parent will use and
decode one token, then print llama.cpp's system information as JSON. If llama.cpp crashes, only this process dies.

    python -m clio_lab.llm._probe_child MODEL.gguf EXTRA_BUFFERS(0|1)
"""

import json
import os
import sys

from clio_lab.llm.native import model_params


def main() -> None:
    path, extra = sys.argv[1], sys.argv[2] == "1"
    import llama_cpp

    with model_params(extra_buffers=extra):
        llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=os.cpu_count() or 2, n_batch=64, verbose=False,
                              seed=0)
    llm.create_completion(prompt="The capital of France is", max_tokens=1, temperature=0.0)
    print(json.dumps({"system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}))


if __name__ == "__main__":
    main()

"""The child process of tests/test_offline.py: import every public module and run the whole pipeline on a small
corpus with the embedded models, under the socket guard (installed before anything else is imported).

    python tests/offline_job.py CORPUS OUT_DIR [LIMIT]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import netguard  # noqa: E402

netguard.install()

import importlib  # noqa: E402
import pkgutil  # noqa: E402

import clio_lab  # noqa: E402

for info in pkgutil.walk_packages(clio_lab.__path__, "clio_lab."):
    importlib.import_module(info.name)

corpus, out = sys.argv[1], Path(sys.argv[2])
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 24
convs = clio_lab.load_conversations(corpus, limit=limit)
result = clio_lab.run_pipeline(convs, k=3, min_conversations=2, min_users=1, progress=False)
result.save(out)
from clio_lab import charts  # noqa: E402

charts.save_chart(charts.cluster_sizes(result), out / "sizes.png")
print("OK", len(convs), "conversations,", result.stats()["llm_calls"], "model calls")

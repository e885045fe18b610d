"""The Ray engine: the same per-user function, on Ray Data.

Users are cut into the same chunks the local engine uses; each chunk is one
item of ``ray.data.from_items``, and ``map_batches`` runs
:func:`~guardstack.offline.peruser.analyze_users` on it in actors that load
the classifier once. The cross-user
stages (coordination, topic map) run on the driver over the compact arrays
both engines share, so findings are identical to the local engine's.

Local by default (``ray.init(num_cpus=2, include_dashboard=False)``). To use a
cluster, set ``RAY_ADDRESS=ray://HEAD:10001`` (or ``auto`` on a cluster node)
before ``guardstack analyze --engine ray``; every node needs guardstack
installed in the same version. ``$GUARDSTACK_RAY_ACTORS`` sets how many
classifier actors run (default: 2 locally, 4 on a cluster).
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from guardstack.offline.corpus import UserHistory
from guardstack.offline.peruser import UserResult, chunks
from guardstack.offline.settings import AnalysisSettings

#: Classifier actors (default: num_cpus locally, 4 on a cluster).
ENV_ACTORS = "GUARDSTACK_RAY_ACTORS"


class _Analyze:
    """A Ray Data actor: loads the classifier once, analyses batches of users."""

    def __init__(self, now: float, settings: AnalysisSettings) -> None:
        from guardstack.offline.engine_local import score_texts_with
        from guardstack.offline.scoring import Scorer

        self.now = now
        self.settings = settings
        self.score = score_texts_with(Scorer())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from guardstack.offline.peruser import analyze_users

        out = []
        for blob in batch["chunk"]:
            chunk: list[UserHistory] = pickle.loads(bytes(blob))
            results = analyze_users(chunk, self.now, self.settings, self.score)
            out.append(pickle.dumps(results))
        return {"index": batch["index"], "results": np.array(out, dtype=object)}


def run(histories: list[UserHistory], now: float, settings: AnalysisSettings,
        progress: Callable[[int], None] | None = None, num_cpus: int = 2) -> list[UserResult]:
    try:
        import ray
    except ModuleNotFoundError:
        raise RuntimeError("--engine ray needs Ray: pip install 'ray[data]'") from None
    if not histories:
        return []
    with warnings.catch_warnings():
        # Ray Data reads its own deprecated settings internally; those
        # warnings are Ray's business, not the caller's.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"ray(\.|$)")
        return _run(ray, histories, now, settings, progress, num_cpus)


def _run(ray: Any, histories: list[UserHistory], now: float, settings: AnalysisSettings,
         progress: Callable[[int], None] | None, num_cpus: int) -> list[UserResult]:
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if not os.environ.get("RAY_ADDRESS"):
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
        started = True
    actors = int(os.environ.get(ENV_ACTORS) or (num_cpus if not os.environ.get("RAY_ADDRESS")
                                                 else 4))
    context = ray.data.DataContext.get_current()
    # Our own progress bar on stderr is enough; Ray's would interleave with it.
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        items = ray.data.from_items(
            [{"index": k, "chunk": pickle.dumps(c)} for k, c in enumerate(chunks(histories))]
        )
        ds = items.map_batches(
            _Analyze,
            fn_constructor_args=(now, settings),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        results: dict[str, UserResult] = {}
        for row in ds.iter_rows():
            chunk_results: list[UserResult] = pickle.loads(row["results"])
            for result in chunk_results:
                results[result.user] = result
            if progress is not None:
                progress(len(chunk_results))
    finally:
        if started:
            ray.shutdown()
    return [results[h.user] for h in histories]

"""Benchmark: ``uv run python -m graph.ops.bench.seed --users 1000000``.

Prints the seconds to generate both stores and the lookups per second (single thread,
then from a thread pool sharing the one feature store).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from graph.settings import Settings
from stores.features import FeatureStore
from stores.models import CustomerFeatures
from stores.seed import FIRST_USER, generate


def _rate(count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def run(data_dir: Path, users: int, lookups: int, threads: int, seed: int) -> None:
    """Generate, then time lookups of random known users."""
    report = generate(data_dir, users=users, seed=seed)
    print(f"generate: {users:,} users in {report.seconds:.2f} s")
    rng = random.Random(seed)
    ids = [f"user_{FIRST_USER + rng.randrange(users)}" for _ in range(lookups)]
    settings = Settings(data_dir=data_dir)
    store = FeatureStore.open(settings.hot_db, settings.cold_db)
    try:
        hot = _rate(lookups, lambda: [store.hot.get_session(u) for u in ids])
        cold = _rate(lookups, lambda: [store.cold.get_analytics(u) for u in ids])
        single = _rate(lookups, lambda: [store.lookup(u) for u in ids])
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results: list[object] = []
            pooled = _rate(lookups, lambda: results.extend(pool.map(store.lookup, ids)))
        assert all(isinstance(r, CustomerFeatures) for r in results)
    finally:
        store.close()
    print(f"hot get_session:     {hot:>10,.0f} /s")
    print(f"cold get_analytics:  {cold:>10,.0f} /s")
    print(f"lookup (1 thread):   {single:>10,.0f} /s")
    print(f"lookup ({threads} threads):  {pooled:>10,.0f} /s")


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        run(args.data_dir, args.users, args.lookups, args.threads, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="sgr-bench-") as tmp:
        run(Path(tmp), args.users, args.lookups, args.threads, args.seed)


if __name__ == "__main__":
    main()

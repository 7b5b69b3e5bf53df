"""getMyCreations on a big library: the first and the last page, by paginationIndex and by
skipCount.

    python benchmarks/library_pagination.py [N] [--limit 100] [--fill-seconds 180]

With ``AIMG_MONGODB_URI`` (a real MongoDB) it fills one user's library with N Items
(default 1,000,000). Without it, an embedded MongoDB-protocol server is started; it is slow
on big collections, so it fills for at most ``--fill-seconds`` and reports the N it reached.
Items are written in bulk (the benchmark measures reading, not generation); the user's
counters are set to match. Each page is fetched through the HTTP API (the Flask test
client), best of 5.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import shutil
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASE = dt.datetime(2024, 1, 1)
CHUNK_REAL, CHUNK_EMBEDDED = 10_000, 250


def fill(user_id: str, domain: str, target: int, budget_s: float | None, chunk: int) -> int:
    from aimg_app.models.item import Item

    collection = Item._get_collection()
    made, started = 0, time.perf_counter()
    while made < target:
        n = min(chunk, target - made)
        docs = [{"_id": str(uuid.uuid4()), "domain": domain, "user_id": user_id, "batch_id": None, "mtype": "image",
                 "media_type": "StaticImage", "status": "completed", "url": f"https://files.example/{made + i}.png",
                 "prompt": "benchmark", "created_date": BASE + dt.timedelta(milliseconds=made + i),
                 "completed_date": BASE + dt.timedelta(milliseconds=made + i), "is_deleted": False,
                 "is_public": False, "public_approval_status": "none", "folder_id": None, "view_count": 0,
                 "like_count": 0, "dislike_count": 0, "tags": [], "is_publicly_visible": False}
                for i in range(n)]
        collection.insert_many(docs, ordered=False)
        made += n
        elapsed = time.perf_counter() - started
        print(f"  filled {made:>9,} items in {elapsed:7.1f} s", flush=True)
        if budget_s is not None and elapsed > budget_s:
            break
    return made


def best_of(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=None)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--fill-seconds", type=float, default=180.0)
    args = parser.parse_args()

    from aimg_app import create_app
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices

    launcher = None
    env = dict(os.environ)
    real = bool(env.get("AIMG_MONGODB_URI"))
    if not real:
        data_dir = Path(tempfile.mkdtemp(prefix="aimg-bench-"))
        launcher = EmbeddedServices(data_dir, env=env, only={"mongodb"},
                                    say=lambda _m: None)
        env.update(launcher.start())
    try:
        settings = load_settings(env, migrate_on_start=False, free_library_items=0)
        database = f"bench_{uuid.uuid4().hex[:8]}"
        settings.mongodb_uri = settings.mongodb_uri.rsplit("/", 1)[0] + f"/{database}"
        app = create_app(settings)
        from aimg_app.models import Session, User
        from aimg_app.models.item import Item

        for document in (User, Session, Item):
            document.ensure_indexes()
        domain = settings.default_domain.identifier
        user = User(id=str(uuid.uuid4()), domain=domain, email="bench@example.com", username="bench",
                    username_lower="bench")
        user.save(force_insert=True)
        session_id = str(uuid.uuid4())
        Session(id=session_id, domain=domain, user_id=user.id).save(force_insert=True)

        target = args.n or (1_000_000 if real else 10_000_000)
        print(f"server: {'MongoDB at AIMG_MONGODB_URI' if real else 'embedded (mongoeco)'}; filling up to {target:,}")
        n = fill(user.id, domain, target, None if real else args.fill_seconds,
                 CHUNK_REAL if real else CHUNK_EMBEDDED)
        User.objects(id=user.id).update_one(set__item_count=n, set__root_folder_item_count=n)
        print(f"N = {n:,} Items")

        client = app.test_client()
        headers = {"X-Session-ID": session_id}
        limit = min(args.limit, n)

        def page(**query):
            response = client.get("/getMyCreations", query_string={"limit": limit, **query}, headers=headers)
            body = response.get_json()
            assert response.status_code == 200 and len(body["payload"]) == limit, body
            return body

        # the last page by paginationIndex: the index just above the oldest `limit` Items
        last_index = str(int((BASE + dt.timedelta(milliseconds=limit)).timestamp() * 1000)
                         - int(dt.datetime(1970, 1, 1).timestamp() * 1000))
        results = {
            "paginationIndex first": best_of(lambda: page()),
            "paginationIndex last": best_of(lambda: page(paginationIndex=last_index)),
            "skipCount first": best_of(lambda: page(skipCount=0)),
            "skipCount last": best_of(lambda: page(skipCount=n - limit)),
        }
        for name, seconds in results.items():
            print(f"{name:<24} {seconds * 1000:9.1f} ms")
        print(f"ratio last/first, paginationIndex: {results['paginationIndex last'] / results['paginationIndex first']:.2f}")
        print(f"ratio last/first, skipCount:       {results['skipCount last'] / results['skipCount first']:.2f}")
        Item._get_db().client.drop_database(database)
    finally:
        if launcher is not None:
            launcher.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

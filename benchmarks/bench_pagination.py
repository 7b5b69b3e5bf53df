"""Deep pages: limit+paginationIndex (an index range) against limit+skipCount (a scan).

Prints the time to fetch page N each way and their ratio as N grows: the index walk stays
flat, skipping grows with N (the contract's reason to prefer paginationIndex).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid

import mongoengine as me


class BenchNote(me.Document):
    text = me.StringField()
    created_date = me.DateTimeField()
    meta = {"collection": "bench_notes", "indexes": [("-created_date", "-id")]}


def main() -> None:
    from aimg_app.devservices import EmbeddedServices
    from aimg_app.models.base import epoch_ms, from_epoch_ms
    from aimg_app.pagination import PageRequest, paginate

    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()

    launcher = None
    uri = os.environ.get("AIMG_MONGODB_URI")
    if not uri:
        data_dir = tempfile.mkdtemp(prefix="aimg-bench-")
        launcher = EmbeddedServices(data_dir, only={"mongodb"}, say=lambda _m: None)
        uri = launcher.start()["AIMG_MONGODB_URI"]
    me.connect(host=uri.rsplit("/", 1)[0] + f"/bench_{uuid.uuid4().hex[:6]}")
    try:
        BenchNote.ensure_indexes()
        base = 1_700_000_000_000
        started = time.perf_counter()
        BenchNote.objects.insert([BenchNote(text=f"n{i}", created_date=from_epoch_ms(base + i * 1000))
                                  for i in range(args.items)], load_bulk=False)
        print(f"inserted {args.items} documents in {time.perf_counter() - started:.2f} s")
        print(f"{'page':>6} {'index ms':>10} {'skip ms':>10} {'skip/index':>11}")
        index = None
        for page_number in range(args.pages):
            t0 = time.perf_counter()
            page = paginate(BenchNote.objects, "created_date", PageRequest(limit=args.limit, pagination_index=index))
            t1 = time.perf_counter()
            paginate(BenchNote.objects, "created_date", PageRequest(limit=args.limit, skip_count=page_number * args.limit))
            t2 = time.perf_counter()
            index_ms, skip_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
            if page_number % max(1, args.pages // 10) == 0 or page_number == args.pages - 1:
                print(f"{page_number:>6} {index_ms:>10.1f} {skip_ms:>10.1f} {skip_ms / index_ms:>11.2f}")
            nxt = page.metadata["nextPaginationIndex"]
            if nxt is None:
                break
            index = int(nxt)
        assert epoch_ms(page.items[-1].created_date) >= base
    finally:
        me.disconnect()
        if launcher:
            launcher.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

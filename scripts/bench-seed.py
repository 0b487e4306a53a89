#!/usr/bin/env python3
"""Seeds the services' databases straight through SQL, in the formats the services write, so
the data-size benchmarks (scripts/bench sizes) reach production sizes in seconds.

    bench-seed.py URL users N              N users (u<i>@seed.example); every 10th with an old
                                           tokens_not_before (older than any token: never in the feed)
    bench-seed.py URL apps N               N applications (a dummy secret hash: never used)
    bench-seed.py URL revoked N [old|recent]  N revoked, still-alive tokens (exp in 50 min),
                                           revoked 10 min ago (old) or now (recent)
    bench-seed.py URL rooms USER CLIENT N  N rooms owned by USER through CLIENT, with counts
    bench-seed.py URL cursor USER CLIENT K prints the list cursor that starts after USER's K-th
                                           newest room (a deep page, as a `next` link would carry)

URL is the service's database URL: sqlite://PATH?... (written with Python's sqlite3) or
postgres://... (generate_series through psql). Formats: SQLite keeps UUIDs as 16-byte blobs and
times as RFC 3339 text with microseconds and +00:00; PostgreSQL uses uuid and timestamptz.
"""

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import uuid

BATCH = 50_000


def now_text(delta_seconds=0.0):
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delta_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def sqlite_path(url):
    return url[len("sqlite://"):].split("?", 1)[0]


def psql(url, sql):
    subprocess.run(["psql", url, "-qv", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def batches(total, make):
    for start in range(0, total, BATCH):
        yield [make(i) for i in range(start, min(total, start + BATCH))]


def seed_users(url, n):
    if url.startswith("postgres"):
        psql(url, f"""INSERT INTO users (id, email, email_normalized, is_active, tokens_not_before, created_at)
            SELECT gen_random_uuid(), 'u' || g || '@seed.example', 'u' || g || '@seed.example', true,
                   CASE WHEN g % 10 = 0 THEN now() - interval '2 days' END, now()
            FROM generate_series(1, {n}) g""")
        return
    db = sqlite3.connect(sqlite_path(url))
    old, created = now_text(-2 * 86400), now_text()
    for rows in batches(n, lambda i: (uuid.uuid4().bytes, f"u{i}@seed.example", f"u{i}@seed.example",
                                      1, old if i % 10 == 0 else None, created)):
        db.executemany("INSERT INTO users (id, email, email_normalized, is_active, tokens_not_before, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()


def seed_apps(url, n):
    dummy = "$argon2id$v=19$m=7168,t=5,p=1$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ"
    if url.startswith("postgres"):
        psql(url, f"""INSERT INTO applications (id, client_id, name, secret_hash, scopes, domains, is_active,
                   tokens_not_before, deleted_at, created_at, updated_at)
            SELECT gen_random_uuid(), 'seed' || lpad(g::text, 36, '0'), 'seed ' || g, '{dummy}', 'rooms:list', '',
                   true, CASE WHEN g % 10 = 0 THEN now() - interval '2 days' END, NULL, now(), now()
            FROM generate_series(1, {n}) g""")
        return
    db = sqlite3.connect(sqlite_path(url))
    old, created = now_text(-2 * 86400), now_text()
    for rows in batches(n, lambda i: (uuid.uuid4().bytes, "seed" + str(i).zfill(36), f"seed {i}", dummy,
                                      "rooms:list", "", 1, old if i % 10 == 0 else None, None,
                                      created, created)):
        db.executemany("INSERT INTO applications (id, client_id, name, secret_hash, scopes, domains, is_active,"
                       " tokens_not_before, deleted_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()


def seed_revoked(url, n, when="old", client="seed-client"):
    """`old`: revoked ten minutes ago (a snapshot's content); `recent`: revoked now (what the
    next delta brings)."""
    back = 600 if when == "old" else 0
    if url.startswith("postgres"):
        psql(url, f"""INSERT INTO revoked_tokens (jti, client_id, exp, revoked_at)
            SELECT gen_random_uuid()::text, '{client}', now() + interval '50 minutes',
                   now() - interval '{back} seconds' + g * interval '1 microsecond'
            FROM generate_series(1, {n}) g""")
        return
    db = sqlite3.connect(sqlite_path(url))
    exp, revoked = now_text(3000), now_text(-back)
    for rows in batches(n, lambda i: (str(uuid.uuid4()), client, exp, revoked)):
        db.executemany("INSERT INTO revoked_tokens (jti, client_id, exp, revoked_at) VALUES (?, ?, ?, ?)", rows)
    db.commit()


def seed_rooms(url, user, client, n):
    """Rooms one second apart, the newest just before now, as if created over n seconds."""
    tag = uuid.uuid4().hex[:8]
    if url.startswith("postgres"):
        psql(url, f"""BEGIN;
            CREATE TEMP TABLE seed AS SELECT gen_random_uuid() AS id, g,
                   now() - (g || ' seconds')::interval - interval '1 minute' AS created_at
            FROM generate_series(1, {n}) g;
            INSERT INTO rooms (id, slug, name, access_level, configuration, pin_code, client_id, created_at)
            SELECT id, 's{tag}' || g, 's{tag}' || g, 'trusted', '{{}}', 'p{tag}' || g, '{client}', created_at FROM seed;
            INSERT INTO room_accesses (room_id, user_id, role, client_id, created_at)
            SELECT id, '{user}', 'owner', '{client}', created_at FROM seed;
            INSERT INTO room_counts (user_id, client_id, rooms) VALUES ('{user}', '{client}', {n})
            ON CONFLICT (user_id, client_id) DO UPDATE SET rooms = room_counts.rooms + {n};
            COMMIT;""")
        return
    db = sqlite3.connect(sqlite_path(url))
    for rows in batches(n, lambda i: (uuid.uuid4().bytes, f"s{tag}{i}", now_text(-60 - i))):
        db.executemany("INSERT INTO rooms (id, slug, name, access_level, configuration, pin_code, client_id,"
                       " created_at) VALUES (?, ?, ?, 'trusted', '{}', ?, ?, ?)",
                       [(r[0], r[1], r[1], "p" + r[1][1:], client, r[2]) for r in rows])
        db.executemany("INSERT INTO room_accesses (room_id, user_id, role, client_id, created_at)"
                       " VALUES (?, ?, 'owner', ?, ?)", [(r[0], user, client, r[2]) for r in rows])
    db.execute("INSERT INTO room_counts (user_id, client_id, rooms) VALUES (?, ?, ?)"
               " ON CONFLICT (user_id, client_id) DO UPDATE SET rooms = rooms + excluded.rooms",
               (user, client, n))
    db.commit()


def list_cursor(url, user, client, k):
    import base64
    if url.startswith("postgres"):
        out = subprocess.run(["psql", url, "-Atc",
                              f"SELECT (extract(epoch from created_at) * 1000000)::bigint, replace(room_id::text, '-', '')"
                              f" FROM room_accesses WHERE user_id = '{user}' AND client_id = '{client}'"
                              f" ORDER BY created_at DESC, room_id DESC LIMIT 1 OFFSET {k - 1}"],
                             check=True, capture_output=True, text=True).stdout.strip()
        micros, room = out.split("|")
    else:
        db = sqlite3.connect(sqlite_path(url))
        created, room = db.execute(
            "SELECT created_at, room_id FROM room_accesses WHERE user_id = ? AND client_id = ?"
            " ORDER BY created_at DESC, room_id DESC LIMIT 1 OFFSET ?", (user, client, k - 1)).fetchone()
        t = dt.datetime.fromisoformat(created)
        micros = str(int(t.timestamp()) * 1_000_000 + t.microsecond)
        room = uuid.UUID(bytes=room).hex
    raw = f"v1:{micros}:{room}:a".encode()
    print(base64.urlsafe_b64encode(raw).decode().rstrip("="))


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, what, args = argv[1], argv[2], argv[3:]
    if what == "users":
        seed_users(url, int(args[0]))
    elif what == "apps":
        seed_apps(url, int(args[0]))
    elif what == "revoked":
        seed_revoked(url, int(args[0]), *args[1:2])
    elif what == "rooms":
        seed_rooms(url, args[0], args[1], int(args[2]))
    elif what == "cursor":
        list_cursor(url, args[0], args[1], int(args[2]))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if url.startswith("postgres"):
        psql(url, "ANALYZE")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PGOPTIONS", "--client-min-messages=warning")
    sys.exit(main(sys.argv))
